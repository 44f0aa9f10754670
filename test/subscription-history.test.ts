/**
 * A subscription's deliveries as the delivery log, the cancels and the requeues find them. On SQLite
 * (migration 0008) they are the history table, caught up in sorted batches, plus the tail of deliveries
 * inserted since, found by rowid above a mark that holds only while its anchor delivery keeps its rowid;
 * on PostgreSQL the index on the deliveries. Real SQLite files and a real PostgreSQL server.
 */
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../src/ids.js';
import { KyselyStore, type AttemptRecord } from '../src/store/kysely-store.js';
import { migrateTo } from '../src/store/migrator.js';
import { purgeBefore } from '../src/store/retention.js';
import { newDeliveryRow } from '../src/store/rows.js';
import type { DeliveryTable, EventTable, SubscriptionTable } from '../src/store/schema.js';
import { HISTORY_CATCH_UP_DELIVERIES } from '../src/store/subscription-history.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { recordingSqlite, sqlitePlan } from './support/query-plans.js';

const T0 = 1_700_000_000_000;
const D = 'resthooks_deliveries';
const H = 'resthooks_subscription_history';

function subscriptionRow(): SubscriptionTable {
  return {
    id: newId('sub'), owner: 'alice', event: 'book.added', target: 'https://example.com/hooks', active: 1, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
    previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0, updated_at: T0,
  };
}

