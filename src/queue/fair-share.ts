/**
 * Which waiting claim the in-process queue starts next, so that one owner's slow or hanging receivers
 * cannot hold every slot: owners take turns (round-robin), an owner holds at most `ownerShare` of the
 * slots other owners leave free, and an origin or a subscription at its cap waits while others go.
 * @module
 */
import type { ClaimedDelivery } from '../store/kysely-store.js';
import type { FairnessLimits } from './queue.js';
import { originOf } from '../delivery/origins.js';

/** A claim waiting for a slot. */
export interface WaitingClaim {
  readonly claim: ClaimedDelivery;
  readonly line: OwnerLine;
  /** Its receiver's origin; '' when it has none (a deleted subscription: nothing will be sent). */
  readonly origin: string;
  /** When it began to wait (ms). */
  readonly since: number;
}

/**
 * Claims in arrival order, taken mostly from the front. An array with a moving head: `Array#shift` on a
 * line of thousands (one event fanned out to 10,000 subscriptions) copies the rest of the line on every
 * call, and that copying cost more than the attempts themselves.
 */
class ClaimLine {
  #items: WaitingClaim[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(entry: WaitingClaim): void {
    this.#items.push(entry);
  }

  /** The `index`-th claim from the front. */
  at(index: number): WaitingClaim {
    return this.#items[this.#head + index]!;
  }

  /** Takes out the `index`-th claim from the front. */
  take(index: number): WaitingClaim {
    if (index > 0) return this.#items.splice(this.#head + index, 1)[0]!;
    const entry = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as unknown as WaitingClaim; // let it go
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  /** Takes out every claim. */
  takeAll(): WaitingClaim[] {
    const all = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return all;
  }
}

/** One owner's waiting claims, oldest first, and how many of its attempts are in flight. */
interface OwnerLine {
  readonly owner: string;
  readonly claims: ClaimLine;
  inFlight: number;
  /** Whether it is in the round-robin (it has claims waiting). */
  queued: boolean;
}

/**
 * How deep into one owner's line a claim is looked for when the first ones wait for their origin or
 * subscription: bounded, so a long line of blocked claims costs little per slot freed.
 */
const SCAN_DEPTH = 32;

export class FairShare {
  readonly #limits: FairnessLimits;
  readonly #concurrency: number;
  readonly #lines = new Map<string, OwnerLine>();
  /** Owners with claims waiting, in turn order. */
  #turns: OwnerLine[] = [];
  /** Owners that had nothing waiting, in arrival order: they go first, the others have had their turns meanwhile. */
  #newcomers: OwnerLine[] = [];
  readonly #originInFlight = new Map<string, number>();
  readonly #subscriptionInFlight = new Map<string, number>();
  #inFlight = 0;
  #waiting = 0;

  /**
   * Whether attempts in flight are counted per origin and per subscription: a cap as large as the
   * concurrency never holds a claim back (fewer slots than that are ever taken while one is free), so
   * with such a cap the two map updates per attempt and per end are skipped.
   */
  readonly #countsOrigins: boolean;
  readonly #countsSubscriptions: boolean;

  constructor(concurrency: number, limits: FairnessLimits) {
    this.#concurrency = concurrency;
    this.#limits = limits;
    this.#countsOrigins = limits.perOrigin < concurrency;
    this.#countsSubscriptions = limits.perSubscription < concurrency;
  }

  get waiting(): number {
    return this.#waiting;
  }

  add(claim: ClaimedDelivery, now: number): void {
    const owner = claim.subscription?.owner ?? '';
    let line = this.#lines.get(owner);
    if (!line) this.#lines.set(owner, (line = { owner, claims: new ClaimLine(), inFlight: 0, queued: false }));
    line.claims.push({ claim, line, origin: claim.subscription ? originOf(claim.subscription.target) : '', since: now });
    this.#waiting++;
    if (!line.queued) {
      line.queued = true;
      this.#newcomers.push(line);
    }
  }

  /**
   * Takes the next claim to start, by turns over owners, or undefined when every waiting claim waits
   * for its owner's share, its origin or its subscription. The caller keeps to `concurrency`.
   */
  next(): WaitingClaim | undefined {
    if (this.#newcomers.length > 0) {
      this.#turns = this.#newcomers.concat(this.#turns);
      this.#newcomers = [];
    }
    const turns = this.#turns;
    for (let looked = 0; looked < turns.length; looked++) {
      const line = turns.shift()!;
      const index = this.#startableIndex(line);
      if (index < 0) {
        turns.push(line);
        continue;
      }
      const entry = line.claims.take(index);
      this.#waiting--;
      if (line.claims.length > 0) turns.push(line);
      else line.queued = false;
      return entry;
    }
    return undefined;
  }

