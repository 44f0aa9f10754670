/**
 * Records finished attempts in batches (one transaction for everything that finished in the same
 * tick), then tells the app: `onSent` per attempt, `onSubscriptionDisabled` per disabled subscription.
 * @module
 */
import type { SentInfo } from '../config/options.js';
import { errorInfo, type Logger } from '../logger.js';
import type { KyselyStore } from '../store/kysely-store.js';
import type { Subscription } from '../store/records.js';
import type { FinishedAttempt } from './attempt-runner.js';

export interface AttemptRecorderDeps {
  readonly store: KyselyStore;
  readonly disableAfterMs: number | null;
  readonly onSent: ((info: SentInfo) => void | Promise<void>) | undefined;
  readonly onSubscriptionDisabled: ((subscription: Subscription, reason: string) => void | Promise<void>) | undefined;
  readonly logger: Logger;
}

export class AttemptRecorder {
  readonly #deps: AttemptRecorderDeps;
  #pending: FinishedAttempt[] = [];
  #flushing: Promise<void> | undefined;

  constructor(deps: AttemptRecorderDeps) {
    this.#deps = deps;
  }

  /**
   * Queues the result for the next batch; resolves once that batch is written, so a queue that
   * acknowledges work elsewhere (BullMQ) only does so for recorded attempts.
   */
  record(finished: FinishedAttempt): Promise<void> {
    this.#pending.push(finished);
    this.#flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flush());
    return this.#flushing;
  }

  /** Resolves when everything handed to `record` so far is written. */
  async settled(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      let disabled: string[];
      try {
        const now = Date.now();
        const records = batch.flatMap((f) => (f.record ? [f.record] : []));
        ({ disabled } = await this.#deps.store.recordAttempts(records, now, this.#deps.disableAfterMs));
        await this.#deps.store.releaseClaims(batch.flatMap((f) => (f.release ? [f.release] : [])), now);
      } catch (error) {
        // The claims' leases will lapse and the deliveries be attempted again: at-least-once holds.
        this.#deps.logger.error({ err: errorInfo(error), count: batch.length }, 'resthooks: could not record attempts');
        continue;
      }
      for (const f of batch) if (f.sent) await this.#tell('onSent', () => this.#deps.onSent!(f.sent!()));
      for (const id of disabled) await this.#tell('onSubscriptionDisabled', () => this.#disabled(id));
    }
    this.#flushing = undefined;
  }

  async #disabled(subscriptionId: string): Promise<void> {
    const subscription = await this.#deps.store.getSubscription(subscriptionId);
    if (!subscription) return;
    const reason = subscription.disabledReason ?? 'failing continuously';
    this.#deps.logger.warn({ event: 'subscription.disabled', subscriptionId, owner: subscription.owner, reason }, 'resthooks: subscription.disabled');
    await this.#deps.onSubscriptionDisabled?.(subscription, reason);
  }

  // The app's callbacks must not break recording (the seed sent hook_sent_event with send_robust).
  async #tell(name: string, call: () => void | Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      this.#deps.logger.warn({ err: errorInfo(error) }, `resthooks: ${name} threw; ignored`);
    }
  }
}