function eventRow(name = 'book.added'): EventTable {
  return { id: newId('evt'), name, model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{"id":1}', body: null, status: 'done', error: null, created_at: T0 };
}

async function subscriptions(store: KyselyStore, count: number): Promise<SubscriptionTable[]> {
  const rows = Array.from({ length: count }, subscriptionRow);
  for (const row of rows) await store.insertSubscription(row);
  return rows;
}

/** `events` events, each with a delivery to every one of `to`, written as the fan-out writes them. */
async function fanOut(store: KyselyStore, to: readonly SubscriptionTable[], events: number, dueAt = T0): Promise<DeliveryTable[]> {
  const made: DeliveryTable[] = [];
  for (let i = 0; i < events; i++) {
    const event = eventRow(i % 2 === 0 ? 'book.added' : 'book.changed');
    const deliveries = to.map((s) => newDeliveryRow(event.id, s.id, dueAt));
    await store.append(event, deliveries);
    made.push(...deliveries);
  }
  return made;
}

/** The whole log of a subscription, read page by page of `limit` with `before`. */
async function pagedLog(store: KyselyStore, subscriptionId: string, limit: number): Promise<string[]> {
  const seen: string[] = [];
  for (let before: string | undefined; ; ) {
    const page = await store.listDeliveries(subscriptionId, limit, before);
    expect(page.length).toBeLessThanOrEqual(limit);
    seen.push(...page.map((d) => d.id));
    if (page.length < limit) return seen;
    before = page.at(-1)!.id;
  }
}

const newestFirst = (deliveries: readonly DeliveryTable[], subscriptionId: string) =>
  deliveries.filter((d) => d.subscription_id === subscriptionId).map((d) => d.id).sort().reverse();

const statusOf = async (store: KyselyStore) => new Map((await store.db.selectFrom(D).select(['id', 'status']).execute()).map((r) => [r.id, r.status]));

describe.each(ENGINES)('a subscription\'s deliveries on %s', (engine) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(() => db.close());

  it('the delivery log is the same before, across and after catch-ups: every subscription, every page size, `before` across the boundary', async () => {
    const store = await db.migrated();
    const subs = await subscriptions(store, 3);
    const made = await fanOut(store, subs, 4);
    await store.catchUpHistory();
    made.push(...(await fanOut(store, subs.slice(0, 2), 3)));
    await store.catchUpHistory();
    made.push(...(await fanOut(store, subs, 3)));
    // History, then tail: pages of every size cross from the newest (tail) into the caught-up ones.
    for (const sub of subs) {
      const expected = newestFirst(made, sub.id);
      for (const limit of [1, 2, 3, 4, expected.length - 1, expected.length, expected.length + 1]) expect(await pagedLog(store, sub.id, limit)).toEqual(expected);
      // A cursor in the history, and one in the tail.
      expect((await store.listDeliveries(sub.id, 100, expected[1])).map((d) => d.id)).toEqual(expected.slice(2));
      expect((await store.listDeliveries(sub.id, 2, expected.at(-3))).map((d) => d.id)).toEqual(expected.slice(-2));
    }
    const [first] = await store.listDeliveries(subs[0]!.id, 1);
    expect(first).toMatchObject({ subscriptionId: subs[0]!.id, event: 'book.added', status: 'pending', attemptLog: [] });
    expect(await store.listDeliveries(newId('sub'), 10)).toEqual([]);
  });

  it('deleting a subscription cancels its pending deliveries caught up and in the tail, and no one else\'s', async () => {
    const store = await db.migrated();
    const [gone, kept] = await subscriptions(store, 2);
    const before = await fanOut(store, [gone!, kept!], 2);
    await store.catchUpHistory();
    const after = await fanOut(store, [gone!, kept!], 2);
    expect(await store.deleteSubscription(gone!.id, T0 + 1)).toBe(true);
    const status = await statusOf(store);
    for (const d of [...before, ...after]) expect([d.id, status.get(d.id)]).toEqual([d.id, d.subscription_id === gone!.id ? 'cancelled' : 'pending']);
  });

  it('a 410 cancels the subscription\'s pending deliveries caught up and in the tail', async () => {
    const store = await db.migrated();
    const [gone, kept] = await subscriptions(store, 2);
    const [answered] = await fanOut(store, [gone!], 1);
    const waitingCaughtUp = await fanOut(store, [gone!, kept!], 2, T0 + 50_000);
    await store.catchUpHistory();
    const waitingInTail = await fanOut(store, [gone!, kept!], 2, T0 + 50_000);
    const [claim] = await store.claimDue(10, T0, T0 + 60_000);
    expect(claim?.id).toBe(answered!.id);
    const record: AttemptRecord = {
      claim: { attempt: 1, leaseUntil: claim!.leaseUntil },
      attempt: { id: newId('att'), delivery_id: answered!.id, number: 1, started_at: T0 + 1, duration_ms: 3, status_code: 410, response_excerpt: null, error: null, outcome: 'gone' },
      delivery: { id: answered!.id, status: 'failed', attempts: 1, due_at: T0 + 1, last_status_code: 410, last_error: 'HTTP 410' },
      goneSubscriptionId: gone!.id,
    };
    await store.recordAttempts([record], T0 + 2);
    const status = await statusOf(store);
    for (const d of [...waitingCaughtUp, ...waitingInTail]) expect([d.id, status.get(d.id)]).toEqual([d.id, d.subscription_id === gone!.id ? 'cancelled' : 'pending']);
    expect(await store.getSubscription(gone!.id)).toBeUndefined();
  });

  it('requeueFinished makes the subscription\'s finished deliveries due again, caught up and in the tail', async () => {
    const store = await db.migrated();
    const [sub, other] = await subscriptions(store, 2);
    const made = await fanOut(store, [sub!, other!], 2);
    await store.catchUpHistory();
    made.push(...(await fanOut(store, [sub!, other!], 2)));
    await store.db.updateTable(D).set({ status: 'failed' }).execute();
    expect(await store.requeueFinished(sub!.id, T0, T0 + 5)).toBe(4);
    const status = await statusOf(store);
    for (const d of made) expect([d.id, status.get(d.id)]).toEqual([d.id, d.subscription_id === sub!.id ? 'pending' : 'failed']);
  });

  it('retention deletes the history entries of the deliveries it deletes', async () => {
    const store = await db.migrated();
    const subs = await subscriptions(store, 2);
    const old = await fanOut(store, subs, 2);
    await store.catchUpHistory();
    const recent = await fanOut(store, subs, 1);
    await store.catchUpHistory();
    const cutoff = Date.now() + 60_000;
    await store.db.updateTable(D).set({ status: 'delivered', updated_at: T0 }).where('id', 'in', old.map((d) => d.id)).execute();
    await store.db.updateTable(D).set({ status: 'delivered', updated_at: cutoff + 1 }).where('id', 'in', recent.map((d) => d.id)).execute();
    const { deliveries } = await purgeBefore(store, cutoff);
    expect(deliveries).toBe(old.length);
    for (const sub of subs) expect((await store.listDeliveries(sub.id, 10)).map((d) => d.id)).toEqual(newestFirst(recent, sub.id));
    const history = await store.db.selectFrom(H).select('delivery_id').execute();
    expect(history.map((r) => r.delivery_id).sort()).toEqual(engine === 'sqlite' ? recent.map((d) => d.id).sort() : []);
  });
});

