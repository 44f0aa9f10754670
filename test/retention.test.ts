/**
 * Retention by last activity, on a real SQLite file and a real PostgreSQL server: a finished delivery
 * is purged once it has been idle (`updated_at`) longer than `retention`, whatever its age, and an
 * event once it is old, handled and left without deliveries. Then the hourly purge of a started
 * instance, with only `setInterval` faked (the store, its clock and its I/O are real).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { idFloor, newId } from '../src/ids.js';
import { KyselyStore } from '../src/store/kysely-store.js';
import { purgeBefore, RETENTION_INTERVAL_MS } from '../src/store/retention.js';
import type { AttemptTable, DeliveryStatus, EventStatus } from '../src/store/schema.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';
import { eventually, testHooks } from './support/hooks.js';
import { startReceiver } from './support/receiver.js';

const DAY = 86_400_000;
const EVENTS = { 'book.added': 'Book.created' } as const;

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const close of closers.splice(0).reverse()) await close();
});

/** An id as `newId` would have made it at `ms`. */
const idAt = (prefix: 'evt' | 'dlv' | 'sub', ms: number) => `${idFloor(prefix, ms)}0000${newId(prefix).slice(-12)}`;

async function database(engine: Engine): Promise<{ db: TestDatabase; store: KyselyStore }> {
  const db = new TestDatabase(engine);
  await db.init();
  closers.push(() => db.close());
  return { db, store: await db.migrated() };
}