  started(entry: WaitingClaim): void {
    this.#inFlight++;
    entry.line.inFlight++;
    if (this.#countsOrigins && entry.origin !== '') this.#originInFlight.set(entry.origin, (this.#originInFlight.get(entry.origin) ?? 0) + 1);
    if (this.#countsSubscriptions) {
      const subscription = entry.claim.subscriptionId;
      this.#subscriptionInFlight.set(subscription, (this.#subscriptionInFlight.get(subscription) ?? 0) + 1);
    }
  }

  finished(entry: WaitingClaim): void {
    this.#inFlight--;
    const line = entry.line;
    if (--line.inFlight === 0 && line.claims.length === 0) this.#lines.delete(line.owner);
    if (this.#countsOrigins && entry.origin !== '') decrement(this.#originInFlight, entry.origin);
    if (this.#countsSubscriptions) decrement(this.#subscriptionInFlight, entry.claim.subscriptionId);
  }

  /**
   * Takes out claims that have waited since `before` or longer and still cannot start because of their own
   * owner, origin or subscription (not merely for want of a free slot), fullest owners first and newest
   * claims first, until `count` are taken.
   */
  takeStuck(before: number, count: number): WaitingClaim[] {
    const taken: WaitingClaim[] = [];
    // Nothing at a binding limit: every claim merely waits for a slot, and the line need not be read.
    if (!this.#anyLimitBinds()) return taken;
    const lines = [...this.#lines.values()].filter((line) => line.claims.length > 0).sort((a, b) => b.claims.length - a.claims.length);
    for (const line of lines) {
      for (let i = line.claims.length - 1; i >= 0 && taken.length < count; i--) {
        const entry = line.claims.at(i);
        if (entry.since <= before && this.#blocked(entry)) taken.push(line.claims.take(i));
      }
      this.#afterRemoval(line);
      if (taken.length >= count) break;
    }
    this.#waiting -= taken.length;
    return taken;
  }

  /** Takes out every waiting claim (shutdown). */
  takeAll(): WaitingClaim[] {
    const taken: WaitingClaim[] = [];
    for (const line of this.#lines.values()) {
      taken.push(...line.claims.takeAll());
      this.#afterRemoval(line);
    }
    this.#waiting = 0;
    return taken;
  }

  /** The most attempts `line`'s owner may have in flight now. */
  #ownerLimit(line: OwnerLine): number {
    const share = this.#limits.ownerShare;
    if (share >= 1) return this.#concurrency;
    return Math.max(1, Math.floor(share * (this.#concurrency - (this.#inFlight - line.inFlight))));
  }

  #startableIndex(line: OwnerLine): number {
    if (line.inFlight >= this.#ownerLimit(line)) return -1;
    const depth = Math.min(line.claims.length, SCAN_DEPTH);
    for (let i = 0; i < depth; i++) {
      if (this.#laneFree(line.claims.at(i))) return i;
    }
    return -1;
  }

  #laneFree(entry: WaitingClaim): boolean {
    return (
      (!this.#countsOrigins || entry.origin === '' || (this.#originInFlight.get(entry.origin) ?? 0) < this.#limits.perOrigin) &&
      (!this.#countsSubscriptions || (this.#subscriptionInFlight.get(entry.claim.subscriptionId) ?? 0) < this.#limits.perSubscription)
    );
  }

  /**
   * Whether a claim waits for its own owner's share, origin or subscription. A limit as large as the
   * concurrency is only reached when every slot is taken: a claim behind it waits for a slot, as any
   * other does (one owner's fan-out to one origin with `connectionsPerOrigin` = `concurrency`).
   */
  #blocked(entry: WaitingClaim): boolean {
    const concurrency = this.#concurrency;
    return (
      binds(entry.line.inFlight, this.#ownerLimit(entry.line), concurrency) ||
      (entry.origin !== '' && binds(this.#originInFlight.get(entry.origin) ?? 0, this.#limits.perOrigin, concurrency)) ||
      binds(this.#subscriptionInFlight.get(entry.claim.subscriptionId) ?? 0, this.#limits.perSubscription, concurrency)
    );
  }

  /**
   * Whether some owner, origin or subscription is at a limit that binds (see `#blocked`): only then can a
   * waiting claim be blocked. Looks at what is in flight (at most `concurrency` of each), not at the line.
   */
  #anyLimitBinds(): boolean {
    const concurrency = this.#concurrency;
    for (const line of this.#lines.values()) if (line.inFlight > 0 && binds(line.inFlight, this.#ownerLimit(line), concurrency)) return true;
    for (const inFlight of this.#originInFlight.values()) if (binds(inFlight, this.#limits.perOrigin, concurrency)) return true;
    for (const inFlight of this.#subscriptionInFlight.values()) if (binds(inFlight, this.#limits.perSubscription, concurrency)) return true;
    return false;
  }

  #afterRemoval(line: OwnerLine): void {
    if (line.claims.length > 0 || !line.queued) return;
    line.queued = false;
    this.#turns = this.#turns.filter((queued) => queued !== line);
    this.#newcomers = this.#newcomers.filter((queued) => queued !== line);
    if (line.inFlight === 0) this.#lines.delete(line.owner);
  }
}

/** A limit as large as the concurrency only binds when every slot is taken: then a claim waits for a slot, not for the limit. */
function binds(inFlight: number, limit: number, concurrency: number): boolean {
  return limit < concurrency && inFlight >= limit;
}

function decrement(counts: Map<string, number>, key: string): void {
  const count = counts.get(key)! - 1;
  if (count === 0) counts.delete(key);
  else counts.set(key, count);
}
