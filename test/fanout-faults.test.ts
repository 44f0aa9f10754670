/**
 * Faults of the fan-out's subscription lookup, made for real on SQLite and PostgreSQL: a custom
 * finder that throws, the store's own read failing (the subscriptions table renamed away on SQLite,
 * locked past `lock_timeout` on PostgreSQL), and the ways back: by themselves once the fault is gone,
 * or by `hooks.outbox.retry`, `POST /outbox/:eventId/retry` and the admin page's Retry button.
 */
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApi } from '../src/api/index.js';
import { createAdminPage } from '../src/api/admin/admin-page.js';
import type { Finder, HooksOptions, Logger, OutboxEvent } from '../src/index.js';
import { outboxTable } from './support/events.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { eventually, testHooks, type TestHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { basicAuthorize, BASIC, mainOf } from './admin/admin-support.js';

const EVENTS = { 'book.added': 'Book.created', 'book.changed': 'Book.updated+', 'note.posted': null } as const;
type Event = keyof typeof EVENTS;

interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

/** A pino-shaped logger that keeps every line. */
function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg = '') => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Real faults on a shared, loaded machine: generous bounds; a passing run takes a second or two per test.
describe.each(ENGINES)('fan-out faults on %s', { timeout: 60_000 }, (engine) => {
  let db: TestDatabase;
  let receiver: Receiver;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
    receiver = await startReceiver();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await receiver.close();
    await db.close();
  });

  /**
   * Hooks on this engine's database, with a fast lookup retry (10 ms doubling to 40 ms) and a
   * recording logger. On PostgreSQL a statement waits at most 200 ms for a lock, so a locked table
   * fails the read instead of hanging it.
   */
  async function hooksWith(options: Partial<HooksOptions<Event>> = {}, start = true): Promise<TestHooks<Event> & { log: LogLine[] }> {
    const logger = recordingLogger();
    const store = engine === 'postgres' ? db.dialect({}, { options: '-c lock_timeout=200' }) : db.dialect();
    const t = await testHooks<Event>({ events: EVENTS, store, logger, finderRetry: { attempts: 3, delay: 10, maxDelay: 40 }, ...options }, { start });
    closers.push(() => t.close());
    return { ...t, log: logger.lines };
  }

  const subscribe = (t: TestHooks<Event>, owner = 'alice', event: Event = 'note.posted') => t.hooks.subscriptions.create({ owner, event, target: `${receiver.url}/${owner}` });

  async function post(t: TestHooks<Event>, n: number, owner = 'alice'): Promise<string> {
    const result = await t.hooks.raw('note.posted', { n }, { owner });
    if (!('eventId' in result)) throw new Error(`not queued: ${JSON.stringify(result)}`);
    return result.eventId;
  }

  const event = async (t: TestHooks<Event>, id: string): Promise<OutboxEvent> => {
    const found = await t.hooks.outbox.get(id);
    if (!found) throw new Error(`no event ${id}`);
    return found;
  };

  /**
   * Makes the store's reads of `table` fail for real until the returned function is called (which
   * the test's teardown also does, first, should the test fail before it).
   */
  async function breakReads(table = 'resthooks_subscriptions'): Promise<() => Promise<void>> {
    let undo: () => Promise<void>;
    if (engine === 'sqlite') {
      // Another connection to the same file takes the table away: the store's read fails with "no such table".
      const other = new Database(db.url);
      other.exec(`ALTER TABLE ${table} RENAME TO ${table}_away`);
      undo = async () => {
        other.exec(`ALTER TABLE ${table}_away RENAME TO ${table}`);
        other.close();
      };
    } else {
      // Another session holds the strongest lock: the store's read waits out lock_timeout and fails.
      const client = await db.pool({ max: 1 }).connect();
      await client.query('BEGIN');
      await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      undo = async () => {
        await client.query('COMMIT');
        client.release();
      };
    }
    let restored: Promise<void> | undefined;
    const restore = () => (restored ??= undo());
    closers.push(restore);
    return restore;
  }

  it('a custom finder that throws twice, then works: the event is delivered, after three tries', async () => {
    let calls = 0;
    const finder: Finder = async (_name, _event, { defaultFind }) => {
      calls++;
      if (calls <= 2) throw new Error(`finder down (call ${calls})`);
      return defaultFind();
    };
    const t = await hooksWith({ finder });
    await subscribe(t);
    const id = await post(t, 1);
    await receiver.waitFor(1);
    await eventually(async () => expect(await event(t, id)).toMatchObject({ status: 'done', fanOutAttempts: 2 }));
    expect(calls).toBe(3);
    expect(receiver.received[0]!.json).toMatchObject({ data: { n: 1 } });
    const warnings = t.log.filter((l) => l.level === 'warn' && l.obj.eventId === id);
    expect(warnings.map((l) => l.obj.attempt)).toEqual([1, 2]);
    expect(t.log.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('a custom finder that always throws: undeliverable after `attempts` tries, logged at error level with the Error; retried once fixed', async () => {
    let broken = true;
    let calls = 0;
    const finder: Finder = async (_name, _event, { defaultFind }) => {
      calls++;
      if (broken) throw new Error('the plans service is down');
      return defaultFind();
    };
    const t = await hooksWith({ finder });
    await subscribe(t);
    const id = await post(t, 1);
    await eventually(async () => expect(await event(t, id)).toMatchObject({ status: 'undeliverable', fanOutAttempts: 3, retryable: true }));
    expect((await event(t, id)).error).toMatch(/^finder failed 3 times; last error: the plans service is down$/);
    const errors = t.log.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.obj).toMatchObject({ eventId: id, event: 'note.posted' });
    expect(errors[0]!.obj.err).toBeInstanceOf(Error);
    expect((errors[0]!.obj.err as Error).message).toBe('the plans service is down');
    await sleep(150); // given up on: no more tries
    expect(calls).toBe(3);
    expect((await t.hooks.outbox.list()).map((e) => e.id)).toEqual([id]);
    expect(receiver.received).toHaveLength(0);

    broken = false;
    await t.hooks.outbox.retry(id);
    await receiver.waitFor(1);
    await eventually(async () => expect(await event(t, id)).toMatchObject({ status: 'done', fanOutAttempts: 0, error: null }));
    expect(await t.hooks.outbox.list()).toEqual([]);
    await expect(t.hooks.outbox.retry(id)).rejects.toMatchObject({ code: 'conflict' });
  });

  it('the store read failing (a real database error) never marks an event undeliverable: it stays pending and is delivered once the read works', async () => {
    // One try only for a custom finder: were the store's failure counted as the finder's, the events would be given up at once.
    const t = await hooksWith({ finderRetry: { attempts: 1, delay: 10, maxDelay: 40 } });
    await subscribe(t, 'alice');
    await subscribe(t, 'bob');
    const restore = await breakReads();
    const ids = [await post(t, 1), await post(t, 2), await post(t, 3, 'bob')];
    await eventually(async () => {
      for (const id of ids) expect((await event(t, id)).fanOutAttempts).toBeGreaterThanOrEqual(3);
    }, 20_000);
    for (const id of ids) expect(await event(t, id)).toMatchObject({ status: 'pending', error: expect.stringMatching(/^subscription lookup failed: /) });
    expect(await t.hooks.outbox.list({ status: 'undeliverable' })).toEqual([]);
    expect(t.log.some((l) => l.level === 'warn' && /subscription lookup failed/.test(l.msg))).toBe(true);
    expect(t.log.filter((l) => l.level === 'error' && l.msg.includes('undeliverable'))).toEqual([]);
    expect(receiver.received).toHaveLength(0);

    await restore();
    await receiver.waitFor(3, 15_000);
    for (const id of ids) await eventually(async () => expect((await event(t, id)).status).toBe('done'));
    expect(receiver.received.map((r) => `${r.path} ${r.json.data.n}`).sort()).toEqual(['/alice 1', '/alice 2', '/bob 3']);
  });

  it("a custom finder whose defaultFind() fails on the store is not given up on either", async () => {
    const finder: Finder = async (_name, _event, { defaultFind }) => {
      try {
        return await defaultFind();
      } catch {
        throw new Error('could not list subscriptions'); // what an app's finder might make of it
      }
    };
    const t = await hooksWith({ finder, finderRetry: { attempts: 1, delay: 10, maxDelay: 40 } });
    await subscribe(t);
    const restore = await breakReads();
    const id = await post(t, 1);
    await eventually(async () => expect((await event(t, id)).fanOutAttempts).toBeGreaterThanOrEqual(3), 20_000);
    expect((await event(t, id)).status).toBe('pending');
    await restore();
    await receiver.waitFor(1, 15_000);
    await eventually(async () => expect((await event(t, id)).status).toBe('done'));
  });

  it('two events of one (name, owner) in one batch, the finder failing for one: only that one is tried again', async () => {
    let failedOnce = false;
    const finder: Finder = async (_name, stored, { defaultFind }) => {
      if ((stored.data as { n: number }).n === 1 && !failedOnce) {
        failedOnce = true;
        throw new Error('hiccup');
      }
      return defaultFind();
    };
    const t = await hooksWith({ finder }, false);
    await t.hooks.migrate();
    await subscribe(t);
    const first = await post(t, 1);
    const second = await post(t, 2);
    await t.hooks.start(); // both are in the outbox: one pass reads them together
    await receiver.waitFor(2);
    await eventually(async () => {
      expect(await event(t, first)).toMatchObject({ status: 'done', fanOutAttempts: 1 });
      expect(await event(t, second)).toMatchObject({ status: 'done', fanOutAttempts: 0, error: null });
    });
    expect(t.log.filter((l) => l.level === 'warn').map((l) => l.obj.eventId)).toEqual([first]);
  });

  it('a dispatcher pass that fails (the outbox unreadable) is tried again with a growing pause, and resumes by itself', async () => {
    const t = await hooksWith({}, false);
    await t.hooks.migrate();
    await subscribe(t);
    const id = await post(t, 1);
    const restore = await breakReads(outboxTable(engine));
    await t.hooks.start();
    const failures = () => t.log.filter((l) => l.level === 'error' && /dispatcher pass failed/.test(l.msg));
    await eventually(() => expect(failures().length).toBeGreaterThanOrEqual(4), 20_000);
    const pauses = failures().map((l) => l.obj.retryInMs as number);
    expect(pauses.slice(0, 4)).toEqual([50, 100, 200, 400]); // the poll interval, doubled after each failure in a row
    expect(Math.max(...pauses)).toBeLessThanOrEqual(10_000);
    expect(receiver.received).toHaveLength(0);
    await restore();
    await receiver.waitFor(1, 15_000);
    await eventually(async () => expect((await event(t, id)).status).toBe('done'));
  });

  it('the REST API lists the owner\'s undeliverable events and fans one out again; another owner sees none of it', async () => {
    let broken = true;
    const finder: Finder = async (_name, _event, { defaultFind }) => {
      if (broken) throw new Error('finder down');
      return defaultFind();
    };
    const t = await hooksWith({ finder });
    const keys: Record<string, string> = { 'key-alice': 'alice', 'key-bob': 'bob' };
    const api = createApi(t.hooks, { authenticate: (r) => keys[r.headers.get('authorization')?.replace(/^Bearer /, '') ?? ''] ?? null, logger: { error: () => {} } });
    const call = (method: string, path: string, as = 'alice') => Promise.resolve(api.request(path, { method, headers: { authorization: `Bearer key-${as}` } }));
    await subscribe(t);
    const id = await post(t, 1);
    const orphan = await t.hooks.raw('note.posted', { n: 2 }); // no owner: undeliverable at once
    await eventually(async () => expect((await event(t, id)).status).toBe('undeliverable'));

    const listed = await call('GET', '/outbox?status=undeliverable');
    expect(listed.status).toBe(200);
    const body = (await listed.json()) as Array<Record<string, unknown>>;
    expect(body.map((e) => e.id)).toEqual([id]);
    expect(body[0]).toMatchObject({ id, event: 'note.posted', owner: 'alice', status: 'undeliverable', fanOutAttempts: 3, retryable: true, data: { n: 1 } });
    expect(body[0]!.error).toMatch(/finder down/);
    expect(await (await call('GET', '/outbox')).json()).toEqual(body); // undeliverable is the default
    expect(await (await call('GET', '/outbox', 'bob')).json()).toEqual([]);
    expect((await call('GET', `/outbox/${id}`, 'bob')).status).toBe(404);
    expect((await call('POST', `/outbox/${id}/retry`, 'bob')).status).toBe(404);
    expect((await call('GET', '/outbox?status=done')).status).toBe(400);
    // Text no store can hold is refused up front, as everywhere (PostgreSQL would fail the query on a NUL).
    expect((await call('POST', '/outbox/evt_%00/retry')).status).toBe(400);
    await expect(t.hooks.outbox.retry('evt_\u0000')).rejects.toMatchObject({ code: 'invalid_field' });
    await expect(t.hooks.outbox.list({ owner: 'ali\u0000ce' })).rejects.toMatchObject({ code: 'invalid_field' });
    expect('eventId' in orphan && (await call('GET', `/outbox/${orphan.eventId}`)).status).toBe(404);

    broken = false;
    const retried = await call('POST', `/outbox/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(await retried.json()).toEqual({ eventId: id });
    await receiver.waitFor(1);
    await eventually(async () => expect((await event(t, id)).status).toBe('done'));
    const again = await call('POST', `/outbox/${id}/retry`);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: { code: 'conflict' } });

    // The operator (no owner scope) sees the orphan, which cannot be fanned out again.
    if (!('eventId' in orphan)) throw new Error('the orphan event was not recorded');
    expect(await t.hooks.outbox.list()).toEqual([expect.objectContaining({ id: orphan.eventId, retryable: false, error: expect.stringMatching(/^no owner/) })]);
    await expect(t.hooks.outbox.retry(orphan.eventId)).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/no owner/) });
  });

  it('the admin page lists undeliverable events; its Retry button (same-origin POST only) fans one out again', async () => {
    let broken = true;
    const finder: Finder = async (_name, _event, { defaultFind }) => {
      if (broken) throw new Error('finder <down>');
      return defaultFind();
    };
    const t = await hooksWith({ finder });
    const host = new Hono();
    host.route('/admin', createAdminPage(t.hooks, { authorize: basicAuthorize, logger: { error: () => {} } }));
    const origin = 'http://admin.test';
    const get = (path: string) => Promise.resolve(host.request(`${origin}${path}`, { headers: { authorization: BASIC } }));
    const submit = (path: string, headers: Record<string, string> = { origin }) =>
      Promise.resolve(host.request(`${origin}${path}`, { method: 'POST', headers: { authorization: BASIC, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: '' }));
    await subscribe(t);
    const id = await post(t, 1);
    const orphan = await t.hooks.raw('note.posted', { n: 2 });
    if (!('eventId' in orphan)) throw new Error('the orphan event was not recorded');
    await eventually(async () => expect((await event(t, id)).status).toBe('undeliverable'));

    const page = await get('/admin/outbox');
    expect(page.status).toBe(200);
    const html = mainOf(await page.text());
    expect(html).toContain(id);
    expect(html).toContain('finder &lt;down&gt;'); // escaped
    expect(html).toContain(`action="/admin/outbox/${id}/retry"`);
    expect(html).toContain(orphan.eventId);
    expect(html).not.toContain(`action="/admin/outbox/${orphan.eventId}/retry"`); // no owner: nothing to retry
    expect(await (await get('/admin')).text()).toContain('href="/admin/outbox"'); // in the navigation

    broken = false;
    const forged = await submit(`/admin/outbox/${id}/retry`, { origin: 'http://evil.test' });
    expect(forged.status).toBe(403);
    await sleep(100);
    expect((await event(t, id)).status).toBe('undeliverable');

    const retried = await submit(`/admin/outbox/${id}/retry`);
    expect(retried.status).toBe(303);
    expect(retried.headers.get('location')).toBe('/admin/outbox?done=refanned');
    await receiver.waitFor(1);
    await eventually(async () => expect((await event(t, id)).status).toBe('done'));
    expect(mainOf(await (await get('/admin/outbox?done=refanned')).text())).toMatch(/fan-out/i);
    expect((await submit(`/admin/outbox/${orphan.eventId}/retry`)).status).toBe(409);
    expect((await submit('/admin/outbox/evt_nothing/retry')).status).toBe(404);
  });
});
