/**
 * `hooks.metrics()` and `hooks.health()` on a real store (SQLite and PostgreSQL) and a real receiver:
 * the exposition parses, its counters and backlog gauges move as deliveries succeed, retry, fail and
 * end gone, and health follows the dispatcher, the backlog and the store's reachability.
 */
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { healthEndpoints, postgresStore } from '../src/index.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';
import { eventually, testHooks } from './support/hooks.js';
import { parseExposition, type Exposition } from './support/prometheus.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const EVENTS = { 'book.added': 'Book.created' } as const;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function database(engine: Engine): Promise<TestDatabase> {
  const db = new TestDatabase(engine);
  await db.init();
  cleanups.push(() => db.close());
  return db;
}

/** A receiver answering by path: /ok 200, /fail 500, /gone 410, /hang never. */
async function receiver(): Promise<Receiver> {
  const r = await startReceiver((request) => (request.path === '/fail' ? 500 : request.path === '/gone' ? 410 : request.path === '/hang' ? 'hang' : 200));
  return later(() => r.close(), r);
}

async function scrape(hooks: { metrics(): Promise<string> }): Promise<Exposition> {
  return parseExposition(await hooks.metrics());
}

describe.each(ENGINES)('metrics and health (%s)', (engine) => {
  it('counts triggers, attempts by outcome, ended deliveries, latency and batch sizes as deliveries succeed, retry, fail and end gone', async () => {
    const db = await database(engine);
    const r = await receiver();
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), metrics: { backlogCacheTtl: 0 } });
    later(close, hooks);

    const before = await scrape(hooks);
    expect(before.types.get('resthooks_attempts_total')).toBe('counter');
    expect(before.types.get('resthooks_attempt_duration_seconds')).toBe('histogram');
    expect(before.types.get('resthooks_deliveries_pending')).toBe('gauge');
    for (const outcome of ['delivered', 'retry', 'failed', 'gone']) expect(before.value('resthooks_attempts_total', { outcome })).toBe(0);
    expect(before.value('resthooks_store_up')).toBe(1);
    expect(before.value('resthooks_subscriptions', { state: 'active' })).toBe(0);

    for (const [owner, path] of [['alice', '/ok'], ['bob', '/fail'], ['carol', '/gone']] as const) {
      await hooks.subscriptions.create({ owner, event: 'book.added', target: `${r.url}${path}` });
      await hooks.model('Book', 'created', { id: owner, ownerId: owner });
    }
    await hooks.model('Book', 'created', { id: 'nobody' }); // no owner: recorded, undeliverable
    await hooks.model('Author', 'created', { id: 1 }); // no event mapped

    // /ok: one delivered attempt; /fail: retry, retry, failed (schedule 0, 20, 40 ms); /gone: one, and the subscription deleted.
    await eventually(async () => {
      const after = await scrape(hooks);
      expect(after.value('resthooks_attempts_total', { outcome: 'delivered' })).toBe(1);
      expect(after.value('resthooks_attempts_total', { outcome: 'retry' })).toBe(2);
      expect(after.value('resthooks_attempts_total', { outcome: 'failed' })).toBe(1);
      expect(after.value('resthooks_attempts_total', { outcome: 'gone' })).toBe(1);
      expect(after.value('resthooks_deliveries_total', { outcome: 'delivered' })).toBe(1);
      expect(after.value('resthooks_deliveries_total', { outcome: 'failed' })).toBe(1);
      expect(after.value('resthooks_deliveries_total', { outcome: 'gone' })).toBe(1);
      expect(after.value('resthooks_deliveries_pending')).toBe(0);
      expect(after.value('resthooks_deliveries_in_flight')).toBe(0);
    }, 20_000);
    await hooks.idle();
    const after = await scrape(hooks);
    expect(after.value('resthooks_triggers_total', { status: 'queued' })).toBe(3);
    expect(after.value('resthooks_triggers_total', { status: 'undeliverable' })).toBe(1);
    expect(after.value('resthooks_triggers_total', { status: 'ignored' })).toBe(1);
    expect(after.value('resthooks_attempt_duration_seconds_count')).toBe(5);
    expect(after.value('resthooks_attempt_duration_seconds_bucket', { le: '+Inf' })).toBe(5);
    expect(after.value('resthooks_attempt_duration_seconds_sum')).toBeGreaterThan(0);
    expect(after.value('resthooks_events_fanned_out_total')).toBe(3);
    expect(after.value('resthooks_fanout_deliveries_total')).toBe(3);
    expect(after.value('resthooks_fanout_batch_events_count')).toBeGreaterThanOrEqual(1);
    expect(after.value('resthooks_fanout_batch_events_sum')).toBe(3);
    // Every attempt result was written in some batch.
    expect(after.value('resthooks_record_batch_attempts_sum')).toBe(5);
    // carol's subscription was deleted by the 410; bob's is failing (its streak runs until disableAfter).
    expect(after.value('resthooks_subscriptions', { state: 'active' })).toBe(2);
    expect(after.value('resthooks_subscriptions', { state: 'failing' })).toBe(1);
    expect(after.value('resthooks_subscriptions', { state: 'disabled' })).toBe(0);
    expect(after.value('resthooks_dispatcher_running')).toBe(1);
    expect(after.value('resthooks_dispatcher_last_pass_age_seconds')).toBeGreaterThanOrEqual(0);
    // Without a tracer, no trace header goes out.
    expect(r.received.every((request) => request.headers.traceparent === undefined)).toBe(true);
  }, 60_000);

  it('reads the backlog from the store (pending, due, in flight, oldest due age, outbox, failing) and health fails on a stalled backlog until it drains', async () => {
    const db = await database(engine);
    const r = await receiver();
    const { hooks, close } = await testHooks(
      { events: EVENTS, store: db.dialect(), metrics: { backlogCacheTtl: 0 }, health: { maxDueAge: 200 }, delivery: { retry: { schedule: [0, '1h'], jitter: 0 } } },
      { start: false },
    );
    later(close, hooks);
    const ok = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${r.url}/ok` });
    // Not started: a test delivery is due at once, and nothing claims it.
    await hooks.sendTest(ok.id);
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const stalled = await scrape(hooks);
    expect(stalled.value('resthooks_deliveries_pending')).toBe(1);
    expect(stalled.value('resthooks_deliveries_due')).toBe(1);
    expect(stalled.value('resthooks_deliveries_in_flight')).toBe(0);
    expect(stalled.value('resthooks_outbox_pending_events')).toBe(1);
    expect(stalled.value('resthooks_dispatcher_running')).toBe(0);
    const notStarted = await hooks.health();
    expect(notStarted.ok).toBe(false);
    expect(notStarted.checks.store.ok).toBe(true);
    expect(notStarted.checks.dispatcher).toMatchObject({ ok: false, started: false });
    const aged = await eventually(async () => {
      const report = await hooks.health();
      expect(report.checks.backlog.ok).toBe(false);
      return report;
    }, 20_000);
    expect(aged.checks.backlog.oldestDueAgeMs).toBeGreaterThan(200);
    expect((await scrape(hooks)).value('resthooks_oldest_due_age_seconds')).toBeGreaterThan(0.2);
    const endpoints = healthEndpoints(hooks);
    expect((await endpoints(new Request('http://app/readyz')))!.status).toBe(503);
    expect((await endpoints(new Request('http://app/healthz')))!.status).toBe(503);

    await hooks.start();
    await r.waitFor(2);
    const healthy = await eventually(async () => {
      const report = await hooks.health();
      expect(report.ok).toBe(true);
      return report;
    }, 20_000);
    expect(healthy.checks.backlog.oldestDueAgeMs).toBe(0);
    expect(healthy.checks.dispatcher).toMatchObject({ ok: true, started: true });
    expect((await endpoints(new Request('http://app/readyz')))!.status).toBe(200);
    expect((await endpoints(new Request('http://app/healthz')))!.status).toBe(200);
    const metrics = (await endpoints(new Request('http://app/metrics')))!;
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parseExposition(await metrics.text()).value('resthooks_deliveries_due')).toBe(0);
    expect(await endpoints(new Request('http://app/other'))).toBeUndefined();

    // A receiver that hangs: its delivery shows in flight. One that fails: pending, retried in an hour, not due.
    await hooks.subscriptions.create({ owner: 'bob', event: 'book.added', target: `${r.url}/hang` });
    await hooks.subscriptions.create({ owner: 'carol', event: 'book.added', target: `${r.url}/fail` });
    await hooks.model('Book', 'created', { id: 2, ownerId: 'bob' });
    await hooks.model('Book', 'created', { id: 3, ownerId: 'carol' });
    await eventually(async () => {
      const busy = await scrape(hooks);
      expect(busy.value('resthooks_deliveries_in_flight')).toBe(1);
      expect(busy.value('resthooks_deliveries_pending')).toBe(1);
      expect(busy.value('resthooks_deliveries_due')).toBe(0);
      expect(busy.value('resthooks_oldest_due_age_seconds')).toBe(0);
      expect(busy.value('resthooks_subscriptions', { state: 'failing' })).toBe(1);
    }, 20_000);
  }, 60_000);

  it('the dispatcher check fails when its loop has not finished a pass within dispatcherStaleAfter, and passes after the next pass', async () => {
    const db = await database(engine);
    // Nothing to do and a 1 h poll: after its first passes the loop sleeps, as a stuck one would be silent.
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), delivery: { pollInterval: '1h' }, health: { dispatcherStaleAfter: 300 } });
    later(close, hooks);
    const stale = await eventually(async () => {
      const report = await hooks.health();
      expect(report.checks.dispatcher.ok).toBe(false);
      return report;
    }, 20_000);
    expect(stale.checks.dispatcher.started).toBe(true);
    expect(stale.checks.dispatcher.lastPassAgeMs).toBeGreaterThan(300);
    expect((await healthEndpoints(hooks)(new Request('http://app/healthz')))!.status).toBe(503);
    // Readiness does not depend on the loop's age: the store answers and it is started.
    expect((await healthEndpoints(hooks)(new Request('http://app/readyz')))!.status).toBe(200);
    hooks.notify();
    await eventually(async () => expect((await hooks.health()).checks.dispatcher.ok).toBe(true), 20_000);
  });

  it('counts a subscription the engine disabled apart from one its owner turned off', async () => {
    const db = await database(engine);
    const r = await receiver();
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), metrics: { backlogCacheTtl: 0 }, delivery: { retry: { schedule: [0], jitter: 0 }, disableAfter: 0 } });
    later(close, hooks);
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${r.url}/fail` });
    const paused = await hooks.subscriptions.create({ owner: 'bob', event: 'book.added', target: `${r.url}/ok` });
    await hooks.subscriptions.update(paused.id, { active: false });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await eventually(async () => {
      const scraped = await scrape(hooks);
      expect(scraped.value('resthooks_subscriptions', { state: 'disabled' })).toBe(1);
      expect(scraped.value('resthooks_subscriptions', { state: 'inactive' })).toBe(1);
      expect(scraped.value('resthooks_subscriptions', { state: 'active' })).toBe(0);
      expect(scraped.value('resthooks_deliveries_total', { outcome: 'failed' })).toBe(1);
    }, 20_000);
  });

  it('caches the backlog for backlogCacheTtl: scrapes within it read the store once', async () => {
    const db = await database(engine);
    const r = await receiver();
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), metrics: { backlogCacheTtl: '1h' } }, { start: false });
    later(close, hooks);
    const ok = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${r.url}/ok` });
    expect((await scrape(hooks)).value('resthooks_deliveries_pending')).toBe(0);
    await hooks.sendTest(ok.id);
    // Cached: the new delivery is not seen within the hour.
    expect((await scrape(hooks)).value('resthooks_deliveries_pending')).toBe(0);
    expect((await scrape(hooks)).value('resthooks_backlog_read_age_seconds')).toBeGreaterThanOrEqual(0);
  });
});

// Not in the unit scope, which starts no PostgreSQL.
if (ENGINES.includes('postgres')) describe('health with PostgreSQL unreachable', () => {
  it('turns not-ok while the connection to PostgreSQL is cut, and ok again once it is back', async () => {
    const db = await database('postgres');
    await (await db.migrated()).destroy();
    const url = new URL(db.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    later(() => proxy.close(), proxy);
    url.port = String(proxy.port);
    const pool = new pg.Pool({ connectionString: url.href, max: 4, connectionTimeoutMillis: 2000 });
    later(() => pool.end().catch(() => undefined), pool);
    const { hooks, close } = await testHooks({ events: EVENTS, store: postgresStore(pool), metrics: { backlogCacheTtl: 0 }, health: { storeTimeout: '3s' } });
    later(close, hooks);
    await eventually(async () => expect((await hooks.health()).ok).toBe(true), 20_000);

    proxy.cut();
    const down = await eventually(async () => {
      const report = await hooks.health();
      expect(report.ok).toBe(false);
      return report;
    }, 20_000);
    expect(down.checks.store.ok).toBe(false);
    expect(down.checks.store.detail).toMatch(/^unreachable: /);
    expect(down.checks.backlog.ok).toBe(false);
    const scraped = await scrape(hooks);
    expect(scraped.value('resthooks_store_up')).toBe(0);
    expect(scraped.value('resthooks_deliveries_pending')).toBeUndefined();
    expect(scraped.value('resthooks_attempts_total', { outcome: 'delivered' })).toBe(0);
    expect((await healthEndpoints(hooks)(new Request('http://app/readyz')))!.status).toBe(503);

    proxy.restore();
    await eventually(async () => {
      const report = await hooks.health();
      expect(report.checks.store.ok).toBe(true);
      expect(report.ok).toBe(true);
    }, 30_000);
    expect((await scrape(hooks)).value('resthooks_store_up')).toBe(1);
    expect((await healthEndpoints(hooks)(new Request('http://app/readyz')))!.status).toBe(200);
  }, 90_000);
});
