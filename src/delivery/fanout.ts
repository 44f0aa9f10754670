/**
 * Fan-out: pending outbox events → one delivery row per matching subscription.
 * Reads only the outbox and the subscriptions; writes deliveries and marks the events done (a fresh
 * event is moved into the indexed table as it is), atomically.
 *
 * A lookup that fails never ends an event on the spot. The store's own subscription read (the
 * default lookup, also inside a custom finder's `defaultFind()`) is the database: it is retried until
 * it works. A custom finder is the app's code: after `attempts` failures of its own, its event is marked
 * undeliverable, logged at error level, and can be fanned out again with `hooks.outbox.retry`.
 * @module
 */
import type { Finder } from '../config/options.js';
import { newDeliveryRow } from '../store/rows.js';
import { storableText } from '../store/storable-text.js';
import { errorInfo, loggedError, type Logger } from '../logger.js';
import { claimEventOf, claimOf, claimSubscriptionOf, type ClaimedDelivery, type FanOutSetback, type FannedOutEvent, type KyselyStore, type PendingEvent, type RecordsForAPass } from '../store/kysely-store.js';
import { toStoredEvent, type Subscription } from '../store/records.js';
import type { DeliveryTable, EventTable, SubscriptionTable } from '../store/schema.js';
import type { FindSubscriptions } from '../triggers/triggers.js';

// An event's `error` is for the operator to read: the start of a long message says what went wrong.
const MAX_ERROR_BYTES = 2000;

/** How a failed subscription lookup is tried again (`finderRetry` resolved). */
export interface LookupRetryPolicy {
  /** Tries of a custom finder before its event is marked undeliverable. */
  readonly attempts: number;
  /** The wait after the first failure; it doubles after each one. */
  readonly delayMs: number;
  readonly maxDelayMs: number;
}

/**
 * The longest wait between tries of the store's own lookup, whatever `maxDelay` says: that lookup is
 * the database, and delivery should resume soon after the database does.
 */
export const STORE_LOOKUP_MAX_DELAY_MS = 30_000;

/** The wait before the next try after `tries` failed ones. */
export function lookupRetryDelay(policy: LookupRetryPolicy, tries: number, storeLookup: boolean): number {
  // A lookup may fail for days: past 2^30 the doubling means nothing (maxDelay has long applied).
  const delay = Math.min(policy.delayMs * 2 ** Math.min(tries - 1, 30), policy.maxDelayMs);
  return storeLookup ? Math.min(delay, STORE_LOOKUP_MAX_DELAY_MS) : delay;
}

/**
 * The store's subscription read failed: a database problem, not the finder's. Thrown by a custom
 * finder's lookup when its `defaultFind()` failed, whatever the finder made of that error.
 */
export class StoreLookupError extends Error {
  constructor(cause: unknown) {
    super(`subscription lookup failed: ${errorInfo(cause).message}`, { cause });
    this.name = 'StoreLookupError';
  }
}

