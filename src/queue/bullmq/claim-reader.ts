/**
 * Coalesces the claim reads of jobs that start together into one store query. A BullMQ worker starts
 * jobs as Redis hands them over, often several in one turn of the event loop (one socket read holds
 * several replies); each job still gets its own claims, or `undefined` for each one gone.
 *
 * A claim read again for a subscription whose row reads the same as last time carries the subscription
 * part of that last read. What is made once per subscription part (the envelope's `hook` member, see
 * `hookJson`) is then made once per subscription, as with the in-process queue, whose claims share the
 * parts of a whole fan-out pass: a job holds one delivery per subscription of an event, so within one
 * read no two claims share a subscription.
 * @module
 */
import type { ClaimedDelivery } from '../../store/kysely-store.js';

/** A job's read: its ids, and where its claims go (in the ids' order, undefined where gone). */
interface Waiter {
  readonly ids: readonly string[];
  readonly resolve: (claims: Array<ClaimedDelivery | undefined>) => void;
  readonly reject: (error: unknown) => void;
}

type SubscriptionPart = NonNullable<ClaimedDelivery['subscription']>;

/** Subscription parts kept for reuse, at most; past it they are forgotten and made anew. */
const KEPT_SUBSCRIPTIONS = 10_000;

export class ClaimReader {
  readonly #load: (ids: readonly string[]) => Promise<ClaimedDelivery[]>;
  #waiting: Waiter[] = [];
  /** The subscription part last read for each subscription id. */
  readonly #subscriptions = new Map<string, SubscriptionPart>();

  constructor(load: (ids: readonly string[]) => Promise<ClaimedDelivery[]>) {
    this.#load = load;
  }

  async read(id: string): Promise<ClaimedDelivery | undefined> {
    return (await this.readAll([id]))[0];
  }

  /** A job's claims, in the order of `ids` (undefined where gone): one promise per job, not per delivery. */
  readAll(ids: readonly string[]): Promise<Array<ClaimedDelivery | undefined>> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ ids, resolve, reject });
      // After the I/O callbacks of this turn: the jobs started by the same socket read join in.
      if (this.#waiting.length === 1) setImmediate(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const waiting = this.#waiting;
    this.#waiting = [];
    try {
      const ids = new Set<string>();
      for (const waiter of waiting) for (const id of waiter.ids) ids.add(id);
      // Per part read: the claims of one read share their subscription's part (the store makes one per subscription).
      const parts = new Map<SubscriptionPart, SubscriptionPart>();
      const claims = new Map((await this.#load([...ids])).map((claim) => [claim.id, this.#withKnownSubscription(claim, parts)]));
      for (const waiter of waiting) waiter.resolve(waiter.ids.map((id) => claims.get(id)));
    } catch (error) {
      for (const waiter of waiting) waiter.reject(error);
    }
  }

  /** The claim with the subscription part of the last read, if its subscription reads the same. */
  #withKnownSubscription(claim: ClaimedDelivery, parts: Map<SubscriptionPart, SubscriptionPart>): ClaimedDelivery {
    const read = claim.subscription;
    if (!read) return claim;
    let part = parts.get(read);
    if (part === undefined) parts.set(read, (part = this.#knownPart(read)));
    return part === read ? claim : { ...claim, subscription: part };
  }

  /** The part last read for this subscription if it reads the same, else `read` (kept for the next reads). */
  #knownPart(read: SubscriptionPart): SubscriptionPart {
    const known = this.#subscriptions.get(read.id);
    if (known !== undefined && sameFields(known, read)) return known;
    if (known === undefined && this.#subscriptions.size >= KEPT_SUBSCRIPTIONS) this.#subscriptions.clear();
    this.#subscriptions.set(read.id, read);
    return read;
  }
}

/** Whether two parts read alike: the same fields, every value identical (they hold strings, numbers, booleans and nulls). */
function sameFields(a: SubscriptionPart, b: SubscriptionPart): boolean {
  const keys = Object.keys(a) as Array<keyof SubscriptionPart>;
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}
