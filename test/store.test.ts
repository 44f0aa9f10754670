/**
 * One store suite, every engine (STYLE.md habit 11): KyselyStore's transitions on a real SQLite file
 * and on a real PostgreSQL server, each test on a fresh database; then an end-to-end delivery per engine.
 */
import type pg from 'pg';
import { CompiledQuery } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createHooks, postgresStore, sqliteStore, type PgPool, type StoreDialect } from '../src/index.js';
import { newId } from '../src/ids.js';
import { KyselyStore, type AttemptRecord } from '../src/store/kysely-store.js';
import { inlineBatch, inlineParameters, type PostgresStoreDialectOptions } from '../src/store/postgres/postgres-store-dialect.js';
import { undoFanOutPassStatement } from '../src/store/postgres/set-based-writes.js';
import { MIGRATION_NAMES, migrateTo } from '../src/store/migrator.js';
import { firstAttemptId, newDeliveryRow } from '../src/store/rows.js';
import type { EventTable, SubscriptionTable } from '../src/store/schema.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { startReceiver, verify } from './support/receiver.js';

// Times past 2^32 ms, so a column that silently truncates to 32 bits would show.
const T0 = 1_700_000_000_000;
const E = 'resthooks_events';
const D = 'resthooks_deliveries';

function subscriptionRow(over: Partial<SubscriptionTable> = {}): SubscriptionTable {
  return {
    id: newId('sub'),
    owner: 'alice',
    event: 'book.added',
    target: 'https://example.com/hooks',
    active: 1,
    secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
    previous_secrets: null,
    metadata: null,
    disabled_reason: null,
    failing_since: null, max_per_second: null,
    created_at: T0,
    updated_at: T0,
    ...over,
  };
}

