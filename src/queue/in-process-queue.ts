import type { ClaimedDelivery } from '../store/kysely-store.js';
import { FairShare, type WaitingClaim } from './fair-share.js';
import { GiveBack, type DeliveryProcessor, type DeliveryQueue, type FairnessLimits, type QueueFactory } from './queue.js';

/**
 * The embedded engine: runs the processor in this process, at most `concurrency` at a time, and
 * holds up to `CLAIMS_PER_SLOT × concurrency` claims (running, waiting or being given back). It asks for more only once half of
 * that is free, so each fan-out or claim is one transaction of at least `CLAIMS_PER_SLOT / 2 × concurrency`
 * deliveries: with many subscribers per event, a small transaction rewrites a page of the
 * per-subscription index for nearly every delivery, a larger one shares each page among several
 * (16 rather than 4 claims per slot: ~13% more deliveries/s for N=100 × K=100 in interleaved runs here;
 * measured before SQLite's fan-out stopped writing that index, migration 0008, as PostgreSQL's still does).
 * Its claims are leased for the attempt timeout plus a margin: only a dead process lets one lapse.
 * A claim that waited so long in the queue that its lease could lapse during its attempt is given
 * back unattempted instead (slow receivers ahead of it), and claimed afresh by the next pass.
 *
 * Which waiting claim starts next is `FairShare`'s choice (owners in turn, each owner within its share,
 * origins and subscriptions within their caps). Claims that cannot start for their own owner's,
 * origin's or subscription's sake must not fill the queue, or the dispatcher would stop claiming
 * other owners' work: once the queue holds more than half of what it may, those that have waited
 * `STUCK_AFTER_MS` are given back unattempted, due again one attempt timeout later (by then the
 * attempts they wait behind have ended, one way or the other).
 */
export const CLAIMS_PER_SLOT = 16;

/** The time an attempt must have left on its lease to start: its timeout, and this for the record. */
const LEASE_MARGIN_MS = 5_000;
// The signal a given-back claim is processed with: the attempt runner hands an aborted claim back unattempted.
const GIVE_BACK = AbortSignal.abort(new Error('lease too short for an attempt'));
/** How long a claim that cannot start for its owner's, origin's or subscription's sake may wait while the queue is full. */
export const STUCK_AFTER_MS = 1_000;
/** How often a queue holding waiting claims looks for stuck ones. */
const STUCK_CHECK_MS = 250;
/** No caps, no shares: every claim starts in arrival order (what a queue built without limits does). */
const UNLIMITED: FairnessLimits = { perOrigin: Infinity, perSubscription: Infinity, ownerShare: 1 };

export interface InProcessQueueOptions {
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly timeoutMs: number;
  readonly fairness?: FairnessLimits;
}

export class InProcessQueue implements DeliveryQueue {
  readonly leaseMs: number;
  readonly #processor: DeliveryProcessor;
  readonly #concurrency: number;
  readonly #timeoutMs: number;
  readonly #fairShare: FairShare;
  /** Given back while waiting: stuck behind their own owner's or receiver's slow attempts. */
  readonly #stuck: AbortSignal;
  #shutdown = new AbortController();
  #inFlight = 0;
  /** Claims handed back to the processor unattempted, not yet recorded. */
  #givingBack = 0;
  #stuckCheck: NodeJS.Timeout | undefined;
  #listener: () => void = () => {};
  #idle: Array<() => void> = [];

  constructor(processor: DeliveryProcessor, options: InProcessQueueOptions) {
    this.#processor = processor;
    this.#concurrency = options.concurrency;
    this.leaseMs = options.leaseMs;
    this.#timeoutMs = options.timeoutMs;
    this.#fairShare = new FairShare(options.concurrency, options.fairness ?? UNLIMITED);
    this.#stuck = AbortSignal.abort(new GiveBack('waited behind its own owner or receiver', options.timeoutMs));
  }

  /** Claims this process may still take: a claim being given back holds its lease until its release is recorded. */
  capacity(): number {
    return CLAIMS_PER_SLOT * this.#concurrency - this.#inFlight - this.#fairShare.waiting - this.#givingBack;
  }

