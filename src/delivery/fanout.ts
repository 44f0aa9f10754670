/**
 * Fan-out: pending outbox events → one delivery row per matching subscription.
 * Reads only the outbox and the subscriptions; writes deliveries and marks the events done, atomically.
 * @module
 */
import type { Finder } from '../config/options.js';
import { newDeliveryRow } from '../store/rows.js';
import { errorInfo, type Logger } from '../logger.js';
import { claimOf, type ClaimedDelivery, type KyselyStore } from '../store/kysely-store.js';
import { toStoredEvent, type Subscription } from '../store/records.js';
import type { DeliveryTable, EventTable, SubscriptionTable } from '../store/schema.js';
import type { FindSubscriptions } from '../triggers/triggers.js';

/** The default lookup (active subscriptions of the event's owner, or of all owners), or the user's finder. */
export function subscriptionFinder(store: KyselyStore, finder: Finder | undefined): FindSubscriptions {
  const defaultFind = (event: EventTable) => store.activeSubscriptionsFor(event.name, ownerReached(event));
  if (!finder) return defaultFind;
  return async (event) => {
    const found = await finder(event.name, toStoredEvent(event), { owner: ownerReached(event), allOwners: Number(event.all_owners) === 1, defaultFind: () => defaultFind(event) });
    return found.filter((s) => s.active);
  };
}

/** Whose subscriptions an event reaches: its owner's, or `null` for every owner's. */
function ownerReached(event: Pick<EventTable, 'owner' | 'all_owners'>): string | null {
  return Number(event.all_owners) === 1 ? null : event.owner;
}

/** Deliveries the fan-out may claim at once for the caller's queue, skipping a separate claim query. */
export interface FanOutHandoff {
  readonly capacity: number;
  readonly leaseUntil: number;
}

export interface FanOutResult {
  /** How many events it took from the outbox. */
  readonly taken: number;
  /** More events may be waiting (the batch was full, or it stopped once the queue's room was used). */
  readonly more: boolean;
  /** Deliveries it created already claimed (in flight, leased), ready for the queue. */
  readonly claimed: ClaimedDelivery[];
}

type Found = { readonly rows: readonly SubscriptionTable[] } | { readonly subscriptions: readonly Subscription[] };

/**
 * Fans out up to `limit` pending events. With the default finder, events of the same (name, owner)
 * in one batch share one subscription query, and while the queue has room (`handoff.capacity`) every
 * new delivery is created claimed, so the dispatcher hands it over without reading it back. Once the
 * room is used up it stops at the next event boundary (an event's deliveries are all created
 * together), overshooting the room by less than one event's subscriptions.
 */
export async function fanOutBatch(
  store: KyselyStore,
  /** The user's finder; without one, subscriptions are read as rows (the default lookup). */
  customFind: FindSubscriptions | undefined,
  limit: number,
  logger: Logger,
  handoff: FanOutHandoff,
): Promise<FanOutResult> {
  const events = await store.pendingEvents(limit);
  if (events.length === 0) return { taken: 0, more: false, claimed: [] };
  const now = Date.now();
  const shared = new Map<string, Promise<readonly SubscriptionTable[]>>();
  const items: Array<{ eventId: string; deliveries: DeliveryTable[] }> = [];
  const claims: ClaimedDelivery[] = [];
  // A custom finder returns subscriptions, not rows: its deliveries are claimed by the next pass.
  const handingOff = !customFind;
  let taken = 0;
  for (const event of events) {
    if (handingOff && claims.length >= handoff.capacity) break;
    taken++;
    let found: Found;
    try {
      if (customFind) found = { subscriptions: await customFind(event) };
      else {
        const owner = ownerReached(event);
        const key = `${event.name}\u0000${owner ?? '*'}`;
        let rows = shared.get(key);
        if (!rows) shared.set(key, (rows = store.activeSubscriptionRowsFor(event.name, owner)));
        found = { rows: await rows };
      }
    } catch (error) {
      // A finder that throws would throw again on every poll: park the event with the reason.
      logger.error({ eventId: event.id, event: event.name, err: errorInfo(error) }, 'resthooks: finder failed; event marked undeliverable');
      await store.markEventFailed(event.id, `finder failed: ${errorInfo(error).message}`);
      continue;
    }
    const deliveries: DeliveryTable[] = [];
    // Only subscriptions that existed when the event happened: one made since (the fan-out runs
    // later) did not ask for the past.
    const createdAt = Number(event.created_at);
    if ('rows' in found) {
      for (const row of found.rows) {
        if (Number(row.created_at) > createdAt) continue;
        const delivery = newDeliveryRow(event.id, row.id, now);
        if (handingOff) {
          delivery.status = 'in_flight';
          delivery.due_at = handoff.leaseUntil;
          claims.push(claimOf(delivery, event, row));
        }
        deliveries.push(delivery);
      }
    } else {
      for (const subscription of found.subscriptions) {
        if (subscription.createdAt.getTime() <= createdAt) deliveries.push(newDeliveryRow(event.id, subscription.id, now));
      }
    }
    items.push({ eventId: event.id, deliveries });
  }
  const inserted = await store.commitFanOut(items);
  return { taken, more: taken < events.length || events.length === limit, claimed: claims.filter((claim) => inserted.has(claim.id)) };
}
