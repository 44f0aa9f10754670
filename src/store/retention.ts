/**
 * Retention: deletes finished deliveries (with their attempts) and handled events older than a
 * cutoff, a batch at a time, so the delivery log does not grow forever and dispatch never waits on
 * one long delete. Pending work is never touched.
 * @module
 */
import { idFloor } from '../ids.js';
import type { KyselyStore } from './kysely-store.js';

export interface PurgeResult {
  readonly deliveries: number;
  readonly events: number;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

// Ids sort by creation time, so "made before the cutoff" is a primary-key range scan.
export async function purgeBefore(store: KyselyStore, cutoff: number, batchSize = 500): Promise<PurgeResult> {
  const { db } = store;
  let deliveries = 0;
  let events = 0;
  for (;;) {
    const batch = await db
      .selectFrom('resthooks_deliveries')
      .select('id')
      .where('id', '<', idFloor('dlv', cutoff))
      .where('status', 'in', ['delivered', 'failed', 'cancelled'])
      .limit(batchSize)
      .execute();
    if (batch.length === 0) break;
    const ids = batch.map((row) => row.id);
    await store.dialect.executeBatch([
      db.deleteFrom('resthooks_attempts').where('delivery_id', 'in', ids).compile(),
      db.deleteFrom('resthooks_deliveries').where('id', 'in', ids).compile(),
    ]);
    deliveries += ids.length;
    await yieldToEventLoop();
  }
  for (;;) {
    const batch = await db
      .selectFrom('resthooks_events as e')
      .select('e.id')
      .where('e.id', '<', idFloor('evt', cutoff))
      .where('e.status', '!=', 'pending')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('resthooks_deliveries as d').select('d.id').whereRef('d.event_id', '=', 'e.id'))))
      .limit(batchSize)
      .execute();
    if (batch.length === 0) break;
    await db.deleteFrom('resthooks_events').where('id', 'in', batch.map((row) => row.id)).execute();
    events += batch.length;
    await yieldToEventLoop();
  }
  return { deliveries, events };
}
