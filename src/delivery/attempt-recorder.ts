/**
 * Records finished attempts in batches (one transaction for everything that finished in the same
 * tick), then tells the app: `onSent` per attempt, `onSubscriptionDisabled` per disabled subscription.
 * @module
 */
import type { SentInfo } from '../config/options.js';
import { errorInfo, type Logger } from '../logger.js';
import type { AttemptRecord, KyselyStore, RecordedAttempts } from '../store/kysely-store.js';
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
      let recorded: RecordedAttempts;
      let notReleased: string[];
      try {
        const now = Date.now();
        const records = batch.flatMap((f) => (f.record ? [f.record] : []));
        recorded = await this.#deps.store.recordAttempts(records, now, this.#deps.disableAfterMs);
        ({ stale: notReleased } = await this.#deps.store.releaseClaims(batch.flatMap((f) => (f.release ? [f.release] : [])), now));
      } catch (error) {
        // The claims' leases will lapse and the deliveries be attempted again: at-least-once holds.
        this.#deps.logger.error({ err: errorInfo(error), count: batch.length }, 'resthooks: could not record attempts');
        continue;
      }
      this.#report(recorded, notReleased);
      // `onSent` tells of recorded attempts: a stale one's result was discarded, a released one is made again.
      const unrecorded = new Set([...recorded.stale, ...recorded.released]);
      for (const f of batch) {
        if (f.record?.goneSubscriptionId !== undefined && !unrecorded.has(f.record)) {
          this.#deps.logger.info({ subscriptionId: f.record.goneSubscriptionId }, 'resthooks: receiver answered 410 Gone; subscription deleted');
        }
      }
      for (const f of batch) if (f.sent && !(f.record && unrecorded.has(f.record))) await this.#tell('onSent', () => this.#deps.onSent!(f.sent!()));
      for (const id of recorded.disabled) await this.#tell('onSubscriptionDisabled', () => this.#disabled(id));
    }
    this.#flushing = undefined;
  }

  #report(recorded: RecordedAttempts, notReleased: readonly string[]): void {
    const { logger } = this.#deps;
    const describe = (r: AttemptRecord) => ({ deliveryId: r.delivery.id, attempt: r.claim.attempt, outcome: r.attempt?.outcome ?? r.delivery.status, statusCode: r.delivery.last_status_code });
    if (recorded.stale.length > 0) {
      logger.warn(
        { records: recorded.stale.map(describe) },
        'resthooks: attempt results arrived after their claims lapsed and the deliveries were taken over; discarded (the receivers got those requests)',
      );
    }
    if (notReleased.length > 0) logger.warn({ deliveryIds: notReleased }, 'resthooks: claims to give back had lapsed and been taken over; left to their new holders');
    if (recorded.batchError !== undefined) logger.warn({ err: errorInfo(recorded.batchError) }, 'resthooks: the database refused a batch of attempt records; wrote them one by one');
    if (recorded.withoutTexts.length > 0) {
      logger.warn({ records: recorded.withoutTexts.map(describe) }, 'resthooks: attempts recorded without their response excerpt and error text, which the database refused');
    }
    if (recorded.released.length > 0) {
      logger.error({ records: recorded.released.map(describe) }, 'resthooks: attempts the database refused to record; their deliveries are attempted again');
    }
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
