/**
 * Fan-out: pending outbox events → one delivery row per matching subscription.
 * Reads only the outbox and the subscriptions; writes deliveries and marks the events done, atomically.
 * @module
 */
import type { Finder } from '../config/options.js';
import { newDeliveryRow } from '../store/rows.js';
import { errorInfo, type Logger } from '../logger.js';
import type { KyselyStore } from '../store/kysely-store.js';
import { toStoredEvent, type Subscription } from '../store/records.js';
import type { DeliveryTable, EventTable } from '../store/schema.js';
import type { FindSubscriptions } from '../triggers/triggers.js';

/** The default lookup (active subscriptions of the event's owner, or of all owners), or the user's finder. */
export function subscriptionFinder(store: KyselyStore, finder: Finder | undefined): FindSubscriptions {
  const defaultFind = (event: EventTable) => store.activeSubscriptionsFor(event.name, Number(event.all_owners) === 1 ? null : event.owner);
  if (!finder) return defaultFind;
  return async (event) => {
    const allOwners = Number(event.all_owners) === 1;
    const found = await finder(event.name, toStoredEvent(event), { owner: allOwners ? null : event.owner, allOwners, defaultFind: () => defaultFind(event) });
    return found.filter((s) => s.active);
  };
}

/**
 * Fans out up to `limit` pending events; returns how many it took. With the default finder, events
 * of the same (name, owner) in one batch share one subscription query.
 */
export async function fanOutBatch(store: KyselyStore, find: FindSubscriptions, custom: boolean, limit: number, logger: Logger): Promise<number> {
  const events = await store.pendingEvents(limit);
  if (events.length === 0) return 0;
  const now = Date.now();
  const shared = new Map<string, Promise<readonly Subscription[]>>();
  const items: Array<{ eventId: string; deliveries: DeliveryTable[] }> = [];
  for (const event of events) {
    let subscriptions: readonly Subscription[];
    try {
      if (custom) subscriptions = await find(event);
      else {
        const key = `${event.name}\u0000${Number(event.all_owners) === 1 ? '*' : event.owner}`;
        let found = shared.get(key);
        if (!found) shared.set(key, (found = find(event)));
        subscriptions = await found;
      }
    } catch (error) {
      // A finder that throws would throw again on every poll: park the event with the reason.
      logger.error({ eventId: event.id, event: event.name, err: errorInfo(error) }, 'resthooks: finder failed; event marked undeliverable');
      await store.markEventFailed(event.id, `finder failed: ${errorInfo(error).message}`);
      continue;
    }
    items.push({ eventId: event.id, deliveries: subscriptions.map((s) => newDeliveryRow(event.id, s.id, now)) });
  }
  await store.commitFanOut(items);
  return events.length;
}
