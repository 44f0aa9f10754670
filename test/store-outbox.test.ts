/**
 * The store's fan-out bookkeeping on a real SQLite file and a real PostgreSQL server: which events
 * are due, what a failed lookup writes (a later try, or undeliverable), fanning an event out again,
 * the owner-scoped outbox list, the 0003 migration over existing data, and the query plan of the
 * pending read (it must stay on the partial index however many events wait for a later try).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../src/ids.js';
import { getOutboxEvent, listOutbox } from '../src/store/outbox.js';
import { newDeliveryRow } from '../src/store/rows.js';
import type { EventTable, SubscriptionTable } from '../src/store/schema.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { postgresPlan, recordingPostgres, recordingSqlite, sqlitePlan } from './support/query-plans.js';
import { migrateTo } from '../src/store/migrator.js';

const T0 = 1_700_000_000_000;

function eventRow(over: Partial<EventTable> = {}): EventTable {
  return { id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{"id":1}', body: null, status: 'pending', error: null, created_at: T0, ...over };
}

function subscriptionRow(over: Partial<SubscriptionTable> = {}): SubscriptionTable {
  return {
    id: newId('sub'), owner: 'alice', event: 'book.added', target: 'https://example.com/hooks', active: 1, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
    previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0, updated_at: T0, ...over,
  };
}

const setback = (eventId: string, attempts: number, retryAt: number | null, finderFailures = attempts) => ({ eventId, attempts, finderFailures, error: `try ${attempts} failed`, retryAt });

describe.each(ENGINES)('fan-out bookkeeping on %s', (engine) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(() => db.close());

  it('pendingEvents reads due events only: never tried ones in order, then retries by their time', async () => {
    const store = await db.migrated();
    const [a, b, c, d] = [eventRow(), eventRow(), eventRow(), eventRow()];
    for (const e of [a, b, c, d]) await store.append(e);
    await store.commitFanOut([], [setback(a.id, 1, T0 + 500), setback(b.id, 2, T0 + 100)]);

    expect((await store.pendingEvents(10, T0)).map((e) => e.id)).toEqual([c.id, d.id]);
    expect((await store.pendingEvents(10, T0 + 100)).map((e) => e.id)).toEqual([c.id, d.id, b.id]);
    expect((await store.pendingEvents(10, T0 + 1000)).map((e) => e.id)).toEqual([c.id, d.id, b.id, a.id]);
    expect((await store.pendingEvents(1, T0 + 1000)).map((e) => e.id)).toEqual([c.id]);
    const retried = (await store.pendingEvents(10, T0 + 100)).find((r) => r.id === b.id);
    expect(retried).toMatchObject({ fanout_attempts: 2, finder_failures: 2, error: 'try 2 failed' });
    expect(Number(retried!.next_fanout_at)).toBe(T0 + 100);
    expect(await store.nextFanOutAt()).toBe(T0 + 100);

    await store.commitFanOut([{ eventId: c.id, deliveries: [] }, { eventId: d.id, deliveries: [] }]);
    expect(await store.hasPendingEvents(T0)).toBe(false); // only later tries wait: idle now
    expect(await store.hasPendingEvents(T0 + 100)).toBe(true);
    expect(await store.isIdle(T0)).toBe(true);
  });

  it('commitFanOut: a setback to undeliverable, a later try, and deliveries commit together; a setback of an event fanned out meanwhile is ignored', async () => {
    const store = await db.migrated();
    const subscription = subscriptionRow();
    await store.insertSubscription(subscription);
    const [ok, later, given, raced] = [eventRow(), eventRow(), eventRow(), eventRow()];
    for (const e of [ok, later, given, raced]) await store.append(e);
    await store.commitFanOut([{ eventId: raced.id, deliveries: [] }]); // another process fanned it out first
    const delivery = newDeliveryRow(ok.id, subscription.id, T0);
    const inserted = await store.commitFanOut([{ eventId: ok.id, deliveries: [delivery] }], [setback(later.id, 1, T0 + 50), setback(given.id, 8, null), setback(raced.id, 3, null)]);

    expect([...inserted]).toEqual([delivery.id]);
    const state = async (id: string) => {
      const e = await getOutboxEvent(store, id);
      return e && { status: e.status, fanOutAttempts: e.fanOutAttempts, error: e.error, nextFanOutAt: e.nextFanOutAt?.getTime() ?? null, retryable: e.retryable };
    };
    expect(await state(ok.id)).toEqual({ status: 'done', fanOutAttempts: 0, error: null, nextFanOutAt: null, retryable: false });
    expect(await state(later.id)).toEqual({ status: 'pending', fanOutAttempts: 1, error: 'try 1 failed', nextFanOutAt: T0 + 50, retryable: true });
    expect(await state(given.id)).toEqual({ status: 'undeliverable', fanOutAttempts: 8, error: 'try 8 failed', nextFanOutAt: null, retryable: true });
    expect(await state(raced.id)).toEqual({ status: 'done', fanOutAttempts: 0, error: null, nextFanOutAt: null, retryable: false });
  });

  it('refanEvent: an event given up on (or waiting) is due now with a fresh count; one with no owner, or done, is left alone', async () => {
    const store = await db.migrated();
    const given = eventRow();
    const waiting = eventRow();
    const everyone = eventRow({ owner: null, all_owners: 1 });
    const orphan = eventRow({ owner: null, status: 'undeliverable', error: 'no owner: the instance has none and no owner was given' });
    const done = eventRow();
    for (const e of [given, waiting, everyone, orphan, done]) await store.append(e);
    await store.commitFanOut([{ eventId: done.id, deliveries: [] }], [setback(given.id, 8, null), setback(waiting.id, 2, T0 + 60_000), setback(everyone.id, 8, null)]);

    expect(await store.refanEvent(given.id, T0 + 5)).toBe(true);
    expect(await store.refanEvent(waiting.id, T0 + 5)).toBe(true);
    expect(await store.refanEvent(everyone.id, T0 + 5)).toBe(true);
    expect(await store.refanEvent(orphan.id, T0 + 5)).toBe(false);
    expect(await store.refanEvent(done.id, T0 + 5)).toBe(false);
    expect(await store.refanEvent('evt_missing', T0 + 5)).toBe(false);

    const due = await store.pendingEvents(10, T0 + 5);
    expect(due.map((e) => e.id).sort()).toEqual([given.id, waiting.id, everyone.id].sort());
    for (const e of due) expect(e).toMatchObject({ status: 'pending', fanout_attempts: 0, finder_failures: 0, error: null });
    expect(await getOutboxEvent(store, orphan.id)).toMatchObject({ status: 'undeliverable', retryable: false });
    expect(await getOutboxEvent(store, done.id)).toMatchObject({ status: 'done', retryable: false });
  });

  it("listOutbox: by status, newest first, paged; an owner sees their events and every owner's, never another's or an ownerless one", async () => {
    const store = await db.migrated();
    const mine = [eventRow(), eventRow()];
    const everyone = eventRow({ owner: null, all_owners: 1 });
    const bobs = eventRow({ owner: 'bob' });
    const orphan = eventRow({ owner: null, status: 'undeliverable', error: 'no owner' });
    const waiting = eventRow();
    for (const e of [...mine, everyone, bobs, orphan, waiting]) await store.append(e);
    await store.commitFanOut([], [...mine, everyone, bobs].map((e) => setback(e.id, 8, null)).concat(setback(waiting.id, 1, T0 + 10)));
    const ids = (events: ReadonlyArray<{ id: string }>) => events.map((e) => e.id);

    expect(ids(await listOutbox(store, { status: 'undeliverable', limit: 10 }))).toEqual([orphan.id, bobs.id, everyone.id, mine[1]!.id, mine[0]!.id]);
    expect(ids(await listOutbox(store, { status: 'undeliverable', owner: 'alice', limit: 10 }))).toEqual([everyone.id, mine[1]!.id, mine[0]!.id]);
    expect(ids(await listOutbox(store, { status: 'undeliverable', owner: 'alice', limit: 2 }))).toEqual([everyone.id, mine[1]!.id]);
    expect(ids(await listOutbox(store, { status: 'undeliverable', owner: 'alice', limit: 2, before: mine[1]!.id }))).toEqual([mine[0]!.id]);
    expect(ids(await listOutbox(store, { status: 'undeliverable', owner: 'bob', limit: 10 }))).toEqual([bobs.id, everyone.id]);
    expect(ids(await listOutbox(store, { status: 'pending', owner: 'alice', limit: 10 }))).toEqual([waiting.id]);
    expect(ids(await listOutbox(store, { status: 'pending', owner: 'bob', limit: 10 }))).toEqual([]);
    expect(await getOutboxEvent(store, bobs.id, 'alice')).toBeUndefined();
    expect(await getOutboxEvent(store, orphan.id, 'alice')).toBeUndefined();
    expect(await getOutboxEvent(store, everyone.id, 'alice')).toMatchObject({ id: everyone.id, allOwners: true, owner: null, data: { id: 1 } });
  });

  it('migrating a 0002 database keeps its pending events pending and due, and its history as it was', async () => {
    const store = db.store();
    expect((await migrateTo(store.db, '0002-attempts-keyed-by-delivery')).error).toBeUndefined();
    const pending = eventRow();
    const undeliverable = eventRow({ owner: null, status: 'undeliverable', error: 'no owner' });
    await store.db.insertInto('resthooks_events').values([pending, undeliverable]).execute();

    const { error, results } = await store.migrate();
    expect(error).toBeUndefined();
    expect(results?.map((r) => r.migrationName)).toEqual(['0003-event-fanout-retries', '0004-event-names-indexed-at-fanout', '0005-subscription-max-per-second', '0006-fresh-events-table', '0007-first-attempt-in-delivery-row', '0008-subscription-history-table']);
    expect((await store.pendingEvents(10, T0)).map((e) => e.id)).toEqual([pending.id]);
    expect(await getOutboxEvent(store, pending.id)).toMatchObject({ status: 'pending', fanOutAttempts: 0, error: null });
    expect(await getOutboxEvent(store, undeliverable.id)).toMatchObject({ status: 'undeliverable', error: 'no owner', retryable: false });
  });

  it('migrating a 0005 database with pending events: they stay pending, are fanned out first, and fresh events follow them', async () => {
    const store = db.store();
    expect((await migrateTo(store.db, '0005-subscription-max-per-second')).error).toBeUndefined();
    const subscription = subscriptionRow();
    await store.insertSubscription(subscription);
    const [older, old] = [eventRow(), eventRow()];
    const given = eventRow({ status: 'undeliverable', error: 'finder failed' });
    await store.db.insertInto('resthooks_events').values([older, old, given]).execute();
    await store.db.updateTable('resthooks_events').set({ fanout_attempts: 1, finder_failures: 1, next_fanout_at: T0 + 10 }).where('id', '=', old.id).execute();

    const { error, results } = await store.migrate();
    expect(error).toBeUndefined();
    expect(results?.map((r) => [r.migrationName, r.status])).toEqual([['0006-fresh-events-table', 'Success'], ['0007-first-attempt-in-delivery-row', 'Success'], ['0008-subscription-history-table', 'Success']]);
    const fresh = eventRow();
    await store.append(fresh);
    const where = async (id: string) => ({
      fresh: (await store.db.selectFrom('resthooks_outbox').select('id').where('id', '=', id).execute()).length,
      indexed: (await store.db.selectFrom('resthooks_events').select('status').where('id', '=', id).execute()).map((e) => e.status),
    });
    // SQLite appends to the fresh table; PostgreSQL keeps writing resthooks_events.
    expect(await where(fresh.id)).toEqual(engine === 'sqlite' ? { fresh: 1, indexed: [] } : { fresh: 0, indexed: ['pending'] });

    // Untried events from before the migration first, then the fresh ones, then a later try once due.
    const due = await store.pendingEvents(10, T0 + 10);
    expect(due.map((e) => e.id)).toEqual([older.id, fresh.id, old.id]);
    expect(await getOutboxEvent(store, older.id)).toMatchObject({ status: 'pending', fanOutAttempts: 0, retryable: true });
    expect(await getOutboxEvent(store, fresh.id)).toMatchObject({ status: 'pending', fanOutAttempts: 0, retryable: true });
    expect(await listOutbox(store, { status: 'undeliverable', limit: 10 })).toMatchObject([{ id: given.id, error: 'finder failed' }]);
    const inserted = await store.commitFanOut(due.map((e) => ({ eventId: e.id, seq: e.seq, deliveries: [newDeliveryRow(e.id, subscription.id, T0)] })));

    expect(inserted.size).toBe(3);
    for (const e of [older, fresh, old]) expect(await where(e.id)).toEqual({ fresh: 0, indexed: ['done'] });
    expect(await store.pendingEvents(10, T0 + 10)).toEqual([]);
    expect(await store.hasPendingEvents(T0 + 10)).toBe(false);
    // A repeated fan-out of the same reads (another process got there first) changes nothing.
    expect((await store.commitFanOut(due.map((e) => ({ eventId: e.id, seq: e.seq, deliveries: [newDeliveryRow(e.id, subscription.id, T0)] })))).size).toBe(0);
    expect(await store.db.selectFrom('resthooks_events').select('id').execute()).toHaveLength(4);
  });

  it('undoing 0006 puts fresh events back into resthooks_events as pending, in order, and drops the table', async () => {
    const store = await db.migrated();
    const events = [eventRow(), eventRow(), eventRow()];
    for (const e of events) await store.append(e);
    const { error, results } = await migrateTo(store.db, '0005-subscription-max-per-second');
    expect(error).toBeUndefined();
    expect(results?.map((r) => [r.migrationName, r.direction, r.status])).toEqual([
      ['0008-subscription-history-table', 'Down', 'Success'],
      ['0007-first-attempt-in-delivery-row', 'Down', 'Success'],
      ['0006-fresh-events-table', 'Down', 'Success'],
    ]);
    const rows = await store.db.selectFrom('resthooks_events').select(['id', 'status', 'data']).orderBy('id').execute();
    expect(rows).toEqual(events.map((e) => ({ id: e.id, status: 'pending', data: e.data })));
    await expect(store.db.selectFrom('resthooks_outbox').select('id').execute()).rejects.toThrow();
  });

  it('the pending read stays on the partial index, in index order, whatever waits for a later try', async () => {
    const seen: string[] = [];
    const store = await db.migrated(engine === 'sqlite' ? recordingSqlite(db.url, seen) : recordingPostgres(db.pool(), seen));
    await store.pendingEvents(10, T0);
    const sql = seen.find((text) => /next_fanout_at/.test(text) && /^select/i.test(text));
    expect(sql).toBeDefined();
    const plan = engine === 'sqlite' ? sqlitePlan(db.url, sql!) : await postgresPlan(db.pool({ max: 1 }), sql!);
    expect(plan).toContain('resthooks_events_pending');
    // No sort step: the index hands the rows over in the order asked for.
    expect(plan).not.toMatch(/TEMP B-TREE|Sort/i);
    if (engine === 'sqlite') {
      // The fresh table is read in its own key's order (seq is the rowid): no sort either, however many wait.
      const fresh = seen.find((text) => /from "resthooks_outbox"/.test(text) && /order by "seq"/.test(text));
      expect(fresh).toBeDefined();
      expect(sqlitePlan(db.url, fresh!)).not.toMatch(/TEMP B-TREE/i);
    }
  });
});
