/**
 * The dispatcher: fans out the outbox and claims due deliveries, as many as its queue takes, then
 * hands them over. It never sends. Each stage reads only what the stage before wrote to the store,
 * so a restart resumes wherever a crash left off.
 * @module
 */
import { errorInfo, type Logger } from '../logger.js';
import type { DeliveryQueue } from '../queue/queue.js';
import type { KyselyStore } from '../store/kysely-store.js';
import type { FindSubscriptions } from '../triggers/triggers.js';
import { fanOutBatch } from './fanout.js';

export interface DispatcherDeps {
  readonly store: KyselyStore;
  readonly queue: DeliveryQueue;
  /** The user's finder wrapped for the store's rows, when there is one. */
  readonly customFind: FindSubscriptions | undefined;
  readonly pollIntervalMs: number;
  readonly logger: Logger;
}

const FAN_OUT_BATCH = 500;
const CLAIM_BATCH = 256;

export class Dispatcher {
  readonly #deps: DispatcherDeps;
  #running = false;
  #pumping = false;
  #again = false;
  #outboxWanted = true;
  #timer: NodeJS.Timeout | undefined;
  /** Deliveries per event in the last fan-out, so a batch reads about as many events as the queue has room for. */
  #deliveriesPerEvent = 1;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    deps.queue.onCapacity(() => this.nudge(false));
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.nudge();
  }

  /** New work may exist (an append, a freed slot): pump soon, coalescing bursts into one pass. */
  nudge(outbox = true): void {
    if (outbox) this.#outboxWanted = true;
    if (!this.#running) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#pump(), 0);
  }

  async #pump(): Promise<void> {
    this.#timer = undefined;
    if (this.#pumping || !this.#running) return;
    this.#pumping = true;
    const { store, queue } = this.#deps;
    let wait = this.#deps.pollIntervalMs;
    try {
      do {
        this.#again = false;
        // Due deliveries first (retries, and what large fan-outs left): they have waited longest.
        let room = queue.capacity();
        const want = Math.min(room, CLAIM_BATCH);
        if (want > 0) {
          const now = Date.now();
          const claimed = await store.claimDue(want, now, now + queue.leaseMs);
          if (claimed.length > 0) await queue.enqueue(claimed);
          if (claimed.length === want) this.#again = true;
          room -= claimed.length;
        }
        // Then new events, only as many as the queue has room for: their deliveries are created
        // claimed and handed over at once. The rest wait in the outbox, where waiting costs nothing.
        if (this.#outboxWanted && room > 0 && this.#running) {
          this.#outboxWanted = false;
          const limit = Math.min(FAN_OUT_BATCH, Math.ceil(room / this.#deliveriesPerEvent));
          const handoff = { capacity: room, leaseUntil: Date.now() + queue.leaseMs };
          const { taken, more, claimed } = await fanOutBatch(store, this.#deps.customFind, limit, this.#deps.logger, handoff);
          if (taken > 0) this.#deliveriesPerEvent = Math.max(1, claimed.length / taken);
          if (claimed.length > 0) await queue.enqueue(claimed);
          if (more) {
            this.#outboxWanted = true;
            if (queue.capacity() > 0) this.#again = true;
          }
        }
      } while (this.#again && this.#running);
      if (queue.capacity() > 0) {
        const next = await store.nextDueAt();
        if (next !== null) wait = Math.max(0, Math.min(wait, next - Date.now()));
      }
    } catch (error) {
      this.#deps.logger.error({ err: errorInfo(error) }, 'resthooks: dispatcher pass failed; retrying after the poll interval');
    } finally {
      this.#pumping = false;
    }
    if (!this.#running) return;
    if (this.#again) wait = 0;
    this.#timer = setTimeout(() => {
      this.#outboxWanted = true; // events committed through a host transaction are found by polling
      void this.#pump();
    }, wait);
    this.#timer.unref();
  }

  /** Stops fanning out and claiming; what the queue holds is the queue's to finish. */
  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
