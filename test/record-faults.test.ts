/**
 * The attempt record path under faults, end to end on the in-process engine, on a real SQLite file
 * and a real PostgreSQL database, with real receivers on 127.0.0.1:
 * - a claim whose lease lapsed mid-attempt, taken over and delivered by another process: its late
 *   result changes nothing (the delivery stays `delivered`, sent once more at most, never again);
 * - receivers answering bytes a text column cannot hold as they are (NUL, invalid UTF-8);
 * - a database that refuses one attempt row, or every record for a while.
 */
import type { ServerResponse } from 'node:http';
import { CompiledQuery } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { Hooks, Logger, QueueFactory } from '../src/index.js';
import { KyselyStore } from '../src/store/kysely-store.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';
import { eventually, testHooks } from './support/hooks.js';
import { startReceiver, type Receiver, type Responder } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);

async function database(engine: Engine): Promise<TestDatabase> {
  const db = new TestDatabase(engine);
  await db.init();
  cleanups.push(() => db.close()); // after every hooks instance on it has closed
  return db;
}

async function receiverFor(respond: Responder): Promise<Receiver> {
  const receiver = await startReceiver(respond);
  return later(() => receiver.close(), receiver);
}

interface LogLine {
  readonly level: 'warn' | 'error';
  readonly msg: string;
  readonly obj: object;
}
function capturingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    debug() {},
    info() {},
    warn: (obj, msg = '') => void lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg = '') => void lines.push({ level: 'error', msg, obj }),
  };
}

/**
 * An in-process queue whose claims are leased for less than an attempt can take. The default
 * in-process queue never starts an attempt its lease cannot cover, but a process that stalls (a
 * blocked event loop, a suspended VM, a long GC pause) outlives its leases all the same: this queue
 * makes that happen on purpose. It attempts every claim at once; `takeOne` stops it claiming after
 * its first, so that another process takes the delivery over.
 */
function shortLeaseQueue(leaseMs: number, { takeOne = false } = {}) {
  const running = new Set<Promise<unknown>>();
  const failures: unknown[] = [];
  let taken = 0;
  const settled = async () => {
    while (running.size > 0) await Promise.allSettled([...running]);
  };
  const factory: QueueFactory = ({ processor }) => {
    let onCapacity = () => {};
    const shutdown = new AbortController();
    return {
      leaseMs,
      capacity: () => (takeOne && taken > 0 ? 0 : 64),
      async enqueue(claims) {
        for (const claim of claims) {
          taken++;
          const attempt = processor(claim, shutdown.signal)
            .catch((error: unknown) => void failures.push(error))
            .finally(() => {
              running.delete(attempt);
              onCapacity();
            });
          running.add(attempt);
        }
      },
      onCapacity: (listener) => void (onCapacity = listener),
      settled,
      async close(timeoutMs) {
        const deadline = setTimeout(() => shutdown.abort(new Error('shutdown deadline')), timeoutMs);
        await settled();
        clearTimeout(deadline);
      },
    };
  };
  return { factory, settled, failures };
}