function eventRow(over: Partial<EventTable> = {}): EventTable {
  return { id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{"id":1}', body: null, status: 'pending', error: null, created_at: T0, ...over };
}

/** `count` subscriptions and one event with a delivery to each, due at `dueAt`. */
async function seed(store: KyselyStore, count: number, dueAt = T0) {
  const subscriptions: SubscriptionTable[] = [];
  for (let i = 0; i < count; i++) {
    const row = subscriptionRow();
    // Without the column (a database before migration 0005) when it holds nothing but the default.
    await store.insertSubscription(row.max_per_second === null ? { ...row, max_per_second: undefined as unknown as null } : row);
    subscriptions.push(row);
  }
  const event = eventRow({ status: 'done' });
  const deliveries = subscriptions.map((s) => newDeliveryRow(event.id, s.id, dueAt));
  await store.append(event, deliveries);
  return { subscriptions, event, deliveries };
}

const deliveryRows = (store: KyselyStore) => store.db.selectFrom(D).selectAll().orderBy('id').execute();
const ids = (rows: ReadonlyArray<{ id: string }>) => rows.map((r) => r.id).sort();

describe.each(ENGINES)('KyselyStore on %s', (engine) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(() => db.close());

  it('processes migrating at once: one applies, the others find nothing to do', async () => {
    const stores = [db.store(), db.store(), db.store(), db.store()];
    const outcomes = await Promise.all(stores.map((s) => s.migrate()));
    for (const outcome of outcomes) expect(outcome.error).toBeUndefined();
    expect(outcomes.flatMap((o) => o.results ?? []).map((r) => r.status)).toEqual(MIGRATION_NAMES.map(() => 'Success'));
    await expect(stores[0]!.pendingEvents(1)).resolves.toEqual([]);
  });

  it('migrate is idempotent: a second run applies nothing', async () => {
    const store = db.store();
    const first = await store.migrate();
    expect(first.error).toBeUndefined();
    expect(first.results?.map((r) => [r.migrationName, r.status])).toEqual([
      ['0001-initial', 'Success'],
      ['0002-attempts-keyed-by-delivery', 'Success'],
      ['0003-event-fanout-retries', 'Success'],
      ['0004-event-names-indexed-at-fanout', 'Success'],
      ['0005-subscription-max-per-second', 'Success'],
      ['0006-fresh-events-table', 'Success'],
      ['0007-first-attempt-in-delivery-row', 'Success'],
      ['0008-subscription-history-table', 'Success'],
    ]);
    const second = await store.migrate();
    expect(second.error).toBeUndefined();
    expect(second.results).toEqual([]);
  });

  it('migrating a 0001 database keys attempts by (delivery, number) and keeps the log (a doubled pair once)', async () => {
    const store = db.store();
    expect((await migrateTo(store.db, '0001-initial')).error).toBeUndefined();
    const { deliveries } = await seed(store, 2, T0);
    const [first, second] = deliveries as [typeof deliveries[0], typeof deliveries[0]];
    const attempt = (deliveryId: string, number: number, statusCode: number, id = newId('att')) => ({
      id, delivery_id: deliveryId, number, started_at: T0 + number, duration_ms: 5, status_code: statusCode, response_excerpt: null, error: null, outcome: 'retry' as const,
    });
    const firstOfTwo = newId('att');
    // Ids are time-sortable: the one written first sorts first, and is the one kept.
    await store.db.insertInto('resthooks_attempts').values([
      attempt(first.id, 1, 500, firstOfTwo),
      attempt(first.id, 1, 502),
      attempt(first.id, 2, 503),
      attempt(second.id, 1, 504),
    ]).execute();

    const { error, results } = await store.migrate();
    expect(error).toBeUndefined();
    expect(results?.map((r) => [r.migrationName, r.status])).toEqual([
      ['0002-attempts-keyed-by-delivery', 'Success'],
      ['0003-event-fanout-retries', 'Success'],
      ['0004-event-names-indexed-at-fanout', 'Success'],
      ['0005-subscription-max-per-second', 'Success'],
      ['0006-fresh-events-table', 'Success'],
      ['0007-first-attempt-in-delivery-row', 'Success'],
      ['0008-subscription-history-table', 'Success'],
    ]);
    const rows = await store.db.selectFrom('resthooks_attempts').select(['id', 'delivery_id', 'number', 'status_code']).orderBy('delivery_id').orderBy('number').execute();
    expect(rows.map((r) => [r.delivery_id, Number(r.number), Number(r.status_code)])).toEqual(
      [[first.id, 1, 500], [first.id, 2, 503], [second.id, 1, 504]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect(rows.find((r) => r.delivery_id === first.id && Number(r.number) === 1)?.id).toBe(firstOfTwo);
    // The key holds from now on.
    await expect(store.db.insertInto('resthooks_attempts').values(attempt(second.id, 1, 200)).execute()).rejects.toThrow();
  });

  it('recordAttempts: an attempt recorded twice under one claim keeps the first (the second is stale); the rest of the batch is written', async () => {
    const store = await db.migrated();
    const { deliveries } = await seed(store, 2, T0);
    const [first, second] = deliveries as [typeof deliveries[0], typeof deliveries[0]];
    expect(await store.claimDue(10, T0, T0 + 60_000)).toHaveLength(2);
    const record = (deliveryId: string, statusCode: number): AttemptRecord => ({
      claim: { attempt: 1, leaseUntil: T0 + 60_000 },
      attempt: { id: newId('att'), delivery_id: deliveryId, number: 1, started_at: T0, duration_ms: 5, status_code: statusCode, response_excerpt: null, error: null, outcome: 'delivered' },
      delivery: { id: deliveryId, status: 'delivered', attempts: 1, due_at: 0, last_status_code: statusCode, last_error: null },
    });
    expect((await store.recordAttempts([record(first.id, 200)], T0 + 1)).stale).toEqual([]);
    const again = record(first.id, 201);
    expect((await store.recordAttempts([again, record(second.id, 202)], T0 + 2)).stale).toEqual([again]);
    expect((await store.getDelivery(first.id))?.attemptLog.map((a) => a.statusCode)).toEqual([200]);
    expect((await store.getDelivery(second.id))?.attemptLog.map((a) => a.statusCode)).toEqual([202]);
  });

  it('append + pendingEvents + commitFanOut; a repeated fan-out inserts no duplicate delivery', async () => {
    const store = await db.migrated();
    const [s1, s2] = [subscriptionRow(), subscriptionRow({ owner: 'bob' })];
    await store.insertSubscription(s1);
    await store.insertSubscription(s2);
    const first = eventRow();
    const second = eventRow({ owner: null, all_owners: 1 });
    await store.append(first);
    await store.append(second);
    const pending = await store.pendingEvents(10);
    expect(pending.map((e) => e.id)).toEqual([first.id, second.id]);
    expect(Number(pending[1]!.all_owners)).toBe(1);
    expect(await store.hasPendingEvents()).toBe(true);

    const items = [
      { eventId: first.id, deliveries: [newDeliveryRow(first.id, s1.id, T0)] },
      { eventId: second.id, deliveries: [newDeliveryRow(second.id, s1.id, T0), newDeliveryRow(second.id, s2.id, T0)] },
    ];
    await store.commitFanOut(items);
    // The same fan-out again (a crash after commit, before the process knew): fresh delivery ids, same pairs.
    await store.commitFanOut(items.map((i) => ({ eventId: i.eventId, deliveries: i.deliveries.map((d) => newDeliveryRow(d.event_id, d.subscription_id, T0)) })));

    expect(await store.pendingEvents(10)).toEqual([]);
    expect(await store.hasPendingEvents()).toBe(false);
    const rows = await deliveryRows(store);
    expect(rows.map((r) => `${r.event_id}/${r.subscription_id}`).sort()).toEqual([`${first.id}/${s1.id}`, `${second.id}/${s1.id}`, `${second.id}/${s2.id}`].sort());
    expect(ids(rows)).toEqual(ids(items.flatMap((i) => i.deliveries)));
  });

  it('append with trigger-time deliveries writes the event and its deliveries together', async () => {
    const store = await db.migrated();
    const { event, deliveries } = await seed(store, 2);
    const events = await store.db.selectFrom(E).selectAll().execute();
    expect(events.map((e) => [e.id, e.status])).toEqual([[event.id, 'done']]);
    expect(ids(await deliveryRows(store))).toEqual(ids(deliveries));
  });

  it('claimDue returns due rows only, up to the limit, with the event and subscription read in', async () => {
    const store = await db.migrated();
    const { subscriptions, event } = await seed(store, 3, T0);
    const later = eventRow({ status: 'done' });
    await store.append(later, [newDeliveryRow(later.id, subscriptions[0]!.id, T0 + 10_000)]);

    const firstTwo = await store.claimDue(2, T0, T0 + 60_000);
    expect(firstTwo).toHaveLength(2);
    const rest = await store.claimDue(10, T0, T0 + 60_000);
    expect(rest).toHaveLength(1);
    expect(await store.claimDue(10, T0, T0 + 60_000)).toEqual([]);

    const claim = rest[0]!;
    const subscription = subscriptions.find((s) => s.id === claim.subscriptionId)!;
    expect(claim).toMatchObject({
      eventId: event.id,
      attempt: 1,
      body: null,
      event: { name: 'book.added', model: 'Book', action: 'created', owner: 'alice', allOwners: false, data: '{"id":1}', body: null, createdAt: T0 },
      subscription: { id: subscription.id, owner: 'alice', event: 'book.added', target: subscription.target, active: true, secret: subscription.secret, previousSecrets: null },
    });
    // The later one becomes due in its time.
    expect((await store.claimDue(10, T0 + 10_000, T0 + 60_000)).map((c) => c.eventId)).toEqual([later.id]);
    const inFlight = await deliveryRows(store);
    expect(inFlight.every((r) => r.status === 'in_flight' && Number(r.due_at) === T0 + 60_000)).toBe(true);
  });

  it('loadClaims reads each event and each subscription into one part that its claims share', async () => {
    const store = await db.migrated();
    const { subscriptions, event, deliveries } = await seed(store, 3, T0);
    const other = eventRow({ status: 'done' });
    const second = newDeliveryRow(other.id, subscriptions[0]!.id, T0);
    await store.append(other, [second]);
    const claims = await store.claimDue(10, T0, T0 + 60_000);
    expect(claims).toHaveLength(4);
    const ofEvent = claims.filter((c) => c.eventId === event.id);
    expect(ids(ofEvent)).toEqual(ids(deliveries));
    // Claims wait in the queue long enough to reach the old generation: copies per claim would stay until a full GC.
    expect(new Set(ofEvent.map((c) => c.event)).size).toBe(1);
    const ofFirstSubscription = claims.filter((c) => c.subscriptionId === subscriptions[0]!.id);
    expect(ofFirstSubscription.map((c) => c.eventId).sort()).toEqual([event.id, other.id].sort());
    expect(ofFirstSubscription[0]!.subscription).toBe(ofFirstSubscription[1]!.subscription);
    expect(ofFirstSubscription[0]!.event).not.toBe(ofFirstSubscription[1]!.event);
  });

  it('loadClaims reads every column as stored: nulls, texts with quotes and newlines, times past 2^32, a deleted subscription, only deliveries in flight', async () => {
    const store = await db.migrated();
    const rotated = subscriptionRow({ previous_secrets: '[{"secret":"whsec_b2xkb2xkb2xkb2xkb2xkb2xkb2xkb2xk","expiresAt":1700000100000}]', failing_since: T0 + 5, max_per_second: 2.5, target: 'https://example.com/a?b="c"' });
    const plain = subscriptionRow();
    const gone = subscriptionRow();
    for (const row of [rotated, plain, gone]) await store.insertSubscription(row);
    const event = eventRow({ status: 'done', model: null, action: null, owner: null, all_owners: 1, data: '{"title":"\\"Ünïcødé\\"\\n\\u0001 ✓"}', body: '"prebuilt"', created_at: T0 + 7 });
    const withBody = { ...newDeliveryRow(event.id, rotated.id, T0), body: '{"hook":{},"data":"per subscription"}' };
    const deliveries = [withBody, newDeliveryRow(event.id, plain.id, T0), newDeliveryRow(event.id, gone.id, T0)];
    await store.append(event, deliveries);
    const claimed = await store.claimDue(10, T0, T0 + 60_000);
    expect(claimed).toHaveLength(3);
    await store.deleteSubscription(gone.id, T0);
    const recorded = claimed.find((c) => c.subscriptionId === plain.id)!;
    await store.db.updateTable(D).set({ status: 'delivered', attempts: 1 }).where('id', '=', recorded.id).execute();
    const loaded = await store.loadClaims([...claimed.map((c) => c.id), 'dlv_unknown']);
    const byId = new Map(loaded.map((c) => [c.id, c]));
    expect([...byId.keys()].sort()).toEqual([withBody.id, deliveries[2]!.id].sort());
    const expectedEvent = { name: 'book.added', model: null, action: null, owner: null, allOwners: true, data: event.data, body: '"prebuilt"', createdAt: T0 + 7 };
    expect(byId.get(withBody.id)).toEqual({
      id: withBody.id, eventId: event.id, subscriptionId: rotated.id, attempt: 1, leaseUntil: T0 + 60_000, body: withBody.body, event: expectedEvent,
      subscription: { id: rotated.id, owner: 'alice', event: 'book.added', target: rotated.target, active: true, secret: rotated.secret, previousSecrets: rotated.previous_secrets, failingSince: T0 + 5, maxPerSecond: 2.5 },
    });
    expect(byId.get(deliveries[2]!.id)).toMatchObject({ subscriptionId: gone.id, body: null, event: expectedEvent, subscription: null });
  });

  it('claimDue never gives the same row to two claimers', async () => {
    const store = await db.migrated();
    const { deliveries } = await seed(store, 60, T0);
    // PostgreSQL: three pools claim at the same moment. SQLite has one writer: claims follow each other.
    const claimers = [store, db.store(), db.store()];
    await Promise.all(claimers.map((c) => c.nextDueAt())); // connections open before the race
    const counts = new Map<string, number>();
    for (let round = 0; round < 100; round++) {
      const claim = (c: KyselyStore) => c.claimDue(7, T0 + 1, T0 + 60_000);
      const batches: Awaited<ReturnType<KyselyStore['claimDue']>>[] = [];
      if (engine === 'postgres') batches.push(...(await Promise.all(claimers.map(claim))));
      else for (const c of claimers) batches.push(await claim(c));
      for (const batch of batches) {
        expect(batch.length).toBeLessThanOrEqual(7);
        for (const d of batch) counts.set(d.id, (counts.get(d.id) ?? 0) + 1);
      }
      if (batches.every((b) => b.length === 0)) break;
    }
    expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
    expect([...counts.keys()].sort()).toEqual(ids(deliveries));
  });

  it('an expired lease makes an in-flight delivery claimable again', async () => {
    const store = await db.migrated();
    await seed(store, 1, T0);
    const [claimed] = await store.claimDue(10, T0, T0 + 100);
    expect(claimed).toBeDefined();
    expect(await store.nextDueAt()).toBe(T0 + 100);
    expect(await store.claimDue(10, T0 + 99, T0 + 1_000)).toEqual([]);
    const again = await store.claimDue(10, T0 + 100, T0 + 1_000);
    expect(again.map((c) => [c.id, c.attempt])).toEqual([[claimed!.id, 1]]);
  });

  it('recordAttempts: delivered, retry at due_at, and gone (deletes the subscription, cancels its pending deliveries)', async () => {
    const store = await db.migrated();
    const { subscriptions, deliveries } = await seed(store, 3, T0);
    const [ok, retry, gone] = deliveries as [typeof deliveries[0], typeof deliveries[0], typeof deliveries[0]];
    const goneSubscription = subscriptions.find((s) => s.id === gone.subscription_id)!;
    // Another event, not yet attempted, for the subscription that will answer 410.
    const next = eventRow({ status: 'done' });
    const waiting = newDeliveryRow(next.id, goneSubscription.id, T0 + 50_000);
    await store.append(next, [waiting]);
    expect(await store.claimDue(10, T0, T0 + 60_000)).toHaveLength(3);

    const attempt = (deliveryId: string, outcome: 'delivered' | 'retry' | 'gone', statusCode: number) => ({
      id: newId('att'), delivery_id: deliveryId, number: 1, started_at: T0 + 1, duration_ms: 12, status_code: statusCode, response_excerpt: `HTTP ${statusCode}`, error: null, outcome,
    });
    const claim = { attempt: 1, leaseUntil: T0 + 60_000 };
    const records: AttemptRecord[] = [
      { claim, attempt: attempt(ok.id, 'delivered', 200), delivery: { id: ok.id, status: 'delivered', attempts: 1, due_at: T0 + 1, last_status_code: 200, last_error: null } },
      { claim, attempt: attempt(retry.id, 'retry', 503), delivery: { id: retry.id, status: 'pending', attempts: 1, due_at: T0 + 5_000, last_status_code: 503, last_error: 'HTTP 503' } },
      { claim, attempt: attempt(gone.id, 'gone', 410), delivery: { id: gone.id, status: 'failed', attempts: 1, due_at: T0 + 1, last_status_code: 410, last_error: 'HTTP 410' }, goneSubscriptionId: goneSubscription.id },
    ];
    await store.recordAttempts(records, T0 + 2);

    const byId = new Map((await deliveryRows(store)).map((r) => [r.id, r]));
    expect([byId.get(ok.id)?.status, Number(byId.get(ok.id)?.attempts), Number(byId.get(ok.id)?.last_status_code)]).toEqual(['delivered', 1, 200]);
    expect([byId.get(retry.id)?.status, Number(byId.get(retry.id)?.due_at)]).toEqual(['pending', T0 + 5_000]);
    expect(byId.get(gone.id)?.status).toBe('failed');
    expect([byId.get(waiting.id)?.status, byId.get(waiting.id)?.last_error]).toEqual(['cancelled', 'subscription gone (410)']);
    expect(await store.getSubscription(goneSubscription.id)).toBeUndefined();
    expect((await store.listSubscriptions({ limit: 10 })).map((s) => s.id).sort()).toEqual(subscriptions.filter((s) => s !== goneSubscription).map((s) => s.id).sort());

    // The retry is due at its time, not before; the cancelled one never.
    expect(await store.nextDueAt()).toBe(T0 + 5_000);
    expect(await store.claimDue(10, T0 + 4_999, T0 + 60_000)).toEqual([]);
    const retried = await store.claimDue(10, T0 + 5_000, T0 + 60_000);
    expect(retried.map((c) => [c.id, c.attempt])).toEqual([[retry.id, 2]]);
  });

  it('releaseClaims gives claimed deliveries back, due now; other states are left alone', async () => {
    const store = await db.migrated();
    const { deliveries } = await seed(store, 2, T0);
    const claimed = await store.claimDue(1, T0, T0 + 60_000);
    const unclaimed = deliveries.find((d) => d.id !== claimed[0]!.id)!;
    const claim = { attempt: 1, leaseUntil: T0 + 60_000 };
    const { stale } = await store.releaseClaims([{ id: claimed[0]!.id, claim, dueAt: T0 + 7 }, { id: unclaimed.id, claim, dueAt: T0 + 7 }], T0 + 7);
    expect(stale).toEqual([unclaimed.id]);
    const rows = new Map((await deliveryRows(store)).map((r) => [r.id, r]));
    expect([rows.get(claimed[0]!.id)?.status, Number(rows.get(claimed[0]!.id)?.due_at)]).toEqual(['pending', T0 + 7]);
    expect(Number(rows.get(unclaimed.id)?.due_at)).toBe(T0); // was pending, not in flight: untouched
    expect(ids(await store.claimDue(10, T0 + 7, T0 + 60_000))).toEqual(ids(deliveries));
    expect(await store.releaseClaims([], T0)).toEqual({ stale: [] }); // nothing to do, no statement
  });

  it('extendLease moves the lease of a claim that still holds its delivery, and of no other', async () => {
    const store = await db.migrated();
    const { deliveries } = await seed(store, 2, T0);
    const [held, other] = await store.claimDue(2, T0, T0 + 60_000);
    expect(await store.extendLease(held!, T0 + 90_000, T0 + 5)).toBe(true);
    // The claim as it was (its lease since moved), an attempt it is not for, a delivery given back.
    expect(await store.extendLease(held!, T0 + 120_000, T0 + 6)).toBe(false);
    expect(await store.extendLease({ ...other!, attempt: 2 }, T0 + 120_000, T0 + 6)).toBe(false);
    await store.releaseClaims([{ id: other!.id, claim: other!, dueAt: T0 + 7 }], T0 + 7);
    expect(await store.extendLease(other!, T0 + 120_000, T0 + 8)).toBe(false);
    const rows = new Map((await deliveryRows(store)).map((r) => [r.id, r]));
    expect([rows.get(held!.id)?.status, Number(rows.get(held!.id)?.due_at), Number(rows.get(held!.id)?.updated_at)]).toEqual(['in_flight', T0 + 90_000, T0 + 5]);
    expect([rows.get(other!.id)?.status, Number(rows.get(other!.id)?.due_at)]).toEqual(['pending', T0 + 7]);
    expect(ids(deliveries)).toEqual(ids([held!, other!]));
  });

  it('listDeliveries: newest first, each with its attempts in order, paged by `before`', async () => {
    const store = await db.migrated();
    const subscription = subscriptionRow();
    await store.insertSubscription(subscription);
    const events = [eventRow({ status: 'done', name: 'book.added' }), eventRow({ status: 'done', name: 'book.changed' }), eventRow({ status: 'done', name: 'book.added' })];
    const deliveries = events.map((e) => newDeliveryRow(e.id, subscription.id, T0));
    for (const [i, event] of events.entries()) await store.append(event, [deliveries[i]!]);
    const middle = deliveries[1]!;
    for (const number of [1, 2]) {
      await store.claimDue(10, T0 + number * 1_000, T0 + 60_000);
      await store.recordAttempts(
        deliveries.map((d) => ({
          claim: { attempt: number, leaseUntil: T0 + 60_000 },
          attempt: { id: newId('att'), delivery_id: d.id, number, started_at: T0 + number * 1_000, duration_ms: 5, status_code: 500, response_excerpt: null, error: null, outcome: 'retry' },
          delivery: { id: d.id, status: 'pending', attempts: number, due_at: T0 + number * 1_000 + 1, last_status_code: 500, last_error: 'HTTP 500' },
        })),
        T0 + number * 1_000,
      );
    }
    const list = await store.listDeliveries(subscription.id, 10);
    expect(list.map((d) => d.id)).toEqual([...deliveries].reverse().map((d) => d.id));
    expect(list[1]).toMatchObject({ id: middle.id, event: 'book.changed', status: 'pending', attempts: 2, lastStatusCode: 500, nextAttemptAt: new Date(T0 + 2_001) });
    expect(list[1]!.attemptLog.map((a) => [a.number, a.statusCode, a.startedAt.getTime(), a.outcome])).toEqual([[1, 500, T0 + 1_000, 'retry'], [2, 500, T0 + 2_000, 'retry']]);
    const page = await store.listDeliveries(subscription.id, 1, list[0]!.id);
    expect(page.map((d) => d.id)).toEqual([middle.id]);
    expect(await store.listDeliveries(subscription.id, 10, deliveries[0]!.id)).toEqual([]);
    expect((await store.getDelivery(middle.id))?.attemptLog).toHaveLength(2);
  });

  it('requeueDelivery makes a finished delivery due now, and leaves an in-flight one alone', async () => {
    const store = await db.migrated();
    const { deliveries } = await seed(store, 2, T0);
    const [claimA, claimB] = await store.claimDue(10, T0, T0 + 60_000);
    await store.recordAttempts([{ claim: claimA!, attempt: undefined, delivery: { id: claimA!.id, status: 'failed', attempts: 1, due_at: T0, last_status_code: 500, last_error: 'HTTP 500' } }], T0 + 1);
    expect(await store.requeueDelivery(claimA!.id, T0 + 9)).toBe('requeued');
    expect(await store.requeueDelivery(claimB!.id, T0 + 9)).toBe('in_flight');
    expect(await store.requeueDelivery('dlv_missing', T0 + 9)).toBe('missing');
    const again = await store.claimDue(10, T0 + 9, T0 + 60_000);
    expect(again.map((c) => [c.id, c.attempt])).toEqual([[claimA!.id, 2]]);
    expect(deliveries).toHaveLength(2);
  });

  it('listSubscriptions: newest first, paged by `before`, filtered by owner, event and active', async () => {
    const store = await db.migrated();
    const rows: SubscriptionTable[] = [];
    for (let i = 0; i < 5; i++) {
      const row = subscriptionRow({ owner: i % 2 === 0 ? 'alice' : 'bob', active: i === 4 ? 0 : 1, event: i === 3 ? 'book.changed' : 'book.added' });
      await store.insertSubscription(row);
      rows.push(row);
    }
    const newestFirst = rows.map((r) => r.id).reverse();
    const first = await store.listSubscriptions({ limit: 2 });
    expect(first.map((s) => s.id)).toEqual(newestFirst.slice(0, 2));
    const second = await store.listSubscriptions({ limit: 2, before: first[1]!.id });
    expect(second.map((s) => s.id)).toEqual(newestFirst.slice(2, 4));
    const third = await store.listSubscriptions({ limit: 2, before: second[1]!.id });
    expect(third.map((s) => s.id)).toEqual(newestFirst.slice(4));
    expect((await store.listSubscriptions({ limit: 10, owner: 'bob' })).map((s) => s.id)).toEqual([rows[3]!.id, rows[1]!.id]);
    expect((await store.listSubscriptions({ limit: 10, active: false })).map((s) => s.id)).toEqual([rows[4]!.id]);
    expect((await store.listSubscriptions({ limit: 10, event: 'book.changed', owner: 'bob', active: true })).map((s) => s.id)).toEqual([rows[3]!.id]);
  });

  it('bigint time columns round-trip as numbers', async () => {
    const store = await db.migrated();
    const big = 8_000_000_000_000; // year 2223, past 2^32 and 2^40
    const subscription = subscriptionRow({ created_at: big, updated_at: big + 1 });
    await store.insertSubscription(subscription);
    const read = await store.getSubscription(subscription.id);
    expect([read?.createdAt.getTime(), read?.updatedAt.getTime(), read?.active]).toEqual([big, big + 1, true]);
    const event = eventRow({ status: 'done', created_at: big + 2 });
    const delivery = newDeliveryRow(event.id, subscription.id, big + 3);
    await store.append(event, [delivery]);
    const next = await store.nextDueAt();
    expect(typeof next).toBe('number');
    expect(next).toBe(big + 3);
    const [claimed] = await store.claimDue(1, big + 3, Number.MAX_SAFE_INTEGER);
    expect(claimed?.event.createdAt).toBe(big + 2);
    expect(await store.nextDueAt()).toBe(Number.MAX_SAFE_INTEGER);
    const [logged] = await store.listDeliveries(subscription.id, 1);
    expect([logged?.createdAt.getTime(), logged?.attempts, logged?.nextAttemptAt]).toEqual([big + 3, 0, null]);
  });

  it('deleteSubscription removes it and cancels its pending deliveries atomically', async () => {
    const store = await db.migrated();
    const { subscriptions, deliveries } = await seed(store, 2, T0);
    expect(await store.deleteSubscription(subscriptions[0]!.id, T0 + 1)).toBe(true);
    expect(await store.deleteSubscription(subscriptions[0]!.id, T0 + 1)).toBe(false);
    const rows = new Map((await deliveryRows(store)).map((r) => [r.id, r.status]));
    expect(rows.get(deliveries[0]!.id)).toBe('cancelled');
    expect(rows.get(deliveries[1]!.id)).toBe('pending');
  });

  it('rotateSecret: rotations at once each keep the secret they replaced; the owner scope and `keep` hold', async () => {
    const store = await db.migrated();
    const subscription = subscriptionRow({ owner: 'alice' });
    await store.insertSubscription(subscription);
    const rotate = (next: string, owner?: string) => store.rotateSecret(subscription.id, { next, expiresAt: T0 + 1000, keep: 3, now: T0, ...(owner !== undefined ? { owner } : {}) });
    expect(await rotate('whsec_other', 'bob')).toBeUndefined();
    const rotated = await Promise.all(['whsec_a', 'whsec_b', 'whsec_c'].map((next) => rotate(next, 'alice')));
    const row = await store.db.selectFrom('resthooks_subscriptions').selectAll().where('id', '=', subscription.id).executeTakeFirstOrThrow();
    const previous = (JSON.parse(row.previous_secrets!) as Array<{ secret: string }>).map((p) => p.secret);
    // Whichever went last holds the secret; the other two and the original are kept, newest first.
    expect([row.secret, ...previous].sort()).toEqual([subscription.secret, 'whsec_a', 'whsec_b', 'whsec_c'].sort());
    expect(rotated.map((s) => s?.secret)).toContain(row.secret);
    expect(previous.at(-1)).toBe(subscription.secret);
    // A fourth keeps three: the original falls out.
    await rotate('whsec_d');
    const after = await store.db.selectFrom('resthooks_subscriptions').select('previous_secrets').where('id', '=', subscription.id).executeTakeFirstOrThrow();
    expect((JSON.parse(after.previous_secrets!) as Array<{ secret: string }>).map((p) => p.secret)).toEqual([row.secret, ...previous.slice(0, 2)]);
  });
});

// ── PostgreSQL only ─────────────────────────────────────────────────────────────────────────────

// Not in the unit scope, which starts no PostgreSQL.
if (ENGINES.includes('postgres')) describe('postgresStore', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase('postgres');
    await db.init();
  });
  afterEach(() => db.close());

  it('reads claims back in one statement of one value, each event and subscription once however many claims share them', async () => {
    const answers: unknown[][] = [];
    const pool = db.pool();
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<{ rows: unknown[] }>;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = async (...args: unknown[]) => {
        const result = await query(...args);
        answers.push(result.rows);
        return result;
      };
    });
    const store = await db.migrated(postgresStore(pool));
    const { event } = await seed(store, 5, T0);
    const claimed = await store.claimDue(10, T0, T0 + 60_000);
    answers.length = 0;
    const loaded = await store.loadClaims(claimed.map((c) => c.id));
    expect(loaded).toHaveLength(5);
    expect(answers).toHaveLength(1);
    expect(answers[0]).toHaveLength(1);
    // The event's columns once (its model, 'Book', is nowhere else), not once per claim.
    expect(event.model).toBe('Book');
    expect(JSON.stringify(answers[0]).split('Book').length - 1).toBe(1);
  });

  it('a fan-out pass taken back deletes only its unattempted claimed deliveries and sets back only its done events', async () => {
    const store = await db.migrated();
    const { deliveries, event } = await seed(store, 3, T0);
    const waiting = eventRow({ status: 'undeliverable' });
    await store.append(waiting);
    const [taken, attempted] = await store.claimDue(2, T0, T0 + 60_000);
    await store.db.updateTable(D).set({ attempts: 1 }).where('id', '=', attempted!.id).execute();
    const pending = deliveries.find((d) => d.id !== taken!.id && d.id !== attempted!.id)!;
    await store.dialect.executeBatch([undoFanOutPassStatement([taken!.id, attempted!.id, pending.id, 'dlv_unknown'], [event.id, waiting.id])]);
    expect(ids(await deliveryRows(store))).toEqual(ids([attempted!, pending]));
    const statuses = await store.db.selectFrom(E).select(['id', 'status']).orderBy('id').execute();
    expect(new Map(statuses.map((e) => [e.id, e.status]))).toEqual(new Map([[event.id, 'pending'], [waiting.id, 'undeliverable']]));
  });

  it('accepts a pg Pool as PgPool (structural type, no import of pg in the core)', () => {
    const pool: PgPool = db.pool();
    expect(typeof pool.connect).toBe('function');
  });

  it("does not wait on Kysely's shared migration lock (an app's own Kysely migrator may hold it)", async () => {
    const holder = await db.pool({ max: 1 }).connect();
    try {
      await holder.query('select pg_advisory_lock(3853314791062309107)'); // Kysely's PostgresAdapter key
      const { error, results } = await db.store().migrate();
      expect(error).toBeUndefined();
      expect(results).toHaveLength(MIGRATION_NAMES.length);
    } finally {
      holder.release();
    }
  });

  const MODES: ReadonlyArray<[string, PostgresStoreDialectOptions, pg.PoolConfig]> = [
    ['one inlined script', {}, {}],
    ['bound statements', { inlineBatches: false }, {}],
    // With standard_conforming_strings off, '…' reads backslashes as escapes too: E'…' must still be exact.
    ['one inlined script, standard_conforming_strings off', {}, { options: '-c standard_conforming_strings=off' }],
    ['a pg pipeline', { inlineBatches: false }, { pipeline: true }],
  ];
  const TRICKY = ["it's", 'back\\slash', "both \\' and ''", '$1 $2 -- not a comment /* nor this */ ; drop table x', 'naïve ☃ 🎉', 'line\nbreak\ttab', '"quoted"', "E'x'", '', 'u&$1'];

  it.each(MODES)('executeBatch via %s: values round-trip exactly, results per statement, all or nothing', async (_mode, options, poolConfig) => {
    const setup = await db.migrated();
    // max 1: the batch after a failed one must get the same connection back, usable and outside any transaction.
    const store = new KyselyStore(db.dialect(options, { max: 1, ...poolConfig }));
    const events = TRICKY.map((text, i) => eventRow({ owner: text, data: JSON.stringify(text), error: text || null, all_owners: i % 2, created_at: T0 + i }));
    const results = await store.dialect.executeBatch([
      ...events.map((e) => store.db.insertInto(E).values(e).compile()),
      store.db.selectFrom(E).select(['id', 'owner', 'created_at']).orderBy('created_at').compile(),
      store.db.updateTable(E).set({ status: 'done' }).where('owner', 'in', TRICKY.slice(0, 3)).compile(),
    ]);
    expect(results.slice(0, TRICKY.length).map((r) => r.changes)).toEqual(TRICKY.map(() => 1));
    expect(results[TRICKY.length]!.rows.map((r) => r.owner)).toEqual(TRICKY);
    expect(results[TRICKY.length + 1]!.changes).toBe(3);
    const stored = await setup.db.selectFrom(E).selectAll().orderBy('created_at').execute();
    expect(stored.map((e) => [e.owner, JSON.parse(e.data), e.error, Number(e.all_owners), Number(e.created_at)])).toEqual(
      events.map((e) => [e.owner, JSON.parse(e.data), e.error, e.all_owners, e.created_at]),
    );

    const fresh = eventRow();
    const duplicate = eventRow({ id: events[0]!.id });
    await expect(
      store.dialect.executeBatch([store.db.insertInto(E).values(fresh).compile(), store.db.insertInto(E).values(duplicate).compile()]),
    ).rejects.toThrow(/duplicate key/);
    expect(await setup.db.selectFrom(E).select('id').where('id', '=', fresh.id).execute()).toEqual([]);
    // The connection is back in the pool, outside any transaction: the next batch commits.
    await store.dialect.executeBatch([store.db.insertInto(E).values(fresh).compile(), store.db.deleteFrom(E).where('id', '=', events[1]!.id).compile()]);
    expect(await setup.db.selectFrom(E).select('id').where('id', 'in', [fresh.id, events[1]!.id]).execute()).toEqual([{ id: fresh.id }]);
  });

  it('a batch with a value pg converts itself (a Date) falls back to bound parameters', async () => {
    const store = await db.migrated();
    const when = new Date(T0);
    const [first, second] = await store.dialect.executeBatch([CompiledQuery.raw('select $1::timestamptz as at', [when]), store.db.selectFrom(E).select('id').compile()]);
    expect((first!.rows[0]!.at as Date).getTime()).toBe(T0);
    expect(second!.rows).toEqual([]);
  });
});

