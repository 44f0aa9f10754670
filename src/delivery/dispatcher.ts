/**
 * The dispatcher: fans out the outbox and claims due deliveries, as many as its queue takes, then
 * hands them over. It never sends. Each stage reads only what the stage before wrote to the store,
 * so a restart resumes wherever a crash left off.
 * @module
 */
import { loggedError, type Logger } from '../logger.js';
import type { DeliveryQueue } from '../queue/queue.js';
import type { KyselyStore } from '../store/kysely-store.js';
import type { FindSubscriptions } from '../triggers/triggers.js';
import { fanOutBatch, type FanOutDeps, type FanOutResult, type LookupRetryPolicy } from './fanout.js';

export interface DispatcherDeps {
  readonly store: KyselyStore;
  readonly queue: DeliveryQueue;
  /** The user's finder wrapped for the store's rows, when there is one. */
  readonly customFind: FindSubscriptions | undefined;
  /** How events whose subscription lookup failed are tried again. */
  readonly lookupRetry: LookupRetryPolicy;
  readonly pollIntervalMs: number;
  readonly logger: Logger;
  /** The recorder's waiting batch, for a one-statement fan-out pass to write in its own commit. */
  readonly recordsForPass?: FanOutDeps['recordsForPass'];
  /** Wraps each fan-out pass (metrics, tracing). */
  readonly observeFanOut?: (run: () => Promise<FanOutResult>) => Promise<FanOutResult>;
}

const FAN_OUT_BATCH = 500;
const CLAIM_BATCH = 256;
/**
 * After a fan-out pass that left the outbox non-empty, a room smaller than 1/this of the deliveries it handed
 * over waits for the queue to ask for more instead of getting a pass of its own. Not larger: a queue that
 * asks only now and then (BullMQ counts its backlog every 200 ms) must still be filled by the next pass.
 */
const REMAINDER_PASS_FRACTION = 4;
/** Failed passes wait the poll interval, doubled after each failure in a row, up to this (or the poll interval, if longer). */
const MAX_FAILURE_BACKOFF_MS = 10_000;
/**
 * A pass that makes fewer deliveries than this commits for few of them: the next one waits out the batch
 * window. One that makes more shares its commit well enough, and holding the next back would only let the
 * queue run dry.
 */
const TRICKLE_DELIVERIES = 16;
/** A slow pass holds the next one back at most this many batch windows. */
const MAX_WINDOW_STRETCH = 5;