  async enqueue(deliveries: readonly ClaimedDelivery[]): Promise<void> {
    const now = Date.now();
    for (const delivery of deliveries) this.#fairShare.add(delivery, now);
    this.#startWaiting();
  }

  #startWaiting(): void {
    if (this.#shutdown.signal.aborted) {
      // Past the shutdown deadline: whatever still waits goes back now, whatever its caps.
      for (const entry of this.#fairShare.takeAll()) void this.#giveBack(entry, this.#shutdown.signal);
      return;
    }
    while (this.#inFlight < this.#concurrency) {
      const entry = this.#fairShare.next();
      if (!entry) break;
      const leaseCoversAttempt = entry.claim.leaseUntil - Date.now() >= this.#timeoutMs + LEASE_MARGIN_MS;
      void this.#process(entry, leaseCoversAttempt ? this.#shutdown.signal : GIVE_BACK);
    }
    if (this.#fairShare.waiting > 0 && !this.#stuckCheck) {
      this.#stuckCheck = setTimeout(() => this.#giveBackStuck(), STUCK_CHECK_MS);
      this.#stuckCheck.unref();
    }
  }

  onCapacity(listener: () => void): void {
    this.#listener = listener;
  }

  async #process(entry: WaitingClaim, signal: AbortSignal): Promise<void> {
    this.#inFlight++;
    this.#fairShare.started(entry);
    try {
      await this.#processor(entry.claim, signal);
    } finally {
      this.#inFlight--;
      this.#fairShare.finished(entry);
      this.#startWaiting();
      this.#settle();
      // Ask for more only once a good batch fits: one claim per freed slot would cost a query each.
      if (this.#roomForBatch()) this.#listener();
    }
  }

  /** Hands a waiting claim back to the processor with an aborted signal: released unattempted. */
  async #giveBack(entry: WaitingClaim, signal: AbortSignal): Promise<void> {
    this.#givingBack++;
    try {
      await this.#processor(entry.claim, signal);
    } finally {
      this.#givingBack--;
      this.#settle();
      if (this.#roomForBatch()) this.#listener();
    }
  }

  #giveBackStuck(): void {
    this.#stuckCheck = undefined;
    if (this.#fairShare.waiting === 0) return;
    // Only while the dispatcher is held back: otherwise the queue still takes other owners' work.
    if (!this.#roomForBatch()) {
      // Releases still being recorded make room too, once they are: not given back twice over.
      const wanted = (CLAIMS_PER_SLOT / 2) * this.#concurrency - this.capacity() - this.#givingBack;
      const stuck = this.#fairShare.takeStuck(Date.now() - STUCK_AFTER_MS, wanted);
      // The dispatcher is asked for more once their releases are recorded (#giveBack).
      for (const entry of stuck) void this.#giveBack(entry, this.#stuck);
    }
    this.#startWaiting();
  }

  #roomForBatch(): boolean {
    return this.capacity() >= (CLAIMS_PER_SLOT / 2) * this.#concurrency;
  }

  #settle(): void {
    if (this.#inFlight === 0 && this.#givingBack === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async settled(): Promise<void> {
    if (this.#inFlight > 0 || this.#givingBack > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async close(timeoutMs: number): Promise<void> {
    const deadline = setTimeout(() => {
      this.#shutdown.abort(new Error('shutdown deadline'));
      this.#startWaiting();
    }, timeoutMs);
    try {
      await this.settled();
    } finally {
      clearTimeout(deadline);
      clearTimeout(this.#stuckCheck);
      this.#stuckCheck = undefined;
      // Ready for a later start(): the aborted signal belonged to this shutdown only.
      if (this.#shutdown.signal.aborted) this.#shutdown = new AbortController();
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }
}

/** The default engine: attempts run in this process. */
export const inProcessQueue: QueueFactory = ({ processor, concurrency, timeoutMs, fairness }) =>
  // A claim outlives its attempt comfortably: only a dead process lets it lapse.
  new InProcessQueue(processor, { concurrency, leaseMs: timeoutMs + 60_000, timeoutMs, fairness });