describe('inlineParameters (PostgreSQL one-round-trip scripts)', () => {
  it('replaces $n with quoted literals, $10 not read as $1, quotes in SQL left alone', () => {
    const params = Array.from({ length: 10 }, (_, i) => `v${i + 1}`);
    expect(inlineParameters(`select "a$1", 'x$1''y' from "t" where c = $1 and d = $10`, params)).toBe(`select "a$1", 'x$1''y' from "t" where c =  'v1' and d =  'v10'`);
    expect(inlineParameters('insert into t values ($1, $2, $3, $4)', [null, true, 12, 34n])).toBe(`insert into t values ( null,  'true',  '12',  '34')`);
    expect(inlineParameters('select $1', ["it's"])).toBe(`select  'it''s'`);
    expect(inlineParameters('select $1', ["a\\'b"])).toBe(`select  E'a\\\\''b'`);
    expect(inlineParameters('select $1', ['$2 -- ;'])).toBe(`select  '$2 -- ;'`);
  });

  it('refuses what it cannot prove equivalent', () => {
    for (const [text, params] of [
      ['select $1', [new Date()]],
      ['select $1', [Buffer.from('x')]],
      ['select $1', [[1, 2]]],
      ['select $1', [{ a: 1 }]],
      ['select $1', ['nul\0byte']],
      ['select $2', ['only one']],
      ['select $1 -- comment', [1]],
      ['select /* c */ $1', [1]],
      ['select $1; select 2', [1]],
      ['select $$body$$', []],
      ['select e$1', [1]],
      [`select E'\\'' , $1`, [1]],
      [`select 'unterminated`, []],
    ] as const) {
      expect(inlineParameters(text, params), text).toBeUndefined();
    }
    expect(inlineBatch([CompiledQuery.raw('select 1'), CompiledQuery.raw('select $1', [new Date()])])).toBeUndefined();
    expect(inlineBatch([CompiledQuery.raw('select 1'), CompiledQuery.raw('select $1', [2])])).toBe(`begin;\nselect 1;\nselect  '2';\ncommit`);
  });
});