export class Dispatcher {
  readonly #deps: DispatcherDeps;
  #running = false;
  #pumping = false;
  #again = false;
  #outboxWanted = true;
  #timer: NodeJS.Timeout | undefined;
  /** A pass asked for by `nudge()`, in this turn of the event loop. */
  #soon: NodeJS.Immediate | undefined;
  /** Deliveries per event in the last fan-out, so a batch reads about as many events as the queue has room for. */
  #deliveriesPerEvent = 1;
  /** Some event waits for another lookup try: the pass ends by asking when the first one is due. */
  #lookupRetriesWaiting = true;
  /** Passes failed in a row (the database down, most often): each waits twice as long as the one before. */
  #failedPasses = 0;
  #lastPassAt: number | undefined;
  /** Resolves when the pass running now ends; settled while none runs. */
  #passEnded: Promise<void> = Promise.resolve();
  /**
   * Until when a claim would find nothing, as far as this process can tell: its last claim found less
   * than it asked for, no write through the store has made a delivery due since (`store.dueWrites`),
   * no lease lapses before then, and another process's writes are looked for once per poll interval.
   * The fan-out hands its deliveries over claimed, so in steady state each pass saves a claim query.
   */
  #claimQuietUntil = 0;
  #dueWritesSeen = -1;
  /** When the last fan-out began and ended (performance.now()), and whether events trickle in: it left the outbox empty, having made few deliveries. */
  #lastFanOutAt = -Infinity;
  #lastFanOutEnd = -Infinity;
  #trickling = false;
  /** The last `store.nextDueAt()` read, and `store.dueWrites` when it was made. */
  #nextDue: { readonly at: number | null; readonly dueWrites: number } | undefined;
  /** The next pass, held back for more events to share its fan-out (`batchWindowMs`). */
  #windowTimer: NodeJS.Timeout | undefined;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    deps.queue.onCapacity(() => this.nudge(false));
  }

  /** Whether it is started (and not stopped). */
  get running(): boolean {
    return this.#running;
  }

  /**
   * When its last pass ended, succeeded or failed, or when it started if none has yet (ms since the
   * epoch): a loop that stops ticking is stuck.
   */
  get lastPassAt(): number | undefined {
    return this.#lastPassAt;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lastPassAt = Date.now();
    this.nudge();
  }

  /** New work may exist (an append, a freed slot): pump soon, coalescing bursts into one pass. */
  nudge(outbox = true): void {
    if (outbox) this.#outboxWanted = true;
    // Trigger-time deliveries become due at the host's commit, which only this wake-up announces.
    if (outbox && this.#deps.store.appendsDeliveries) this.#claimQuietUntil = 0;
    if (!this.#running) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumpSoon();
  }

  // setImmediate, not setTimeout(…, 0): a timer waits at least 1 ms, half of a 2 ms save-to-receive
  // budget. A burst of saves in one turn still shares the pass.
  #pumpSoon(): void {
    if (this.#soon || this.#windowTimer) return;
    if (this.#timer) clearTimeout(this.#timer);
    const hold = this.#windowHold();
    if (hold >= 1) {
      // Events trickle in (the last fan-out emptied the outbox): the next one waits out the window, so
      // that the events saved meanwhile share its statement and its commit.
      this.#timer = undefined;
      this.#windowTimer = setTimeout(() => {
        this.#windowTimer = undefined;
        void this.#pump();
      }, hold);
      return;
    }
    this.#timer = undefined;
    this.#soon = setImmediate(() => {
      this.#soon = undefined;
      void this.#pump();
    });
  }

  /** How long (ms) the next pass waits for more events to share its fan-out: 0 unless they trickle in. */
  #windowHold(): number {
    const window = this.#deps.store.dialect.capabilities.batchWindowMs ?? 0;
    if (window <= 0 || !this.#outboxWanted || !this.#trickling) return 0;
    // At least the window after the last pass began, and as long again as that pass took after it
    // ended (bounded): a pass is a commit, and while the disk is slow to flush, passes that follow each
    // other at once each find one event and make the saves wait behind their flushes.
    const took = Math.min(this.#lastFanOutEnd - this.#lastFanOutAt, MAX_WINDOW_STRETCH * window);
    return Math.max(this.#lastFanOutAt + window, this.#lastFanOutEnd + took) - performance.now();
  }

  async #pump(): Promise<void> {
    this.#timer = undefined;
    if (this.#pumping || !this.#running) return;
    this.#pumping = true;
    let endPass!: () => void;
    this.#passEnded = new Promise<void>((resolve) => (endPass = resolve));
    const { store, queue } = this.#deps;
    let wait = this.#deps.pollIntervalMs;
    try {
      do {
        this.#again = false;
        // Due deliveries first (retries, and what large fan-outs left): they have waited longest.
        let room = queue.capacity();
        const want = Math.min(room, CLAIM_BATCH);
        const now = Date.now();
        if (want > 0 && (now >= this.#claimQuietUntil || store.dueWrites !== this.#dueWritesSeen)) {
          const dueWrites = store.dueWrites;
          const claimed = await store.claimDue(want, now, now + queue.leaseMs);
          if (claimed.length > 0) await queue.enqueue(claimed);
          if (claimed.length === want) {
            this.#again = true;
            this.#claimQuietUntil = 0;
          } else {
            this.#dueWritesSeen = dueWrites;
            this.#claimQuietUntil = now + this.#deps.pollIntervalMs;
          }
          room -= claimed.length;
        }
        // Then new events, only as many as the queue has room for: their deliveries are created
        // claimed and handed over at once. The rest wait in the outbox, where waiting costs nothing.
        if (this.#outboxWanted && room > 0 && this.#running) {
          this.#outboxWanted = false;
          const limit = Math.min(FAN_OUT_BATCH, Math.ceil(room / this.#deliveriesPerEvent));
          const handoff = { capacity: room, leaseUntil: Date.now() + queue.leaseMs };
          this.#lastFanOutAt = performance.now();
          const fanOut = () => fanOutBatch(this.#deps, limit, handoff);
          const { taken, more, claimed, deferred } = await (this.#deps.observeFanOut?.(fanOut) ?? fanOut());
          this.#lastFanOutEnd = performance.now();
          if (taken > 0) this.#deliveriesPerEvent = Math.max(1, claimed.length / taken);
          if (deferred > 0) this.#lookupRetriesWaiting = true;
          if (claimed.length > 0) await queue.enqueue(claimed);
          this.#trickling = !more && taken > 0 && claimed.length < TRICKLE_DELIVERIES;
          if (more) {
            this.#outboxWanted = true;
            // Another pass at once unless the room left is a small remainder of what this one handed over:
            // a pass cut short by FAN_OUT_BATCH was followed by one for the few dozen slots left, a commit of
            // its own for few deliveries. The queue asks again (`onCapacity`) once it has room for a batch.
            if (this.#running && queue.capacity() > 0 && queue.capacity() * REMAINDER_PASS_FRACTION >= claimed.length) this.#again = true;
          }
        }
      } while (this.#again && this.#running && this.#windowHold() < 1);
      // Stopped while this pass awaited the store: the queue may be closed, and asking a closed queue
      // for capacity opens it again (BullMQ: a new Redis connection and worker that nothing closes).
      // Held for the batch window: the pass after it reads these.
      if (this.#running && !this.#again && queue.capacity() > 0) {
        const next = await this.#nextDueAt();
        if (next !== null) {
          wait = Math.max(0, Math.min(wait, next - Date.now()));
          this.#claimQuietUntil = Math.min(this.#claimQuietUntil, next);
        }
        if (this.#lookupRetriesWaiting) {
          const retry = await store.nextFanOutAt();
          this.#lookupRetriesWaiting = retry !== null;
          if (retry !== null) wait = Math.max(0, Math.min(wait, retry - Date.now()));
        }
      }
      this.#failedPasses = 0;
    } catch (error) {
      this.#failedPasses++;
      const { pollIntervalMs } = this.#deps;
      wait = Math.min(pollIntervalMs * 2 ** Math.min(this.#failedPasses - 1, 20), Math.max(pollIntervalMs, MAX_FAILURE_BACKOFF_MS));
      this.#again = false;
      this.#deps.logger.error({ err: loggedError(error), failedPasses: this.#failedPasses, retryInMs: wait }, 'resthooks: dispatcher pass failed; retrying after a pause');
    } finally {
      this.#pumping = false;
      this.#lastPassAt = Date.now();
      endPass();
    }
    if (!this.#running) return;
    if (this.#again) {
      // A nudge came during the pass's last reads (a save, a freed slot): the next pass now.
      this.#outboxWanted = true;
      this.#pumpSoon();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#outboxWanted = true; // events committed through a host transaction are found by polling
      this.#claimQuietUntil = 0; // and so are deliveries other processes made due
      this.#nextDue = undefined;
      void this.#pump();
    }, wait);
    this.#timer.unref();
  }

  /**
   * `store.nextDueAt()`, read again only once a write through the store may have made a delivery due
   * (`store.dueWrites`), the time read has come, or the poll interval has passed (other processes'
   * writes): in between it can only have moved later (claims and records push it on), and waking
   * early costs one claim query. Every pass read it, a round trip per pass while events trickle in.
   */
  async #nextDueAt(): Promise<number | null> {
    const { store } = this.#deps;
    const known = this.#nextDue;
    if (known && known.dueWrites === store.dueWrites && (known.at === null || known.at > Date.now())) return known.at;
    const dueWrites = store.dueWrites;
    const at = await store.nextDueAt();
    this.#nextDue = { at, dueWrites };
    return at;
  }

  /**
   * Resolves once the pass running now has ended (at once if none runs). After `stop()`, what that pass
   * claimed has then reached the queue, so closing the queue after it leaves no claim to a closed queue.
   */
  passEnded(): Promise<void> {
    return this.#passEnded;
  }

  /** Stops fanning out and claiming; what the queue holds is the queue's to finish. */
  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#soon) clearImmediate(this.#soon);
    this.#soon = undefined;
    if (this.#windowTimer) clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
  }
}
