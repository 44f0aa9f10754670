/**
 * A worker's attempt slots. The deliveries of the jobs a worker holds wait here for one of its
 * `slots` (`workerConcurrency`: attempts in flight, whatever the jobs), and start in the order of the
 * in-process queue's `FairShare`: owners in turn, each within its `ownerShare`, origins and
 * subscriptions within their caps. A delivery held back by its own owner, origin or subscription waits
 * for this worker's next free slot rather than going back to the store and through Redis again; only
 * when the worker holds all it may, those that waited past `STUCK_AFTER_MS` go back, so that other
 * owners' jobs can be taken.
 * @module
 */
import type { ClaimedDelivery } from '../../store/kysely-store.js';
import { FairShare, type WaitingClaim } from '../fair-share.js';
import { GiveBack, type DeliveryProcessor, type FairnessLimits, type ProcessedClaim } from '../queue.js';

/** What became of a delivery: processed, skipped (nothing to do), or dropped (the job no longer its worker's, see `Go`). */
export type SlotOutcome = ProcessedClaim | 'skipped' | 'dropped';

/**
 * Whether an attempt of a job may start now: `go`; `give back` (its job has held it too long);
 * `drop` (the worker stalled, and its job may have gone to another worker).
 */
export type Go = 'go' | 'give back' | 'drop';

export interface WorkerSlotsOptions {
  readonly slots: number;
  readonly fairness: FairnessLimits | undefined;
  readonly processor: DeliveryProcessor;
  /** The claim as it may be attempted now (its lease made to cover the attempt), or undefined: nothing to do. */
  readonly prepare: (claim: ClaimedDelivery, signal: AbortSignal) => Promise<ClaimedDelivery | undefined>;
  /** Whether this worker holds as many deliveries as it may: then those stuck behind their own caps go back. */
  readonly full: () => boolean;
}

/** How long a delivery held back by its own owner, origin or subscription waits, while the worker is full, before it goes back. */
const STUCK_AFTER_MS = 1000;
const STUCK_CHECK_MS = 250;
/** No caps, no shares. */
const UNLIMITED: FairnessLimits = { perOrigin: Infinity, perSubscription: Infinity, ownerShare: 1 };
const STUCK = AbortSignal.abort(new GiveBack('waited in a full worker behind its own owner, origin or subscription', STUCK_AFTER_MS));
const HELD_TOO_LONG = AbortSignal.abort(new GiveBack('its job held it too long to attempt it', 0));

interface Pending {
  readonly signal: AbortSignal;
  readonly go: () => Go;
  readonly resolve: (outcome: SlotOutcome) => void;
}

export class WorkerSlots {
  readonly #options: WorkerSlotsOptions;
  readonly #fairShare: FairShare;
  readonly #pending = new Map<ClaimedDelivery, Pending>();
  readonly #watched = new WeakSet<AbortSignal>();
  #inFlight = 0;
  #stuckCheck: NodeJS.Timeout | undefined;

  constructor(options: WorkerSlotsOptions) {
    this.#options = options;
    this.#fairShare = new FairShare(options.slots, options.fairness ?? UNLIMITED);
  }

  /** Attempts `claim` in its turn (or gives it back at `signal`'s abort, the shutdown deadline). */
  run(claim: ClaimedDelivery, signal: AbortSignal, go: () => Go): Promise<SlotOutcome> {
    if (!this.#watched.has(signal)) {
      this.#watched.add(signal);
      signal.addEventListener('abort', () => this.#giveBackAll(), { once: true });
    }
    return new Promise((resolve) => {
      this.#pending.set(claim, { signal, go, resolve });
      this.#fairShare.add(claim, Date.now());
      if (signal.aborted) this.#giveBackAll();
      else this.#startWaiting();
    });
  }

  #startWaiting(): void {
    while (this.#inFlight < this.#options.slots) {
      const entry = this.#fairShare.next();
      if (!entry) break;
      void this.#attempt(entry);
    }
    if (this.#fairShare.waiting > 0 && !this.#stuckCheck) {
      this.#stuckCheck = setTimeout(() => this.#giveBackStuck(), STUCK_CHECK_MS);
      this.#stuckCheck.unref();
    }
  }

  async #attempt(entry: WaitingClaim): Promise<void> {
    const pending = this.#take(entry.claim);
    this.#inFlight++;
    this.#fairShare.started(entry);
    let outcome: SlotOutcome = 'dropped';
    try {
      const go = pending.go();
      if (go === 'drop') return;
      if (go === 'give back') {
        outcome = (await this.#options.processor(entry.claim, HELD_TOO_LONG)) ?? 'given back';
        return;
      }
      const claim = await this.#options.prepare(entry.claim, pending.signal);
      if (!claim) {
        outcome = 'skipped';
        return;
      }
      // Asked again once the gate admits it: the gate's wait may have outlasted a stall or a lost Redis.
      let dropped = false;
      const stillMine = () => !(dropped = pending.go() === 'drop');
      const processed = await this.#options.processor(claim, pending.signal, stillMine);
      outcome = dropped ? 'dropped' : (processed ?? 'recorded');
    } finally {
      this.#inFlight--;
      this.#fairShare.finished(entry);
      pending.resolve(outcome);
      this.#startWaiting();
    }
  }

  /** Past the shutdown deadline: whatever still waits goes back now, whatever its caps. */
  #giveBackAll(): void {
    for (const entry of this.#fairShare.takeAll()) {
      const pending = this.#take(entry.claim);
      void this.#giveBack(entry.claim, pending, pending.signal);
    }
  }

  #giveBackStuck(): void {
    this.#stuckCheck = undefined;
    if (this.#fairShare.waiting === 0) return;
    if (this.#options.full()) {
      for (const entry of this.#fairShare.takeStuck(Date.now() - STUCK_AFTER_MS, this.#fairShare.waiting)) void this.#giveBack(entry.claim, this.#take(entry.claim), STUCK);
    }
    this.#startWaiting();
  }

  async #giveBack(claim: ClaimedDelivery, pending: Pending, signal: AbortSignal): Promise<void> {
    let outcome: SlotOutcome = 'dropped';
    try {
      outcome = (await this.#options.processor(claim, signal)) ?? 'given back';
    } finally {
      pending.resolve(outcome);
    }
  }

  #take(claim: ClaimedDelivery): Pending {
    const pending = this.#pending.get(claim)!;
    this.#pending.delete(claim);
    return pending;
  }
}