/** The default lookup (active subscriptions of the event's owner, or of all owners), or the user's finder. */
export function subscriptionFinder(store: KyselyStore, finder: Finder | undefined): FindSubscriptions {
  const defaultFind = (event: EventTable) => store.activeSubscriptionsFor(event.name, ownerReached(event));
  if (!finder) {
    return async (event) => {
      try {
        return await defaultFind(event);
      } catch (error) {
        throw new StoreLookupError(error);
      }
    };
  }
  return async (event) => {
    let storeFailure: { error: unknown } | undefined;
    const context = {
      owner: ownerReached(event),
      allOwners: Number(event.all_owners) === 1,
      defaultFind: () =>
        defaultFind(event).catch((error: unknown) => {
          storeFailure ??= { error };
          throw error;
        }),
    };
    let found: readonly Subscription[];
    try {
      found = await finder(event.name, toStoredEvent(event), context);
    } catch (error) {
      throw storeFailure ? new StoreLookupError(storeFailure.error) : error;
    }
    if (!Array.isArray(found)) throw new TypeError(`The finder returned ${found === null ? 'null' : typeof found}, not an array of subscriptions.`);
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

export interface FanOutDeps {
  readonly store: KyselyStore;
  /** The user's finder; without one, subscriptions are read as rows (the default lookup). */
  readonly customFind: FindSubscriptions | undefined;
  readonly lookupRetry: LookupRetryPolicy;
  readonly logger: Logger;
  /** A record batch waiting to be written, for a one-statement pass to write with it (one commit for both). */
  readonly recordsForPass?: () => RecordsForAPass | undefined;
}

export interface FanOutResult {
  /** How many events it took from the outbox. */
  readonly taken: number;
  /** More events may be waiting (the batch was full, or it stopped once the queue's room was used). */
  readonly more: boolean;
  /** Deliveries it created already claimed (in flight, leased), ready for the queue. */
  readonly claimed: ClaimedDelivery[];
  /** Events whose lookup failed and that wait for a later try. */
  readonly deferred: number;
  /** The events it fanned out (for tracing: linked by event id). */
  readonly eventIds: readonly string[];
  /** Deliveries it inserted. */
  readonly created: number;
}

type Found = { readonly rows: readonly SubscriptionTable[] } | { readonly subscriptions: readonly Subscription[] };

/**
 * Fans out up to `limit` due events. With the default finder, events of the same (name, owner)
 * in one batch share one subscription query, and while the queue has room (`handoff.capacity`) every
 * new delivery is created claimed, so the dispatcher hands it over without reading it back. Once the
 * room is used up it stops at the next event boundary (an event's deliveries are all created
 * together), overshooting the room by less than one event's subscriptions.
 *
 * Each event is judged on its own: a failed lookup sets back only the events it was for (for a
 * shared query, the events of that (name, owner) in this pass), and is written with the rest.
 */
export async function fanOutBatch({ store, customFind, lookupRetry, logger, recordsForPass }: FanOutDeps, limit: number, handoff: FanOutHandoff): Promise<FanOutResult> {
  const now = Date.now();
  if (!customFind && store.dialect.capabilities.fansOutInOneStatement === true) {
    try {
      const { more, events, claimed } = await store.fanOutPass(limit, now, handoff, recordsForPass);
      return { taken: events.length, more, claimed, deferred: 0, eventIds: events.map((e) => e.id), created: claimed.length };
    } catch (error) {
      // The pass below, step by step, tells a failed lookup from a failed outbox read and sets back
      // only the events concerned; a database that is down fails it too.
      if (!store.dialect.isUnavailable(error)) logger.warn({ err: loggedError(error) }, 'resthooks: the one-statement fan-out failed; fanning out step by step');
    }
  }
  const events = await store.pendingEvents(limit, now);
  if (events.length === 0) return { taken: 0, more: false, claimed: [], deferred: 0, eventIds: [], created: 0 };
  const shared = new Map<string, Promise<readonly SubscriptionTable[]>>();
  // A shared query that failed is logged once, not once per event that shared it.
  const loggedFailures = new Set<string>();
  const items: FannedOutEvent[] = [];
  const setbacks: FanOutSetback[] = [];
  const claims: ClaimedDelivery[] = [];
  // A custom finder returns subscriptions, not rows: its deliveries are claimed by the next pass.
  const handingOff = !customFind;
  const claimSubscriptions = new Map<SubscriptionTable, ClaimedDelivery['subscription']>();
  let taken = 0;
  for (const event of events) {
    if (handingOff && claims.length >= handoff.capacity) break;
    taken++;
    const key = customFind ? event.id : `${event.name}\u0000${ownerReached(event) ?? '*'}`;
    let found: Found;
    try {
      if (customFind) found = { subscriptions: await customFind(event) };
      else {
        let rows = shared.get(key);
        if (!rows) shared.set(key, (rows = store.activeSubscriptionRowsFor(event.name, ownerReached(event))));
        found = {
          rows: await rows.catch((error: unknown) => {
            throw new StoreLookupError(error);
          }),
        };
      }
    } catch (error) {
      setbacks.push(setbackOf(event, error, now, lookupRetry, logger, loggedFailures.has(key)));
      loggedFailures.add(key);
      continue;
    }
    const deliveries: DeliveryTable[] = [];
    // Only subscriptions that existed when the event happened: one made since (the fan-out runs
    // later) did not ask for the past.
    const createdAt = Number(event.created_at);
    if ('rows' in found) {
      // One event part for all of its claims, one subscription part per row for the whole batch.
      const claimEvent = handingOff ? claimEventOf(event) : undefined;
      for (const row of found.rows) {
        if (Number(row.created_at) > createdAt) continue;
        const delivery = newDeliveryRow(event.id, row.id, now);
        if (claimEvent) {
          delivery.status = 'in_flight';
          delivery.due_at = handoff.leaseUntil;
          let claimSubscription = claimSubscriptions.get(row);
          if (!claimSubscription) claimSubscriptions.set(row, (claimSubscription = claimSubscriptionOf(row)));
          claims.push(claimOf(delivery, claimEvent, claimSubscription));
        }
        deliveries.push(delivery);
      }
    } else {
      for (const subscription of found.subscriptions) {
        if (subscription.createdAt.getTime() <= createdAt) deliveries.push(newDeliveryRow(event.id, subscription.id, now));
      }
    }
    items.push({ eventId: event.id, seq: event.seq, deliveries });
  }
  const inserted = await store.commitFanOut(items, setbacks);
  return {
    taken,
    more: taken < events.length || events.length === limit,
    claimed: claims.filter((claim) => inserted.has(claim.id)),
    deferred: setbacks.filter((s) => s.retryAt !== null).length,
    eventIds: items.map((item) => item.eventId),
    created: inserted.size,
  };
}

/**
 * What a failed lookup does to its event: try again later, or (a custom finder out of tries) give up.
 * A retry is not logged again when `logged` (a shared query's failure, logged for its first event).
 */
function setbackOf(event: PendingEvent, error: unknown, now: number, policy: LookupRetryPolicy, logger: Logger, logged: boolean): FanOutSetback {
  const tries = Number(event.fanout_attempts) + 1;
  const ids = { eventId: event.id, event: event.name, owner: event.owner };
  if (error instanceof StoreLookupError) {
    const delay = lookupRetryDelay(policy, tries, true);
    if (!logged) logger.warn({ ...ids, attempt: tries, retryInMs: delay, err: loggedError(error.cause) }, 'resthooks: subscription lookup failed (database); the event stays pending and is tried again');
    const text = storableText(`${error.message} (try ${tries})`, MAX_ERROR_BYTES);
    return { eventId: event.id, seq: event.seq, attempts: tries, finderFailures: Number(event.finder_failures), error: text, retryAt: now + delay };
  }
  const failures = Number(event.finder_failures) + 1;
  const message = errorInfo(error).message;
  if (failures >= policy.attempts) {
    logger.error(
      { ...ids, attempts: tries, finderFailures: failures, err: error instanceof Error ? error : errorInfo(error) },
      'resthooks: the finder kept failing; event marked undeliverable (fan it out again with hooks.outbox.retry once the finder works)',
    );
    const text = storableText(`finder failed ${failures} times; last error: ${message}`, MAX_ERROR_BYTES);
    return { eventId: event.id, seq: event.seq, attempts: tries, finderFailures: failures, error: text, retryAt: null };
  }
  const delay = lookupRetryDelay(policy, tries, false);
  logger.warn({ ...ids, attempt: failures, of: policy.attempts, retryInMs: delay, err: loggedError(error) }, 'resthooks: finder failed; the event stays pending and is tried again');
  const text = storableText(`finder failed (try ${failures} of ${policy.attempts}): ${message}`, MAX_ERROR_BYTES);
  return { eventId: event.id, seq: event.seq, attempts: tries, finderFailures: failures, error: text, retryAt: now + delay };
}