async function hooksOn(db: TestDatabase, options: Partial<Parameters<typeof testHooks<keyof typeof EVENTS>>[0]> = {}): Promise<Hooks<keyof typeof EVENTS>> {
  const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), ...options }, { start: false });
  return later(close, hooks);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(ENGINES)('a late result from a lapsed lease (in-process engine, %s)', (engine) => {
  const cases = [
    { late: 503, would: 'make it pending and send it again', schedule: [0, 20, 40] },
    { late: 410, would: 'delete the subscription', schedule: [0, 20, 40] },
    { late: 503, would: 'mark it failed (no retries left)', schedule: [0] },
  ] as const;
  for (const { late, would, schedule } of cases) {
    it(`a ${late} that arrives after another process delivered would ${would}: it changes nothing, and is logged`, async () => {
      const db = await database(engine);
      let held: ServerResponse | undefined;
      const receiver = await receiverFor((_request, index, response) => (index === 0 ? ((held = response), 'handled') : 200));
      const stalledQueue = shortLeaseQueue(500, { takeOne: true });
      const stalledLog = capturingLogger();
      // The stalled process: its attempt outlasts its lease (the receiver holds the answer).
      const stalled = await hooksOn(db, { queue: stalledQueue.factory, logger: stalledLog, delivery: { timeout: '60s', retry: { schedule: [...schedule], jitter: 0 } } });
      await stalled.start();
      const subscription = await stalled.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
      await stalled.model('Book', 'created', { id: 1, ownerId: 'alice' });
      await receiver.waitFor(1);

      // Another process, default queue: it claims the delivery once the lease lapses, and delivers it.
      const other = await hooksOn(db);
      await other.start();
      const [first, second] = await receiver.waitFor(2, 20_000);
      expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
      await eventually(async () => expect(await other.deliveries.list(subscription.id)).toMatchObject([{ status: 'delivered', attempts: 1 }]), 20_000);

      // Now the stalled attempt gets its answer, and records it.
      held!.writeHead(late).end();
      await stalledQueue.settled();
      await other.idle({ timeout: '20s' });
      await sleep(300); // a re-send would be due 20 ms after a wrongly applied retry

      expect(await other.subscriptions.get(subscription.id)).toMatchObject({ id: subscription.id, active: true });
      const [delivery] = await other.deliveries.list(subscription.id);
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
      expect(delivery!.attemptLog.map((a) => [a.number, a.statusCode, a.outcome])).toEqual([[1, 200, 'delivered']]);
      expect(receiver.received).toHaveLength(2);
      expect(stalledQueue.failures).toEqual([]);
      expect(stalledLog.lines).toContainEqual(
        expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/claims lapsed/), obj: { records: [expect.objectContaining({ deliveryId: delivery!.id, attempt: 1, statusCode: late })] } }),
      );
    });
  }
});

describe.each(ENGINES)('answers a text column cannot hold as they are (%s)', (engine) => {
  it('a body with NUL bytes and invalid UTF-8 is delivered and recorded, the bytes stored as U+FFFD', async () => {
    const db = await database(engine);
    const body = Buffer.concat([Buffer.from('ok\0then '), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(' end\0')]);
    const receiver = await receiverFor((_request, _index, response) => (response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body), 'handled'));
    const failing = await receiverFor((_request, _index, response) => (response.writeHead(500).end(Buffer.from('down\0\0')), 'handled'));
    const hooks = await hooksOn(db, { delivery: { retry: { schedule: [0], jitter: 0 } } });
    await hooks.start();
    const ok = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    const down = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: failing.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(1);
    await failing.waitFor(1);
    // Recorded promptly: not left in flight until a lease lapses.
    await eventually(async () => {
      expect(await hooks.deliveries.list(ok.id)).toMatchObject([{ status: 'delivered', attempts: 1 }]);
      expect(await hooks.deliveries.list(down.id)).toMatchObject([{ status: 'failed', attempts: 1, lastStatusCode: 500 }]);
    }, 15_000);
    const [delivered] = await hooks.deliveries.list(ok.id);
    expect(delivered!.attemptLog[0]!.responseExcerpt).toBe('ok\uFFFDthen \uFFFD\uFFFD\uFFFD end\uFFFD');
    const [failed] = await hooks.deliveries.list(down.id);
    expect(failed!.attemptLog[0]!.responseExcerpt).toBe('down\uFFFD\uFFFD');
    expect(receiver.received).toHaveLength(1);
  });
});

describe.each(ENGINES)('a custom deliverer\'s answer (%s)', (engine) => {
  it('its body is kept to `responseExcerptBytes` UTF-8 bytes, cut between characters, stored without NUL', async () => {
    const db = await database(engine);
    const hooks = await hooksOn(db, { deliverer: async () => ({ statusCode: 200, body: '\0😀😀😀😀😀😀😀😀' }), delivery: { responseExcerptBytes: 10 } });
    await hooks.start();
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: 'https://example.com/hook' });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await hooks.idle({ timeout: '15s' });
    const [delivery] = await hooks.deliveries.list(subscription.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1 });
    // U+FFFD is 3 bytes, each 😀 4: 3 + 4 fits in 10, one more would not.
    expect(delivery!.attemptLog[0]!.responseExcerpt).toBe('\uFFFD😀');
  });
});

