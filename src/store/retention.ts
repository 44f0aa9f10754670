/**
 * Retention: deletes what has been idle since a cutoff, a batch at a time, so the delivery log does
 * not grow forever and dispatch never waits on one long delete. Idle means by last activity, not by
 * age: a finished delivery goes once its `updated_at` (last attempt, retry or recovery) is before the
 * cutoff, with its attempts; an event goes once it is handled, was made and last fanned out before the
 * cutoff, and no delivery of it is left. Pending and in-flight work is never touched, nor are fresh
 * events (`resthooks_outbox`, migration 0006): only `resthooks_events` is read, where an event arrives
 * once the fan-out has handled it.
 * @module
 */
import { sql } from 'kysely';
import { idFloor } from '../ids.js';
import type { KyselyStore } from './kysely-store.js';
import type { DeliveryStatus } from './schema.js';
import { ANCHOR_ID } from './subscription-history.js';

export interface PurgeResult {
  readonly deliveries: number;
  readonly events: number;
}

/** How often a started hooks instance purges by itself (`retention`). */
export const RETENTION_INTERVAL_MS = 3_600_000;

export interface PurgeOptions {
  readonly batchSize?: number;
  /** Ends the purge between two batches (a stopping instance must not wait for a whole purge). */
  readonly signal?: AbortSignal;
}

const FINISHED: readonly DeliveryStatus[] = ['delivered', 'failed', 'cancelled'];

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Purges deliveries idle since `cutoff` (ms) and the events they leave behind.
 *
 * No index on `updated_at` is needed: a delivery is never active before it exists, so one idle since
 * the cutoff was made before it, and ids sort by creation time. The scan is a primary-key range below
 * the cutoff's id, walked once with a cursor; what it keeps there (pending work, old deliveries that
 * were retried or recovered lately) is passed over once per purge, not once per batch.
 */
export async function purgeBefore(store: KyselyStore, cutoff: number, { batchSize = 500, signal }: PurgeOptions = {}): Promise<PurgeResult> {
  const { db } = store;
  const history = store.catchesUpHistory;
  let deliveries = 0;
  let events = 0;
  for (let after = ''; !signal?.aborted; ) {
    const batch = await db
      .selectFrom('resthooks_deliveries')
      .select(['id', 'subscription_id'])
      .where('id', '>', after)
      .where('id', '<', idFloor('dlv', cutoff))
      .where('status', 'in', FINISHED)
      .where('updated_at', '<', cutoff)
      .orderBy('id')
      .limit(batchSize)
      .execute();
    if (batch.length === 0) break;
    const ids = batch.map((row) => row.id);
    after = ids.at(-1)!;
    // The conditions again in the DELETE: a delivery retried or recovered since the SELECT is active
    // now and stays, and so do its attempts (only attempts whose delivery is gone are deleted).
    const deleteDeliveries = db.deleteFrom('resthooks_deliveries').where('id', 'in', ids).where('status', 'in', FINISHED).where('updated_at', '<', cutoff);
    const [deleted] = await store.dialect.executeBatch([
      // The history's anchor stays until the history has caught up past it: gone, the mark would not hold
      // and every read of the history would scan all deliveries until the next catch-up.
      (history ? deleteDeliveries.where(sql<boolean>`id not in (${ANCHOR_ID})`) : deleteDeliveries).compile(),
      ...(history
        ? [
            db
              .deleteFrom('resthooks_subscription_history')
              .where(sql<boolean>`(subscription_id, delivery_id) in (values ${sql.join(batch.map((row) => sql`(${row.subscription_id}, ${row.id})`))})`)
              .where((eb) => eb.not(eb.exists(eb.selectFrom('resthooks_deliveries as d').select('d.id').whereRef('d.id', '=', 'resthooks_subscription_history.delivery_id'))))
              .compile(),
          ]
        : []),
      db
        .deleteFrom('resthooks_attempts')
        .where('delivery_id', 'in', ids)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('resthooks_deliveries as d').select('d.id').whereRef('d.id', '=', 'resthooks_attempts.delivery_id'))))
        .compile(),
    ]);
    deliveries += deleted?.changes ?? 0;
    await yieldToEventLoop();
  }
  for (let after = ''; !signal?.aborted; ) {
    const batch = await db
      .selectFrom('resthooks_events as e')
      .select('e.id')
      .where('e.id', '>', after)
      .where('e.id', '<', idFloor('evt', cutoff))
      .where('e.status', '!=', 'pending')
      // Re-fanned lately (hooks.outbox.retry): active, so kept like a recovered delivery.
      .where('e.next_fanout_at', '<', cutoff)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('resthooks_deliveries as d').select('d.id').whereRef('d.event_id', '=', 'e.id'))))
      .orderBy('e.id')
      .limit(batchSize)
      .execute();
    if (batch.length === 0) break;
    const ids = batch.map((row) => row.id);
    after = ids.at(-1)!;
    const result = await db
      .deleteFrom('resthooks_events')
      .where('id', 'in', ids)
      .where('status', '!=', 'pending')
      .where('next_fanout_at', '<', cutoff)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('resthooks_deliveries as d').select('d.id').whereRef('d.event_id', '=', 'resthooks_events.id'))))
      .executeTakeFirst();
    events += Number(result.numDeletedRows);
    await yieldToEventLoop();
  }
  return { deliveries, events };
}
