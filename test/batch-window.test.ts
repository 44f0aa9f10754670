/**
 * On PostgreSQL each fan-out pass and each batch of attempt records is a commit that waits for the disk.
 * While events trickle in one by one, the store's batch window (`postgresStore(pool, { batchWindowMs })`)
 * holds the next pass and a small record batch back for more, so that several events share them.
 * A window far longer than the saves take makes the counts independent of this machine's speed.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, postgresStore } from '../src/index.js';
import { KyselyStore } from '../src/store/kysely-store.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { testHooks } from './support/hooks.js';
import { startReceiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;

describe.skipIf(!ENGINES.includes('postgres'))('the batch window on PostgreSQL', () => {
  let db: TestDatabase;
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeEach(async () => {
    db = new TestDatabase('postgres');
    await db.init();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    vi.restoreAllMocks();
    await db.close();
  });

  it('events saved one by one share fan-out passes and record batches', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    // No poll in the test's time: every pass is one the saves asked for.
    const t = await testHooks({ events: EVENTS, store: postgresStore(db.pool(), { batchWindowMs: 1500 }), delivery: { pollInterval: '1h' } });
    cleanups.unshift(() => t.close());
    await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    const passes = vi.spyOn(KyselyStore.prototype, 'fanOutPass');
    const records = vi.spyOn(KyselyStore.prototype, 'recordAttempts');
    const events = 12;
    for (let i = 1; i <= events; i++) await t.hooks.model('Book', 'created', { id: i, ownerId: 'alice' });
    await receiver.waitFor(events, 20_000);
    await t.hooks.idle({ timeout: '20s' });
    expect(new Set(receiver.received.map((r) => (r.json as { data: { id: number } }).data.id)).size).toBe(events);
    // One pass and one record batch per event without the window.
    expect(passes.mock.calls.length).toBeLessThanOrEqual(4);
    expect(records.mock.calls.length).toBeLessThanOrEqual(4);
  });

  it('is 5 ms unless set', () => {
    expect(postgresStore(db.pool()).capabilities.batchWindowMs).toBe(5);
    expect(postgresStore(db.pool(), { batchWindowMs: 2 }).capabilities.batchWindowMs).toBe(2);
  });

  it('a window that is not a number of milliseconds from 0 to 10 s is refused with a clear error', () => {
    for (const batchWindowMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, 60_000]) {
      expect(() => postgresStore(db.pool(), { batchWindowMs })).toThrow(ConfigError);
      expect(() => postgresStore(db.pool(), { batchWindowMs })).toThrow(/batchWindowMs must be a number of milliseconds from 0 to 10000/);
    }
    expect(() => postgresStore(db.pool(), { batchWindowMs: 0 })).not.toThrow();
  });
});
