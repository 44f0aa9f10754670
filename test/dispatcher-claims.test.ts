/**
 * The dispatcher asks the store for due deliveries only when some may exist: the fan-out hands its
 * deliveries over claimed, so a steady stream of events needs no claim query per pass. What makes a
 * delivery due (a retry, a requeue) is still claimed at once, not a poll interval later.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KyselyStore, type AttemptRecord } from '../src/store/kysely-store.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { eventually, testHooks } from './support/hooks.js';
import { startReceiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;

describe.each(ENGINES)('dispatcher claims on %s', (engine) => {
  let db: TestDatabase;
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    vi.restoreAllMocks();
    await db.close();
  });

  async function setUp(respond: (index: number) => number) {
    const receiver = await startReceiver((_, index) => respond(index));
    cleanups.push(() => receiver.close());
    // An hour between polls: anything claimed within the test was claimed because the dispatcher knew it was due.
    const t = await testHooks({ events: EVENTS, store: db.dialect(), delivery: { pollInterval: '1h', retry: { schedule: [0, 20, 40], jitter: 0 } } });
    cleanups.unshift(() => t.close());
    const subscription = await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    return { hooks: t.hooks, receiver, subscription };
  }

  /** Saves `events` books after the first, each once the one before has reached the receiver: each its own dispatcher pass. */
  async function oneByOne(hooks: Awaited<ReturnType<typeof setUp>>['hooks'], receiver: Awaited<ReturnType<typeof setUp>>['receiver'], events: number) {
    for (let i = 1; i <= events; i++) {
      await hooks.model('Book', 'created', { id: i, ownerId: 'alice' });
      await receiver.waitFor(i + 1);
    }
    await hooks.idle({ timeout: '10s' });
  }

  it('a stream of events is delivered with no claim query per pass', async () => {
    const { hooks, receiver } = await setUp(() => 200);
    await hooks.model('Book', 'created', { id: 0, ownerId: 'alice' });
    await receiver.waitFor(1);
    const claims = vi.spyOn(KyselyStore.prototype, 'claimDue');
    const events = 60;
    await oneByOne(hooks, receiver, events);
    // One per pass would be `events` (and more); a claim now and then (a lease check, a pass the timer ran) is fine.
    expect(claims.mock.calls.length).toBeLessThan(events / 2);
  });

  it('a stream of events is delivered without reading the next due time on every pass', async () => {
    const { hooks, receiver } = await setUp(() => 200);
    await hooks.model('Book', 'created', { id: 0, ownerId: 'alice' });
    await receiver.waitFor(1);
    const reads = vi.spyOn(KyselyStore.prototype, 'nextDueAt');
    const events = 60;
    await oneByOne(hooks, receiver, events);
    // Each pass ends by reading it unless nothing could have made a delivery due since the last read.
    expect(reads.mock.calls.length).toBeLessThan(events / 2);
  });

  it('a retry is claimed when it is due, not a poll interval later', async () => {
    const { hooks, receiver, subscription } = await setUp((index) => (index === 0 ? 503 : 200));
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(2, 10_000);
    await eventually(async () => expect((await hooks.deliveries.list(subscription.id))[0]).toMatchObject({ status: 'delivered', attempts: 2 }), 10_000);
  });

  it('a retry recorded while a pass reads the next due time is counted after its write, so that read is not kept', async () => {
    // A pass that reads the next due time while a record is being written may not see the retry, and
    // keeps what it read until `dueWrites` moves: it must move after the write, not before. The record is
    // written on its own or, on PostgreSQL, by a fan-out pass's statement (`recordsForPass`).
    const counts: Array<{ retry: boolean; asWritten: number; after: number }> = [];
    const observed = async <T>(store: KyselyStore, write: () => Promise<T>, carriesRetry: () => boolean): Promise<T> => {
      const dialect = store.dialect;
      const execute = dialect.executeBatch;
      let asWritten = Number.NaN;
      dialect.executeBatch = (queries) => {
        if (Number.isNaN(asWritten)) asWritten = store.dueWrites; // what a read of the next due time starting with this write would be kept against
        return execute.call(dialect, queries);
      };
      try {
        return await write();
      } finally {
        dialect.executeBatch = execute;
        counts.push({ retry: carriesRetry(), asWritten, after: store.dueWrites });
      }
    };
    const isRetry = (records: readonly AttemptRecord[]) => records.some((r) => r.delivery.status === 'pending');
    const record = KyselyStore.prototype.recordAttempts;
    vi.spyOn(KyselyStore.prototype, 'recordAttempts').mockImplementation(function (this: KyselyStore, ...args) {
      return observed(this, () => record.apply(this, args), () => isRetry(args[0]));
    });
    const pass = KyselyStore.prototype.fanOutPass;
    vi.spyOn(KyselyStore.prototype, 'fanOutPass').mockImplementation(function (this: KyselyStore, limit, now, handoff, recordsForPass) {
      let retry = false;
      const take = () => {
        const shared = recordsForPass?.();
        retry = shared !== undefined && isRetry(shared.records);
        return shared;
      };
      return observed(this, () => pass.call(this, limit, now, handoff, take), () => retry);
    });
    const { hooks, receiver, subscription } = await setUp((index) => (index === 0 ? 503 : 200));
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(2, 10_000);
    await eventually(async () => expect((await hooks.deliveries.list(subscription.id))[0]).toMatchObject({ status: 'delivered', attempts: 2 }), 10_000);
    const retry = counts.find((c) => c.retry)!;
    expect(retry.after).toBeGreaterThan(retry.asWritten);
  });

  it('a delivery requeued by hand is claimed at once', async () => {
    const { hooks, receiver, subscription } = await setUp(() => 200);
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(1);
    await hooks.idle({ timeout: '10s' });
    const [delivery] = await hooks.deliveries.list(subscription.id);
    await hooks.deliveries.retry(delivery!.id);
    await receiver.waitFor(2, 10_000);
  });
});