/** Makes the database refuse what `when` (SQL over `new`) matches, by a trigger on `table`. */
async function refuse(db: TestDatabase, table: 'resthooks_attempts' | 'resthooks_deliveries', when: string): Promise<void> {
  const store = new KyselyStore(db.dialect());
  const statements =
    db.engine === 'sqlite'
      ? [`create trigger refuse_${table} before ${table === 'resthooks_attempts' ? 'insert' : 'update'} on ${table} when ${when} begin select raise(abort, 'refused by the test'); end`]
      : [
          `create function refuse_${table}() returns trigger language plpgsql as $$ begin if ${when} then raise exception 'refused by the test'; end if; return new; end $$`,
          `create trigger refuse_${table} before ${table === 'resthooks_attempts' ? 'insert' : 'update'} on ${table} for each row execute function refuse_${table}()`,
        ];
  for (const text of statements) await store.db.executeQuery(CompiledQuery.raw(text));
  await store.destroy();
}

describe.each(ENGINES)('a database that refuses attempt records (%s)', (engine) => {
  it('one attempt row refused: the others of its batch are recorded, it is recorded without its excerpt', async () => {
    const db = await database(engine);
    const hooks = await hooksOn(db);
    await hooks.migrate();
    await refuse(db, 'resthooks_attempts', `new.response_excerpt like '%poison%'`);
    // A first attempt that delivered is kept in its delivery's row (migration 0007): refused there too.
    await refuse(db, 'resthooks_deliveries', `new.first_attempt_excerpt like '%poison%'`);
    const log = capturingLogger();
    const receivers = await Promise.all(
      ['fine', 'poison', 'fine', 'fine'].map((answer) => receiverFor((_request, _index, response) => (response.writeHead(200).end(answer), 'handled'))),
    );
    const recording = await hooksOn(db, { logger: log });
    await recording.start();
    const subscriptions = await Promise.all(receivers.map((r) => recording.subscriptions.create({ owner: 'alice', event: 'book.added', target: r.url })));
    await recording.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await eventually(async () => {
      for (const subscription of subscriptions) expect(await recording.deliveries.list(subscription.id)).toMatchObject([{ status: 'delivered', attempts: 1 }]);
    }, 15_000);
    const excerpts = await Promise.all(subscriptions.map(async (s) => (await recording.deliveries.list(s.id))[0]!.attemptLog.map((a) => a.responseExcerpt)));
    expect(excerpts).toEqual([['fine'], [null], ['fine'], ['fine']]);
    for (const receiver of receivers) expect(receiver.received).toHaveLength(1);
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/without their response excerpt/) }));
  });

  it('every record refused for a while: the batch is written again, with backoff, once the database takes it; nothing is sent twice', async () => {
    const db = await database(engine);
    const hooks = await hooksOn(db);
    await hooks.migrate();
    // Refuses moving a delivery out of `in_flight` (a record or a release) while the flag row exists.
    const admin = new KyselyStore(db.dialect());
    later(() => admin.destroy(), admin);
    await admin.db.executeQuery(CompiledQuery.raw('create table refuse_records (id integer)'));
    await admin.db.executeQuery(CompiledQuery.raw('insert into refuse_records (id) values (1)'));
    await refuse(db, 'resthooks_deliveries', `old.status = 'in_flight' and new.status <> 'in_flight' and exists (select 1 from refuse_records)`);
    const receiver = await receiverFor(() => 200);
    const log = capturingLogger();
    // A lease far beyond the test: the record must come from the retried batch, not from a re-send.
    const queue = shortLeaseQueue(120_000);
    const recording = await hooksOn(db, { queue: queue.factory, logger: log });
    await recording.start();
    const subscription = await recording.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await recording.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(1);
    await eventually(() => expect(log.lines).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringMatching(/could not record attempts; retrying/) })), 10_000);
    expect(await recording.deliveries.list(subscription.id)).toMatchObject([{ status: 'in_flight' }]);

    await admin.db.executeQuery(CompiledQuery.raw('delete from refuse_records')); // the database is healthy again
    await recording.idle({ timeout: '20s' });
    expect(await recording.deliveries.list(subscription.id)).toMatchObject([{ status: 'delivered', attempts: 1 }]);
    expect(receiver.received).toHaveLength(1);
  });
});
