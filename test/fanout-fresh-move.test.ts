/**
 * Fresh events leaving `resthooks_outbox` at fan-out (migration 0006), on a real SQLite file and a real
 * PostgreSQL server: a batch moves whole and only the events that were read move, even when a key freed
 * by a move elsewhere went to a later event in between; on SQLite the move of a batch is a fixed number
 * of statements, whatever its size.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteStore } from '../src/index.js';
import { newId } from '../src/ids.js';
import { newDeliveryRow } from '../src/store/rows.js';
import type { EventTable, SubscriptionTable } from '../src/store/schema.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { runRecordingDatabase } from './support/statement-runs.js';

const T0 = 1_700_000_000_000;

function eventRow(): EventTable {
  return { id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{"id":1}', body: null, status: 'pending', error: null, created_at: T0 };
}

function subscriptionRow(): SubscriptionTable {
  return {
    id: newId('sub'), owner: 'alice', event: 'book.added', target: 'https://example.com/hooks', active: 1, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
    previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0, updated_at: T0,
  };
}

describe.each(ENGINES)('fresh events fanned out on %s', (engine) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(() => db.close());

  it('moves the events read, all done; an event saved after the read stays pending, even under a key a move freed', async () => {
    const store = await db.migrated();
    const subscription = subscriptionRow();
    await store.insertSubscription(subscription);
    const [a, b, c] = [eventRow(), eventRow(), eventRow()];
    for (const e of [a, b, c]) await store.append(e);
    const due = await store.pendingEvents(10, T0);
    expect(due.map((e) => e.id)).toEqual([a.id, b.id, c.id]);
    const fanned = (events: typeof due) => events.map((e) => ({ eventId: e.id, seq: e.seq, deliveries: [newDeliveryRow(e.id, subscription.id, T0)] }));

    // Another dispatcher fans out the last event first; the next save then gets the key it freed (SQLite
    // gives a new row the largest key + 1), inside the range of keys the first dispatcher read.
    expect((await store.commitFanOut(fanned(due.slice(2)))).size).toBe(1);
    const later = eventRow();
    await store.append(later);
    if (engine === 'sqlite') {
      const keys = await store.db.selectFrom('resthooks_outbox').select(['id', 'seq']).execute();
      expect(keys.find((row) => row.id === later.id)?.seq).toBe(due[2]!.seq);
    }

    const inserted = await store.commitFanOut(fanned(due));
    expect(inserted.size).toBe(2);
    const statuses = Object.fromEntries(
      (await store.db.selectFrom('resthooks_events').select(['id', 'status']).execute()).map((row) => [row.id, row.status]),
    );
    expect(statuses).toEqual({ [a.id]: 'done', [b.id]: 'done', [c.id]: 'done', ...(engine === 'postgres' ? { [later.id]: 'pending' } : {}) });
    expect((await store.pendingEvents(10, T0)).map((e) => e.id)).toEqual([later.id]);
    expect(await store.db.selectFrom('resthooks_deliveries').select('event_id').where('event_id', '=', later.id).execute()).toEqual([]);
  });

});

// PostgreSQL writes fresh events to resthooks_events directly (`appendsFreshEvents`): nothing to move there.
describe('fresh events fanned out on sqlite', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase('sqlite');
    await db.init();
  });
  afterEach(() => db.close());

  it('moves a batch of fresh events with the same statements whatever its size', async () => {
    const runs: string[] = [];
    const database = runRecordingDatabase(db.url, runs);
    const store = await db.migrated(sqliteStore(database, { checkpointer: false }));
    const subscription = subscriptionRow();
    await store.insertSubscription(subscription);
    const moves = async (events: number) => {
      for (let i = 0; i < events; i++) await store.append(eventRow());
      const due = await store.pendingEvents(events, T0);
      runs.length = 0;
      const inserted = await store.commitFanOut(due.map((e) => ({ eventId: e.id, seq: e.seq, deliveries: [newDeliveryRow(e.id, subscription.id, T0)] })));
      expect(inserted.size).toBe(events);
      return runs.filter((source) => /resthooks_outbox/.test(source)).length;
    };
    const few = await moves(2);
    expect(await moves(40)).toBe(few);
    expect(await store.db.selectFrom('resthooks_outbox').select('id').execute()).toEqual([]);
    expect(await store.db.selectFrom('resthooks_events').select('id').where('status', '=', 'done').execute()).toHaveLength(42);
  });
});