async function insertEvent(store: KyselyStore, createdAt: number, status: EventStatus = 'done'): Promise<string> {
  const id = idAt('evt', createdAt);
  await store.db
    .insertInto('resthooks_events')
    .values({ id, name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{"id":1}', body: null, status, error: null, created_at: createdAt })
    .execute();
  return id;
}

/** A delivery made at `createdAt`, last active at `updatedAt`, with `attempts` attempt rows. */
async function insertDelivery(
  store: KyselyStore,
  row: { eventId: string; subscriptionId?: string; createdAt: number; updatedAt: number; status: DeliveryStatus; attempts?: number },
): Promise<string> {
  const id = idAt('dlv', row.createdAt);
  const attempts = row.attempts ?? 1;
  await store.db
    .insertInto('resthooks_deliveries')
    .values({
      id,
      event_id: row.eventId,
      subscription_id: row.subscriptionId ?? newId('sub'),
      status: row.status,
      attempts,
      due_at: row.updatedAt,
      body: null,
      last_status_code: row.status === 'delivered' ? 200 : 500,
      last_error: null,
      created_at: row.createdAt,
      updated_at: row.updatedAt,
    })
    .execute();
  const attemptRows: AttemptTable[] = Array.from({ length: attempts }, (_, i) => ({
    id: newId('att'),
    delivery_id: id,
    number: i + 1,
    started_at: row.createdAt + i * 1000,
    duration_ms: 5,
    status_code: 500,
    response_excerpt: 'down',
    error: null,
    outcome: 'retry',
  }));
  if (attemptRows.length) await store.db.insertInto('resthooks_attempts').values(attemptRows).execute();
  return id;
}

const deliveryIds = async (store: KyselyStore) => (await store.db.selectFrom('resthooks_deliveries').select('id').orderBy('id').execute()).map((r) => r.id);
const eventIds = async (store: KyselyStore) => (await store.db.selectFrom('resthooks_events').select('id').orderBy('id').execute()).map((r) => r.id);
const attemptCounts = async (store: KyselyStore) => {
  const rows = await store.db.selectFrom('resthooks_attempts').select('delivery_id').execute();
  const counts: Record<string, number> = {};
  for (const { delivery_id } of rows) counts[delivery_id] = (counts[delivery_id] ?? 0) + 1;
  return counts;
};

describe.each(ENGINES)('retention on %s', (engine) => {
  it('leaves events waiting for their fan-out alone, however old: fresh ones (SQLite) and pending ones', async () => {
    const { store } = await database(engine);
    const now = Date.now();
    const createdAt = now - 40 * DAY;
    // As the trigger writes it (on SQLite into the fresh table), made long ago: a fan-out that was down for weeks.
    const waiting = { id: idAt('evt', createdAt), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{"id":1}', body: null, status: 'pending' as const, error: null, created_at: createdAt };
    await store.append(waiting);
    const pendingIndexed = await insertEvent(store, createdAt, 'pending');
    const handled = await insertEvent(store, createdAt);
    const freshTable = async () => (await store.db.selectFrom('resthooks_outbox').select('id').execute()).map((r) => r.id);
    expect(await freshTable()).toEqual(engine === 'sqlite' ? [waiting.id] : []);

    expect(await purgeBefore(store, now - 30 * DAY)).toEqual({ deliveries: 0, events: 1 });
    expect(await eventIds(store)).not.toContain(handled);
    expect(await freshTable()).toEqual(engine === 'sqlite' ? [waiting.id] : []);
    expect((await store.pendingEvents(10, now)).map((e) => e.id).sort()).toEqual([waiting.id, pendingIndexed].sort());
  });

  it('purges finished deliveries idle past the cutoff, not old ones active since, and events left without deliveries', async () => {
    const { store } = await database(engine);
    const now = Date.now();
    const cutoff = now - 30 * DAY;
    const oldEvent = await insertEvent(store, now - 40 * DAY);
    const recoveredEvent = await insertEvent(store, now - 40 * DAY);
    const idle = await insertDelivery(store, { eventId: oldEvent, createdAt: now - 40 * DAY, updatedAt: now - 31 * DAY, status: 'delivered', attempts: 2 });
    const idleFailed = await insertDelivery(store, { eventId: oldEvent, createdAt: now - 40 * DAY, updatedAt: now - 35 * DAY, status: 'failed', attempts: 3 });
    // Created 40 days ago, recovered (re-sent) 29 and 1 day ago: active, so kept.
    const recovered = await insertDelivery(store, { eventId: recoveredEvent, createdAt: now - 40 * DAY, updatedAt: now - 29 * DAY, status: 'delivered', attempts: 4 });
    const recoveredYesterday = await insertDelivery(store, { eventId: recoveredEvent, createdAt: now - 40 * DAY, updatedAt: now - DAY, status: 'failed', attempts: 5 });
    // Pending and in-flight work is never purged, however long idle.
    const pendingEvent = await insertEvent(store, now - 40 * DAY);
    const pending = await insertDelivery(store, { eventId: pendingEvent, createdAt: now - 40 * DAY, updatedAt: now - 40 * DAY, status: 'pending' });
    const inFlight = await insertDelivery(store, { eventId: pendingEvent, createdAt: now - 40 * DAY, updatedAt: now - 35 * DAY, status: 'in_flight' });
    const recentEvent = await insertEvent(store, now - DAY);
    const recent = await insertDelivery(store, { eventId: recentEvent, createdAt: now - DAY, updatedAt: now - DAY, status: 'cancelled' });
    // Events without deliveries: old and handled → purged; old but not fanned out yet, or recent → kept.
    const undeliverable = await insertEvent(store, now - 31 * DAY, 'undeliverable');
    const notFannedOut = await insertEvent(store, now - 31 * DAY, 'pending');
    const recentNoSubscribers = await insertEvent(store, now - 29 * DAY);
    // Made 31 days ago, fanned out again yesterday (hooks.outbox.retry) and reaching nobody: active, so kept.
    const refannedYesterday = await insertEvent(store, now - 31 * DAY);
    await store.db.updateTable('resthooks_events').set({ next_fanout_at: now - DAY }).where('id', '=', refannedYesterday).execute();

    expect(await purgeBefore(store, cutoff)).toEqual({ deliveries: 2, events: 2 });
    expect(await deliveryIds(store)).toEqual([recovered, recoveredYesterday, pending, inFlight, recent].sort());
    expect(await eventIds(store)).toEqual([recoveredEvent, pendingEvent, recentEvent, notFannedOut, recentNoSubscribers, refannedYesterday].sort());
    expect(await attemptCounts(store)).toEqual({ [recovered]: 4, [recoveredYesterday]: 5, [pending]: 1, [inFlight]: 1, [recent]: 1 });
    expect(await deliveryIds(store)).not.toContain(idle);
    expect(await deliveryIds(store)).not.toContain(idleFailed);
    expect(await eventIds(store)).not.toContain(oldEvent);
    expect(await eventIds(store)).not.toContain(undeliverable);
    expect(await purgeBefore(store, cutoff)).toEqual({ deliveries: 0, events: 0 });
  });

  it('walks past kept rows in small batches without missing or repeating any', async () => {
    const { store } = await database(engine);
    const now = Date.now();
    const kept: string[] = [];
    const purged: string[] = [];
    // Interleaved, in creation order: idle and recently active deliveries of old events.
    for (let i = 0; i < 15; i++) {
      const createdAt = now - (60 - i) * DAY;
      const eventId = await insertEvent(store, createdAt);
      const active = i % 3 !== 0;
      const id = await insertDelivery(store, { eventId, createdAt, updatedAt: active ? now - i * 1000 : createdAt, status: i % 2 ? 'delivered' : 'failed' });
      (active ? kept : purged).push(id);
    }
    expect(await purgeBefore(store, now - 30 * DAY, { batchSize: 2 })).toEqual({ deliveries: purged.length, events: purged.length });
    expect(await deliveryIds(store)).toEqual(kept.sort());
    expect(Object.keys(await attemptCounts(store)).sort()).toEqual(kept.sort());
  });

  it('keeps a delivery retried between the purge finding it and deleting it, with its attempts', async () => {
    const { db, store } = await database(engine);
    const now = Date.now();
    const eventId = await insertEvent(store, now - 40 * DAY);
    const retried = await insertDelivery(store, { eventId, createdAt: now - 40 * DAY, updatedAt: now - 31 * DAY, status: 'failed', attempts: 3 });
    await insertDelivery(store, { eventId, createdAt: now - 40 * DAY, updatedAt: now - 31 * DAY, status: 'delivered', attempts: 1 }); // idle: purged
    // The retry lands through another connection just before the purge's delete runs.
    const dialect = db.dialect();
    const racing = new KyselyStore({
      ...dialect,
      executeBatch: async (queries) => {
        expect(await store.requeueDelivery(retried, Date.now())).toBe('requeued');
        return dialect.executeBatch(queries);
      },
    });
    expect(await purgeBefore(racing, now - 30 * DAY)).toEqual({ deliveries: 1, events: 0 });
    expect(await deliveryIds(store)).toEqual([retried]);
    expect(await attemptCounts(store)).toEqual({ [retried]: 3 });
    expect(await eventIds(store)).toEqual([eventId]);
  });

  it('keeps a delivery created 31 days ago and recovered today, through the public API, until it has been idle for the retention', async () => {
    const { db, store } = await database(engine);
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), retention: false });
    closers.push(close);
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    const now = Date.now();
    const eventId = await insertEvent(store, now - 31 * DAY);
    const id = await insertDelivery(store, { eventId, subscriptionId: subscription.id, createdAt: now - 31 * DAY, updatedAt: now - 31 * DAY, status: 'failed', attempts: 3 });

    expect(await hooks.deliveries.recover(subscription.id, { since: now - 32 * DAY })).toBe(1);
    await receiver.waitFor(1);
    await eventually(async () => expect(await hooks.deliveries.get(id)).toMatchObject({ status: 'delivered', attempts: 4 }), 10_000);

    expect(await hooks.purge({ olderThan: '30d' })).toEqual({ deliveries: 0, events: 0 });
    expect((await hooks.deliveries.get(id))?.attemptLog).toHaveLength(4);
    // Idle for longer than the retention from now on (a cutoff in the future stands for that).
    expect(await purgeBefore(store, Date.now() + 1000)).toEqual({ deliveries: 1, events: 1 });
    expect(await hooks.deliveries.get(id)).toBeUndefined();
  });

  it('close() right after start() ends the purge in flight between batches: no purge on a destroyed store', async () => {
    const { db, store } = await database(engine);
    const createdAt = Date.now() - 40 * DAY;
    const eventId = await insertEvent(store, createdAt);
    for (let batch = 0; batch < 6; batch++) {
      await store.db.transaction().execute(async (trx) => {
        const rows = Array.from({ length: 500 }, (_, i) => ({
          id: idAt('dlv', createdAt + batch * 500 + i),
          event_id: eventId,
          subscription_id: newId('sub'),
          status: 'delivered' as const,
          attempts: 1,
          due_at: createdAt,
          body: null,
          last_status_code: 200,
          last_error: null,
          created_at: createdAt,
          updated_at: createdAt,
        }));
        await trx.insertInto('resthooks_deliveries').values(rows).execute();
      });
    }
    const errors: string[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (_fields: object, message: string) => void errors.push(message) };
    const { hooks } = await testHooks({ events: EVENTS, store: db.dialect(), retention: '30d', logger }, { start: false });
    await hooks.start();
    await hooks.close({ timeout: 10_000 });
    // A purge left running would meet the destroyed store within a batch: give it time to say so.
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The purge had 3,000 rows to walk in batches of 500: it was cut short, not run on a closed store.
    expect(errors).toEqual([]);
    expect((await deliveryIds(store)).length).toBeGreaterThan(0);
  });

  it('a started instance purges at once and then every hour, until stopped', async () => {
    const { db, store } = await database(engine);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), retention: '30d' }, { start: false });
    closers.push(close);
    const idleRow = async () => {
      const createdAt = Date.now() - 40 * DAY;
      const eventId = await insertEvent(store, createdAt);
      return { eventId, deliveryId: await insertDelivery(store, { eventId, createdAt, updatedAt: Date.now() - 31 * DAY, status: 'delivered' }) };
    };
    const gone = async (row: { eventId: string; deliveryId: string }) => {
      expect(await deliveryIds(store)).not.toContain(row.deliveryId);
      expect(await eventIds(store)).not.toContain(row.eventId);
    };
    const first = await idleRow();
    await hooks.start();
    await eventually(() => gone(first), 10_000);
    expect(vi.getTimerCount()).toBe(1);

    for (let hour = 1; hour <= 2; hour++) {
      const row = await idleRow();
      const activeEvent = await insertEvent(store, Date.now() - 40 * DAY);
      const active = await insertDelivery(store, { eventId: activeEvent, createdAt: Date.now() - 40 * DAY, updatedAt: Date.now() - 29 * DAY, status: 'delivered' });
      expect(await deliveryIds(store)).toContain(row.deliveryId);
      // Another hour on each try: a tick that comes while the previous purge is still ending its last
      // batch (its rows already gone) is skipped, and the next hour's purges the row.
      await eventually(async () => {
        vi.advanceTimersByTime(RETENTION_INTERVAL_MS);
        await gone(row);
      }, 10_000);
      expect(await deliveryIds(store)).toContain(active);
    }

    await hooks.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
