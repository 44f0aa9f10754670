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
  readonly findSubscriptions: FindSubscriptions;
  readonly customFinder: boolean;
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

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    deps.queue.onCapacity(() => this.nudge(false));
  }

  get running(): boolean {
    return this.#running;
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
        if (this.#outboxWanted) {
          this.#outboxWanted = false;
          const now = Date.now();
          const handoff = { capacity: this.#running ? queue.capacity() : 0, leaseUntil: now + queue.leaseMs };
          const { taken, claimed } = await fanOutBatch(store, this.#deps.findSubscriptions, this.#deps.customFinder, FAN_OUT_BATCH, this.#deps.logger, handoff);
          if (claimed.length > 0) await queue.enqueue(claimed);
          if (taken === FAN_OUT_BATCH) this.#outboxWanted = this.#again = true;
        }
        const want = Math.min(queue.capacity(), CLAIM_BATCH);
        if (want > 0 && this.#running) {
          const now = Date.now();
          const claimed = await store.claimDue(want, now, now + queue.leaseMs);
          if (claimed.length > 0) await queue.enqueue(claimed);
          if (claimed.length === want) this.#again = true;
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