describe('the SQLite history and its mark', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase('sqlite');
    await db.init();
  });
  afterEach(() => db.close());

  const mark = (store: KyselyStore) => store.db.selectFrom('resthooks_history_mark').selectAll().executeTakeFirstOrThrow();
  const rowidOf = async (store: KyselyStore, id: string) =>
    Number((await sql<{ rowid: number }>`select rowid from resthooks_deliveries where id = ${id}`.execute(store.db)).rows[0]!.rowid);

  it('the fan-out catches the history up by itself once its deliveries reach the threshold, in its transaction', async () => {
    const store = await db.migrated();
    const subs = await subscriptions(store, 64);
    const events = Math.ceil(HISTORY_CATCH_UP_DELIVERIES / subs.length);
    const appended = Array.from({ length: events }, () => eventRow());
    for (const event of appended) await store.append({ ...event, status: 'pending' });
    const pending = await store.pendingEvents(events);
    const items = pending.map((event) => ({ eventId: event.id, seq: event.seq, deliveries: subs.map((s) => newDeliveryRow(event.id, s.id, T0)) }));
    await store.commitFanOut(items.slice(0, -1));
    expect(await store.db.selectFrom(H).select('delivery_id').execute()).toHaveLength(0);
    await store.commitFanOut(items.slice(-1));
    const all = items.flatMap((item) => item.deliveries);
    expect((await store.db.selectFrom(H).select('delivery_id').execute()).length).toBe(all.length);
    expect(await mark(store)).toEqual({ rowid_mark: await rowidOf(store, all.at(-1)!.id), anchor_id: all.at(-1)!.id });
    expect((await store.listDeliveries(subs[0]!.id, 1)).map((d) => d.id)).toEqual([all.filter((d) => d.subscription_id === subs[0]!.id).at(-1)!.id]);
  });

  it('deliveries made at trigger time, with no fan-out to carry the catch-up, are caught up by the next claim', async () => {
    const store = await db.migrated();
    const subs = await subscriptions(store, 64);
    const made = await fanOut(store, subs, Math.ceil(HISTORY_CATCH_UP_DELIVERIES / subs.length) - 1);
    await store.claimDue(1, T0, T0 + 60_000);
    expect(await store.db.selectFrom(H).select('delivery_id').execute()).toHaveLength(0);
    made.push(...(await fanOut(store, subs, 1)));
    await store.claimDue(1, T0, T0 + 60_000);
    expect((await store.db.selectFrom(H).select('delivery_id').execute()).length).toBe(made.length);
    expect((await mark(store)).anchor_id).toBe(made.at(-1)!.id);
  });

  it('the anchor deleted: deliveries that reuse the rowids below the mark are still listed, cancelled, and caught up', async () => {
    const store = await db.migrated();
    const [sub, other] = await subscriptions(store, 2);
    const caughtUp = await fanOut(store, [sub!, other!], 2);
    await store.catchUpHistory();
    const { anchor_id: anchor, rowid_mark: markedRowid } = await mark(store);
    expect(anchor).toBe(caughtUp.at(-1)!.id);
    // As a delete outside retention would: the largest rowid goes, and the next row is given it again.
    await store.db.deleteFrom(D).where('id', '=', anchor!).execute();
    const later = await fanOut(store, [sub!], 1);
    expect(await rowidOf(store, later[0]!.id)).toBeLessThanOrEqual(Number(markedRowid));
    const expected = newestFirst([...caughtUp.filter((d) => d.id !== anchor), ...later], sub!.id);
    expect(await pagedLog(store, sub!.id, 1)).toEqual(expected);
    await store.catchUpHistory();
    expect(await mark(store)).toEqual({ rowid_mark: await rowidOf(store, later[0]!.id), anchor_id: later[0]!.id });
    expect(await pagedLog(store, sub!.id, 2)).toEqual(expected);
    expect(await store.deleteSubscription(sub!.id, T0 + 1)).toBe(true);
    const status = await statusOf(store);
    expect(expected.map((id) => status.get(id))).toEqual(expected.map(() => 'cancelled'));
  });

  it('VACUUM after a catch-up (free to renumber the rowids): later deliveries are still listed and cancelled', async () => {
    const store = await db.migrated();
    const [sub] = await subscriptions(store, 1);
    const made = await fanOut(store, [sub!], 6);
    // Gaps VACUUM may close, moving the anchor's rowid down.
    await store.db.deleteFrom(D).where('id', 'in', made.slice(0, 3).map((d) => d.id)).execute();
    await store.db.deleteFrom(H).execute();
    await store.catchUpHistory();
    await sql`vacuum`.execute(store.db);
    const later = await fanOut(store, [sub!], 2);
    const expected = newestFirst([...made.slice(3), ...later], sub!.id);
    expect(await pagedLog(store, sub!.id, 2)).toEqual(expected);
    expect(await store.deleteSubscription(sub!.id, T0 + 1)).toBe(true);
    const status = await statusOf(store);
    expect(expected.map((id) => status.get(id))).toEqual(expected.map(() => 'cancelled'));
  });

  it('retention keeps the anchor delivery, so that the mark holds, and purges it once the history has caught up past it', async () => {
    const store = await db.migrated();
    const [sub] = await subscriptions(store, 1);
    const made = await fanOut(store, [sub!], 3);
    await store.catchUpHistory();
    await store.db.updateTable(D).set({ status: 'delivered', updated_at: T0 }).execute();
    const cutoff = Date.now() + 60_000;
    expect((await purgeBefore(store, cutoff)).deliveries).toBe(2);
    expect((await store.listDeliveries(sub!.id, 10)).map((d) => d.id)).toEqual([made.at(-1)!.id]);
    const later = await fanOut(store, [sub!], 1);
    await store.catchUpHistory();
    await store.db.updateTable(D).set({ status: 'delivered', updated_at: cutoff + 1 }).where('id', '=', later[0]!.id).execute();
    expect((await purgeBefore(store, cutoff)).deliveries).toBe(1);
    expect((await store.listDeliveries(sub!.id, 10)).map((d) => d.id)).toEqual([later[0]!.id]);
  });

  it('a store opened anew finds the tail its predecessor left (killed before any catch-up)', async () => {
    const first = await db.migrated();
    const [sub] = await subscriptions(first, 1);
    const made = await fanOut(first, [sub!], 3);
    const second = await db.migrated();
    expect((await second.listDeliveries(sub!.id, 10)).map((d) => d.id)).toEqual(newestFirst(made, sub!.id));
    await second.catchUpHistory();
    await second.catchUpHistory();
    expect((await second.db.selectFrom(H).select('delivery_id').execute()).map((r) => r.delivery_id).sort()).toEqual(made.map((d) => d.id).sort());
  });

  it('the log, the cancels and the requeue read the history by its key and the tail by rowid, never the whole table', async () => {
    const seen: string[] = [];
    const store = await db.migrated(recordingSqlite(db.url, seen));
    const [sub] = await subscriptions(store, 1);
    await fanOut(store, [sub!], 2);
    await store.catchUpHistory();
    seen.length = 0;
    await store.listDeliveries(sub!.id, 10);
    await store.listDeliveries(sub!.id, 10, newId('dlv'));
    await store.deleteSubscription(sub!.id, T0 + 1);
    await store.requeueFinished(sub!.id, T0, T0 + 2);
    const reads = seen.filter((text) => text.includes(H));
    expect(reads).toHaveLength(4);
    for (const text of reads) {
      const plan = sqlitePlan(db.url, text);
      expect(plan).toMatch(/SEARCH resthooks_subscription_history USING PRIMARY KEY \(subscription_id=\?/);
      expect(plan).toMatch(/SEARCH resthooks_deliveries USING INTEGER PRIMARY KEY \(rowid>\?\)/);
      expect(plan).not.toMatch(/\bSCAN (d|resthooks_deliveries|resthooks_subscription_history)\b/);
    }
  });

  it('migrating a 0007 database with deliveries fills the history, drops the index and lists the same; undoing it brings the index back', async () => {
    const store = db.store();
    expect((await migrateTo(store.db, '0007-first-attempt-in-delivery-row')).error).toBeUndefined();
    const subs = await subscriptions(store, 3);
    const made = await fanOut(store, subs, 3);
    await store.db.updateTable(D).set({ status: 'delivered', first_attempt_id: '', first_attempt_started_at: T0, first_attempt_duration_ms: 4, first_attempt_status_code: 200 }).where('id', '=', made[0]!.id).execute();
    const indexes = async () => (await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = ${D}`.execute(store.db)).rows.map((r) => r.name);
    expect(await indexes()).toContain('resthooks_deliveries_subscription');

    const { error } = await store.migrate();
    expect(error).toBeUndefined();
    expect(await indexes()).not.toContain('resthooks_deliveries_subscription');
    expect((await store.db.selectFrom(H).selectAll().execute()).map((r) => `${r.subscription_id}/${r.delivery_id}`).sort()).toEqual(made.map((d) => `${d.subscription_id}/${d.id}`).sort());
    expect(await mark(store)).toEqual({ rowid_mark: await rowidOf(store, made.at(-1)!.id), anchor_id: made.at(-1)!.id });
    for (const sub of subs) {
      const log = await store.listDeliveries(sub.id, 100);
      expect(log.map((d) => d.id)).toEqual(newestFirst(made, sub.id));
      expect(log).toEqual(await Promise.all(log.map((d) => store.getDelivery(d.id))));
    }
    const later = await fanOut(store, subs, 1);
    expect((await store.listDeliveries(subs[0]!.id, 100)).map((d) => d.id)).toEqual(newestFirst([...made, ...later], subs[0]!.id));

    expect((await migrateTo(store.db, '0007-first-attempt-in-delivery-row')).error).toBeUndefined();
    expect(await indexes()).toContain('resthooks_deliveries_subscription');
    await expect(store.db.selectFrom(H).selectAll().execute()).rejects.toThrow();
  });
});