// ── end to end, per engine ──────────────────────────────────────────────────────────────────────

const makeHooks = (store: StoreDialect) =>
  createHooks({
    events: { 'book.added': 'Book.created' },
    store,
    allowPrivateTargets: true,
    delivery: { retry: { schedule: [0, 20], jitter: 0 }, pollInterval: 50 },
  });


describe.each(ENGINES)('createHooks on %s, end to end', (engine) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(() => db.close());

  it('delivers a signed model event to a real receiver', async () => {
    const receiver = await startReceiver();
    const hooks = makeHooks(db.dialect());
    try {
      await hooks.start();
      const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/hooks` });
      expect(await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' })).toMatchObject({ status: 'queued' });
      const [request] = await receiver.waitFor(1);
      expect(verify(subscription.secret, request!)).toEqual({ hook: { id: subscription.id, event: 'book.added', target: `${receiver.url}/hooks` }, data: { id: 1, ownerId: 'alice' } });
      await hooks.idle();
      const [delivery] = await hooks.deliveries.list(subscription.id);
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
      expect(delivery?.attemptLog.map((a) => a.outcome)).toEqual(['delivered']);
    } finally {
      await hooks.close({ timeout: 1000 });
      await receiver.close();
    }
  });
});

if (ENGINES.includes('postgres')) describe('createHooks on postgres, host transactions', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase('postgres');
    await db.init();
  });
  afterEach(() => db.close());

  it('tx: a rolled-back host transaction sends nothing, a committed one is delivered', async () => {
    const receiver = await startReceiver();
    const hooks = makeHooks(db.dialect());
    const client = await db.pool({ max: 1 }).connect();
    try {
      await hooks.start();
      const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
      const tx = (sql: string, params: readonly unknown[]) => client.query(sql, params as unknown[]);

      await client.query('BEGIN');
      expect(await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' }, { tx })).toMatchObject({ status: 'queued' });
      await client.query('ROLLBACK');
      hooks.notify();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(receiver.received).toHaveLength(0);

      await client.query('BEGIN');
      await hooks.model('Book', 'created', { id: 2, ownerId: 'alice' }, { tx });
      await client.query('COMMIT');
      hooks.notify();
      const [request] = await receiver.waitFor(1);
      expect(verify(subscription.secret, request!)).toMatchObject({ data: { id: 2 } });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(receiver.received).toHaveLength(1);
    } finally {
      client.release();
      await hooks.close({ timeout: 1000 });
      await receiver.close();
    }
  });
});

// ── claims: a record or a release applies only while its claim holds the delivery ───────────────

describe.each(ENGINES)('KyselyStore claims and records on %s', (engine) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(() => db.close());

  type Claim = Awaited<ReturnType<KyselyStore['claimDue']>>[number];
  /** The record of attempt `claim.attempt` under `claim`: 200 delivered, 5xx retry, 410 gone, 4xx failed. */
  function recordOf(claim: Claim, statusCode: number, texts: { excerpt?: string | null; error?: string | null } = {}): AttemptRecord {
    const outcome = statusCode < 300 ? 'delivered' : statusCode === 410 ? 'gone' : statusCode >= 500 ? 'retry' : 'failed';
    const status = outcome === 'delivered' ? 'delivered' : outcome === 'retry' ? 'pending' : outcome === 'gone' ? 'cancelled' : 'failed';
    return {
      claim: { attempt: claim.attempt, leaseUntil: claim.leaseUntil },
      attempt: {
        id: newId('att'), delivery_id: claim.id, number: claim.attempt, started_at: T0, duration_ms: 5, status_code: statusCode,
        response_excerpt: texts.excerpt ?? `HTTP ${statusCode}`, error: texts.error ?? null, outcome,
      },
      delivery: { id: claim.id, status, attempts: claim.attempt, due_at: outcome === 'retry' ? T0 + 5_000 : 0, last_status_code: statusCode, last_error: texts.error ?? null },
      ...(outcome === 'gone' ? { goneSubscriptionId: claim.subscriptionId } : { streak: { subscriptionId: claim.subscriptionId, failed: outcome !== 'delivered' } }),
    };
  }
  const deliveryRow = (store: KyselyStore, id: string) => store.db.selectFrom(D).selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const failingSince = async (store: KyselyStore, id: string) =>
    (await store.db.selectFrom('resthooks_subscriptions').select('failing_since').where('id', '=', id).executeTakeFirstOrThrow()).failing_since;

  const attemptRows = (store: KyselyStore, deliveryId: string) => store.db.selectFrom('resthooks_attempts').select(['id', 'number']).where('delivery_id', '=', deliveryId).orderBy('number').execute();
  const logOf = async (store: KyselyStore, id: string) =>
    (await store.getDelivery(id))!.attemptLog.map((a) => [a.id, a.number, a.statusCode, a.responseExcerpt, a.outcome, a.startedAt.getTime(), a.durationMs]);

  it('a first attempt that delivers is kept in its delivery\'s row (statements per row and PostgreSQL\'s set-based statement alike); the log reads the same, later attempts follow it', async () => {
    const store = await db.migrated();
    await seed(store, 2, T0);
    const [a, b] = await store.claimDue(10, T0, T0 + 60_000);
    const [delivered, retried] = [recordOf(a!, 200, { excerpt: 'ok' }), recordOf(b!, 503)];
    expect(await store.recordAttempts([delivered, retried], T0 + 1)).toMatchObject({ stale: [], withoutTexts: [], released: [] });
    // One row written for the delivery, none for its attempt.
    expect(await attemptRows(store, a!.id)).toHaveLength(0);
    expect(await deliveryRow(store, a!.id)).toMatchObject({ first_attempt_id: delivered.attempt!.id, first_attempt_excerpt: 'ok' });
    expect(await attemptRows(store, b!.id)).toHaveLength(1);
    expect(await logOf(store, a!.id)).toEqual([[delivered.attempt!.id, 1, 200, 'ok', 'delivered', T0, 5]]);
    expect(await store.getDelivery(a!.id)).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });

    // A manual retry: the second attempt is a row, after the kept one, whose status code stays its own.
    expect(await store.requeueDelivery(a!.id, T0 + 2)).toBe('requeued');
    const [again] = await store.claimDue(10, T0 + 2, T0 + 60_000);
    expect(again).toMatchObject({ id: a!.id, attempt: 2 });
    const second = recordOf(again!, 201, { excerpt: 'again' });
    await store.recordAttempts([second], T0 + 3);
    expect(await logOf(store, a!.id)).toEqual([
      [delivered.attempt!.id, 1, 200, 'ok', 'delivered', T0, 5],
      [second.attempt!.id, 2, 201, 'again', 'delivered', T0, 5],
    ]);
    expect(await store.getDelivery(a!.id)).toMatchObject({ status: 'delivered', attempts: 2, lastStatusCode: 201 });
    // A record made under the first claim again is stale: nothing of it is written, the kept attempt included.
    expect((await store.recordAttempts([recordOf(a!, 200, { excerpt: 'late' })], T0 + 4)).stale).toHaveLength(1);
    expect((await logOf(store, a!.id)).map((x) => x[3])).toEqual(['ok', 'again']);
  });

  it('undoing migration 0007 turns kept first attempts back into attempt rows', async () => {
    const store = await db.migrated();
    await seed(store, 1, T0);
    const [claim] = await store.claimDue(10, T0, T0 + 60_000);
    const record = recordOf(claim!, 200, { excerpt: 'ok' });
    await store.recordAttempts([record], T0 + 1);
    const before = await logOf(store, claim!.id);
    const { error, results } = await migrateTo(store.db, '0006-fresh-events-table');
    expect(error).toBeUndefined();
    expect(results?.map((r) => [r.migrationName, r.direction, r.status])).toEqual([
      ['0008-subscription-history-table', 'Down', 'Success'],
      ['0007-first-attempt-in-delivery-row', 'Down', 'Success'],
    ]);
    const rows = await store.db.selectFrom('resthooks_attempts').selectAll().where('delivery_id', '=', claim!.id).execute();
    expect(rows.map((r) => [r.id, Number(r.number), Number(r.status_code), r.response_excerpt, r.outcome, Number(r.started_at), Number(r.duration_ms)])).toEqual(before);
    await expect(store.db.selectFrom(D).select('first_attempt_id').execute()).rejects.toThrow();
  });

  it("a kept first attempt whose id is its delivery's (firstAttemptId) is stored as '' on the statements per row, and read back as that id by the log and by undoing migration 0007", async () => {
    const store = await db.migrated();
    await seed(store, 1, T0);
    const [claim] = await store.claimDue(10, T0, T0 + 60_000);
    const record = recordOf(claim!, 200, { excerpt: 'ok' });
    const id = firstAttemptId(claim!.id);
    expect(id).toBe(`att_${claim!.id.slice('dlv_'.length)}`);
    await store.recordAttempts([{ ...record, attempt: { ...record.attempt!, id } }], T0 + 1);
    // PostgreSQL's set-based record writes the id out.
    expect((await deliveryRow(store, claim!.id)).first_attempt_id).toBe(store.dialect.capabilities.supportsArrayParameters ? id : '');
    expect(await logOf(store, claim!.id)).toEqual([[id, 1, 200, 'ok', 'delivered', T0, 5]]);
    expect((await migrateTo(store.db, '0006-fresh-events-table')).error).toBeUndefined();
    expect((await store.db.selectFrom('resthooks_attempts').select('id').where('delivery_id', '=', claim!.id).execute()).map((r) => r.id)).toEqual([id]);
  });

  it('a record batch the database cannot run (locked, timed out) is thrown back whole, not taken apart and stored without its texts', async () => {
    const store = await db.migrated();
    await seed(store, 1, T0);
    const [claim] = await store.claimDue(10, T0, T0 + 60_000);
    const record = recordOf(claim!, 200, { excerpt: 'the answer' });
    // Another connection holds the lock the record needs; this store gives up waiting quickly.
    let unlock: () => Promise<void>;
    let dialect: StoreDialect;
    if (engine === 'sqlite') {
      const blocker = new Database(db.url);
      blocker.exec('begin immediate');
      unlock = async () => {
        blocker.exec('rollback');
        blocker.close();
      };
      dialect = sqliteStore(new Database(db.url), { busyTimeoutMs: 50 });
    } else {
      const blocker = await db.pool().connect();
      await blocker.query('begin');
      await blocker.query(`lock table ${D} in access exclusive mode`);
      unlock = async () => {
        await blocker.query('rollback');
        blocker.release();
      };
      dialect = db.dialect({}, { statement_timeout: 200 });
    }
    // The lock goes away right after the first failure, as a database coming back would.
    let failures = 0;
    const recorder = new KyselyStore({
      ...dialect,
      executeBatch: async (queries) => {
        try {
          return await dialect.executeBatch(queries);
        } catch (error) {
          if (failures++ === 0) await unlock();
          throw error;
        }
      },
    });
    await expect(recorder.recordAttempts([record], T0 + 10)).rejects.toSatisfy((error: unknown) => dialect.isUnavailable(error));
    expect(await deliveryRow(store, claim!.id)).toMatchObject({ status: 'in_flight' });
    // Written again later, whole: its texts are kept.
    expect(await recorder.recordAttempts([record], T0 + 20)).toMatchObject({ stale: [], withoutTexts: [], released: [] });
    expect(await deliveryRow(store, claim!.id)).toMatchObject({ status: 'delivered' });
    expect((await store.getDelivery(claim!.id))?.attemptLog).toMatchObject([{ responseExcerpt: 'the answer', statusCode: 200 }]);
    await recorder.destroy().catch(() => undefined);
  });

  it('a claim that takes over a lapsed lease always gets a later lease, even when asked for an earlier one', async () => {
    const store = await db.migrated();
    await seed(store, 1, T0);
    const [first] = await store.claimDue(10, T0, T0 + 100);
    const [second] = await store.claimDue(10, T0 + 100, T0 + 100); // a lease of 0 ms asked for
    expect(first!.leaseUntil).toBe(T0 + 100);
    expect(second!.leaseUntil).toBe(T0 + 101);
    expect(Number((await deliveryRow(store, second!.id)).due_at)).toBe(T0 + 101);
  });

  for (const late of [503, 422, 410] as const) {
    it(`a late ${late} from a lapsed claim changes nothing once the claimer that took over has delivered (stale, reported)`, async () => {
      const store = await db.migrated();
      const { subscriptions } = await seed(store, 1, T0);
      const [stalled] = await store.claimDue(10, T0, T0 + 100);
      const [takeover] = await store.claimDue(10, T0 + 100, T0 + 1_000);
      expect([takeover!.id, takeover!.attempt]).toEqual([stalled!.id, stalled!.attempt]);
      const recorded = await store.recordAttempts([recordOf(takeover!, 200)], T0 + 200, 0);

      const stale = recordOf(stalled!, late);
      // disableAfterMs 0: a failed attempt that applied would disable the subscription at once.
      const staleRecorded = await store.recordAttempts([stale], T0 + 300, 0);
      const staleReleased = await store.releaseClaims([{ id: stalled!.id, claim: stalled!, dueAt: T0 + 300 }], T0 + 300);

      expect(await store.getDelivery(stalled!.id)).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200, lastError: null });
      expect((await store.getDelivery(stalled!.id))!.attemptLog.map((a) => [a.number, a.statusCode])).toEqual([[1, 200]]);
      expect(await store.getSubscription(subscriptions[0]!.id)).toMatchObject({ active: true });
      expect(await failingSince(store, subscriptions[0]!.id)).toBeNull();
      expect(await store.claimDue(10, T0 + 10_000, T0 + 20_000)).toEqual([]);
      expect(recorded).toMatchObject({ stale: [], released: [] });
      expect(staleRecorded).toEqual({ disabled: [], stale: [stale], withoutTexts: [], released: [] });
      expect(staleReleased).toEqual({ stale: [stalled!.id] });
    });
  }

  it('a lapsed claim recording before the one that took over: stale, and the takeover still records its attempt', async () => {
    const store = await db.migrated();
    await seed(store, 1, T0);
    const [stalled] = await store.claimDue(10, T0, T0 + 100);
    const [takeover] = await store.claimDue(10, T0 + 100, T0 + 1_000);
    const stale = recordOf(stalled!, 503);
    expect((await store.recordAttempts([stale], T0 + 150)).stale).toEqual([stale]);
    expect((await deliveryRow(store, stalled!.id)).status).toBe('in_flight');
    expect((await store.recordAttempts([recordOf(takeover!, 200)], T0 + 200)).stale).toEqual([]);
    const delivery = await store.getDelivery(stalled!.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(delivery!.attemptLog.map((a) => [a.number, a.statusCode])).toEqual([[1, 200]]);
  });

  it('a release by a lapsed claim leaves the claim that took over in flight; its holder can still record', async () => {
    const store = await db.migrated();
    await seed(store, 1, T0);
    const [stalled] = await store.claimDue(10, T0, T0 + 100);
    const [takeover] = await store.claimDue(10, T0 + 100, T0 + 1_000);
    expect(await store.releaseClaims([{ id: stalled!.id, claim: stalled!, dueAt: T0 + 150 }], T0 + 150)).toEqual({ stale: [stalled!.id] });
    expect(Number((await deliveryRow(store, stalled!.id)).due_at)).toBe(T0 + 1_000);
    expect(await store.claimDue(10, T0 + 999, T0 + 2_000)).toEqual([]);
    expect((await store.recordAttempts([recordOf(takeover!, 200)], T0 + 200)).stale).toEqual([]);
  });

  it('streaks and disabling in one batch follow only the records that apply', async () => {
    const store = await db.migrated();
    const subscription = subscriptionRow();
    await store.insertSubscription(subscription);
    const events = [eventRow({ status: 'done' }), eventRow({ status: 'done' }), eventRow({ status: 'done' })];
    for (const event of events) await store.append(event, [newDeliveryRow(event.id, subscription.id, T0)]);
    // All three claimed with a short lease; two lapse and are taken over, one (the middle) stays held.
    const stalled = await store.claimDue(10, T0, T0 + 100);
    const held = stalled[1]!;
    await store.releaseClaims([{ id: held.id, claim: held, dueAt: T0 + 50 }], T0 + 50);
    const [renewed] = await store.claimDue(1, T0 + 50, T0 + 10_000);
    const takenOver = await store.claimDue(10, T0 + 100, T0 + 1_000);
    expect(ids(takenOver)).toEqual(ids([stalled[0]!, stalled[2]!]));
    // A run of failures for one subscription: two stale, one live. The live one starts the streak.
    const batch = [recordOf(stalled[0]!, 503), recordOf(renewed!, 503), recordOf(stalled[2]!, 503)];
    const result = await store.recordAttempts(batch, T0 + 200, null);
    expect(result.stale).toEqual([batch[0], batch[2]]);
    expect(Number(await failingSince(store, subscription.id))).toBe(T0 + 200);
    // A run of only stale failures, with disabling on at 0 ms: neither disables nor moves anything.
    const staleOnly = [recordOf(stalled[0]!, 503), recordOf(stalled[2]!, 503)];
    expect(await store.recordAttempts(staleOnly, T0 + 300, 0)).toMatchObject({ disabled: [], stale: staleOnly });
    expect(await store.getSubscription(subscription.id)).toMatchObject({ active: true });
    // The takeovers succeed: the streak ends, and both count as recorded.
    expect((await store.recordAttempts(takenOver.map((c) => recordOf(c, 200)), T0 + 400)).stale).toEqual([]);
    expect(await failingSince(store, subscription.id)).toBeNull();
  });

  it('NUL, invalid UTF-8 (already U+FFFD) and lone surrogates in excerpts and errors are stored as valid text', async () => {
    const store = await db.migrated();
    await seed(store, 2, T0);
    const [a, b] = await store.claimDue(10, T0, T0 + 60_000);
    const records = [
      recordOf(a!, 500, { excerpt: 'bin\0ary \uFFFD\uFFFD body\0', error: 'reset\0 by peer' }),
      recordOf(b!, 200, { excerpt: 'half a pair \uD83D, a low \uDE00 alone, whole 😀' }),
    ];
    const result = await store.recordAttempts(records, T0 + 1);
    const first = await store.getDelivery(a!.id);
    expect(first).toMatchObject({ status: 'pending', lastError: 'reset\uFFFD by peer' });
    expect(first!.attemptLog.map((x) => [x.responseExcerpt, x.error])).toEqual([['bin\uFFFDary \uFFFD\uFFFD body\uFFFD', 'reset\uFFFD by peer']]);
    expect((await store.getDelivery(b!.id))!.attemptLog[0]!.responseExcerpt).toBe('half a pair \uFFFD, a low \uFFFD alone, whole 😀');
    expect(result).toMatchObject({ stale: [], withoutTexts: [], released: [] });
  });

  /**
   * A real refusal by the database: triggers that raise on attempt rows matching `condition`, and on a first
   * attempt kept in its delivery's row (migration 0007) matching `keptCondition` (over the delivery row).
   */
  async function refuseAttempts(store: KyselyStore, condition: string, keptCondition: string): Promise<void> {
    const kept = `new.first_attempt_id is not null and old.first_attempt_id is null and ${keptCondition}`;
    const statements =
      engine === 'sqlite'
        ? [
            `create trigger refuse_attempt before insert on resthooks_attempts when ${condition} begin select raise(abort, 'attempt row refused'); end`,
            `create trigger refuse_kept_attempt before update on resthooks_deliveries when ${kept} begin select raise(abort, 'attempt row refused'); end`,
          ]
        : [
            `create function refuse_attempt() returns trigger language plpgsql as $$ begin if ${condition} then raise exception 'attempt row refused'; end if; return new; end $$`,
            'create trigger refuse_attempt before insert on resthooks_attempts for each row execute function refuse_attempt()',
            `create function refuse_kept_attempt() returns trigger language plpgsql as $$ begin if ${kept} then raise exception 'attempt row refused'; end if; return new; end $$`,
            'create trigger refuse_kept_attempt before update on resthooks_deliveries for each row execute function refuse_kept_attempt()',
          ];
    for (const text of statements) await store.db.executeQuery(CompiledQuery.raw(text));
  }

  it('one record the database refuses holds back no other: the batch is written record by record, the refused one without its texts', async () => {
    const store = await db.migrated();
    await seed(store, 3, T0);
    await refuseAttempts(store, `new.response_excerpt like '%poison%'`, `new.first_attempt_excerpt like '%poison%'`);
    const claims = await store.claimDue(10, T0, T0 + 60_000);
    const records = claims.map((c, index) => recordOf(c, 200, { excerpt: index === 1 ? 'a poison answer' : 'ok' }));
    const result = await store.recordAttempts(records, T0 + 1);
    expect(result).toMatchObject({ stale: [], withoutTexts: [records[1]], released: [] });
    expect(String(result.batchError)).toMatch(/attempt row refused/);
    for (const [index, claim] of claims.entries()) {
      const delivery = await store.getDelivery(claim.id);
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 1 });
      expect(delivery!.attemptLog.map((a) => [a.statusCode, a.responseExcerpt])).toEqual([[200, index === 1 ? null : 'ok']]);
    }
  });

  it('a record refused even without its texts: its claim is given back, due again soon, never left in flight', async () => {
    const store = await db.migrated();
    await seed(store, 2, T0);
    const [a, b] = await store.claimDue(10, T0, T0 + 60_000);
    await refuseAttempts(store, `new.delivery_id = '${a!.id}'`, `new.id = '${a!.id}'`);
    const records = [recordOf(a!, 200), recordOf(b!, 200)];
    const result = await store.recordAttempts(records, T0 + 1);
    expect(result).toMatchObject({ stale: [], withoutTexts: [], released: [records[0]] });
    const released = await deliveryRow(store, a!.id);
    expect([released.status, Number(released.attempts)]).toEqual(['pending', 0]);
    expect(Number(released.due_at)).toBeGreaterThan(T0 + 1);
    expect(Number(released.due_at)).toBeLessThanOrEqual(T0 + 60_000);
    expect(await store.getDelivery(b!.id)).toMatchObject({ status: 'delivered', attempts: 1 });
    // Made again once due: the same attempt number.
    expect((await store.claimDue(10, Number(released.due_at), T0 + 120_000)).map((c) => [c.id, c.attempt])).toEqual([[a!.id, 1]]);
  });
});
