/**
 * Records finished attempts in batches (one transaction for everything that finished in the same
 * tick), then tells the app: `onSent` per attempt, `onSubscriptionDisabled` per disabled subscription.
 * @module
 */
import type { SentInfo } from '../config/options.js';
import { ResthooksError } from '../errors.js';
import { loggedError, type Logger } from '../logger.js';
import type { AttemptRecord, ClaimRelease, KyselyStore, RecordedAttempts, RecordsForAPass } from '../store/kysely-store.js';
import type { Subscription } from '../store/records.js';
import type { FinishedAttempt } from './attempt-runner.js';

export interface AttemptRecorderDeps {
  readonly store: KyselyStore;
  readonly disableAfterMs: number | null;
  readonly onSent: ((info: SentInfo) => void | Promise<void>) | undefined;
  readonly onSubscriptionDisabled: ((subscription: Subscription, reason: string) => void | Promise<void>) | undefined;
  readonly logger: Logger;
  /** Told the size of each batch written. */
  readonly onBatchWritten?: (size: number) => void;
}

// A batch that could not be written (the database restarting, a lost connection) is written again
// after these waits, doubling, until it is written or its attempts' signals abort (the shutdown deadline).
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;
/** A batch this large is written without waiting out the store's batch window. */
const WINDOW_FULL = 16;
/**
 * While fan-out passes take the waiting batches (`recordsForPass`), a batch waits this many windows for
 * the next pass: passes come every window or two while events trickle in, and a batch that waited one
 * window missed about every other one, writing a commit of its own.
 */
const RIDING_WINDOWS = 3;
/** Passes took a batch within this many windows: they still come. */
const RIDING_RECENTLY = 10;

/** A finished attempt waiting for its batch, and the signal it ran with: once that aborts (shutdown deadline), its record is no longer retried. */
interface Pending {
  readonly finished: FinishedAttempt;
  readonly signal: AbortSignal | undefined;
}

export class AttemptRecorder {
  readonly #deps: AttemptRecorderDeps;
  #pending: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #failures = 0;
  /** Ends the batch window now (the batch is full, or a fan-out pass took it). */
  #windowEnds: (() => void) | undefined;
  /** Settles once the fan-out pass that took the waiting batch has written it or handed it back. */
  #riding: Promise<void> | undefined;
  /** When a pass last took a batch (performance.now()). */
  #rodeAt = -Infinity;
  /** The pass handed its batch back unwritten: it has waited its window already. */
  #handedBack = false;

  constructor(deps: AttemptRecorderDeps) {
    this.#deps = deps;
  }

  /**
   * Queues the result for the next batch; resolves once that batch is written, so a queue that
   * acknowledges work elsewhere (BullMQ) only does so for recorded attempts.
   */
  record(finished: FinishedAttempt, signal?: AbortSignal): Promise<void> {
    this.#pending.push({ finished, signal });
    this.#flushing ??= this.#window().then(() => this.#flush());
    if (this.#pending.length >= WINDOW_FULL) this.#windowEnds?.();
    return this.#flushing;
  }

  /**
   * Until the batch is written: the end of this tick, or on a store with a batch window (PostgreSQL:
   * each batch is a commit that waits for the disk), that window or a batch of `WINDOW_FULL`, whichever
   * comes first, so that attempts finishing one by one share a commit.
   */
  #window(): Promise<void> {
    const ms = this.#windowMs();
    return new Promise<void>((resolve) => {
      if (ms < 1) return void setImmediate(resolve);
      const end = () => {
        clearTimeout(timer);
        this.#windowEnds = undefined;
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.#windowEnds = end;
    });
  }

  #windowMs(): number {
    const ms = this.#deps.store.dialect.capabilities.batchWindowMs ?? 0;
    return ms >= 1 && performance.now() - this.#rodeAt < RIDING_RECENTLY * ms ? RIDING_WINDOWS * ms : ms;
  }

  /**
   * The batch waiting out its window, for a fan-out pass to write in its own statement (one commit for
   * both: with the store's batch window, a pass and a small record batch were a commit each). Undefined
   * when no batch waits, or one waits with a claim to give back (written by `releaseClaims` only).
   * Until the pass settles it, the batch's `record` calls stay unresolved, as for a batch written here.
   */
  recordsForPass(): RecordsForAPass | undefined {
    const endWindow = this.#windowEnds;
    if (!endWindow || this.#riding || this.#pending.length === 0 || this.#pending.some(({ finished: f }) => !f.record || f.release)) return undefined;
    const batch = this.#pending;
    this.#pending = [];
    this.#rodeAt = performance.now();
    let settle!: () => void;
    this.#riding = new Promise<void>((resolve) => (settle = resolve));
    endWindow();
    return {
      records: batch.map(({ finished: f }) => f.record!),
      disableAfterMs: this.#deps.disableAfterMs,
      written: (recorded) => {
        this.#failures = 0;
        void this.#written(batch, recorded, [])
          .catch((error: unknown) => this.#deps.logger.error({ err: loggedError(error) }, 'resthooks: could not report a batch of attempt records written by a fan-out pass'))
          .finally(() => {
            this.#riding = undefined;
            settle();
          });
      },
      notWritten: () => {
        this.#pending = batch.concat(this.#pending);
        this.#handedBack = true;
        this.#riding = undefined;
        settle();
      },
    };
  }

  /** Resolves when everything handed to `record` so far is written. */
  async settled(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    for (;;) {
      if (this.#riding) {
        await this.#riding;
        // What finished meanwhile waits out a window of its own (and may ride the next pass); a batch
        // handed back is written at once, with it.
        const handedBack = this.#handedBack;
        this.#handedBack = false;
        if (!handedBack && this.#windowMs() >= 1 && this.#pending.length > 0 && this.#pending.length < WINDOW_FULL) await this.#window();
        continue;
      }
      if (this.#pending.length === 0) break;
      const batch = this.#pending;
      this.#pending = [];
      let recorded: RecordedAttempts;
      let notReleased: string[] = [];
      // Plain loops: this runs for every attempt, and `flatMap` made an array per element.
      const records: AttemptRecord[] = [];
      const releases: ClaimRelease[] = [];
      for (const { finished } of batch) {
        if (finished.record) records.push(finished.record);
        if (finished.release) releases.push(finished.release);
      }
      try {
        const now = Date.now();
        recorded = await this.#deps.store.recordAttempts(records, now, this.#deps.disableAfterMs);
        if (releases.length > 0) ({ stale: notReleased } = await this.#deps.store.releaseClaims(releases, now));
      } catch (error) {
        await this.#retryLater(batch, error);
        continue;
      }
      this.#failures = 0;
      await this.#written(batch, recorded, notReleased);
      // What finished while this batch was written waits out the window too, unless it fills a batch.
      if (this.#windowMs() >= 1 && this.#pending.length > 0 && this.#pending.length < WINDOW_FULL) await this.#window();
    }
    this.#flushing = undefined;
  }

  /** Tells what a written batch did: the log, `onSent` per recorded attempt, `onSubscriptionDisabled`. */
  async #written(batch: readonly Pending[], recorded: RecordedAttempts, notReleased: readonly string[]): Promise<void> {
    this.#deps.onBatchWritten?.(batch.length);
    this.#report(recorded, notReleased);
    if (batch.some(({ finished: f }) => f.sent !== undefined || f.record?.goneSubscriptionId !== undefined)) await this.#tellRecorded(batch, recorded);
    for (const id of recorded.disabled) await this.#tell('onSubscriptionDisabled', () => this.#disabled(id));
  }

  /** The logs and `onSent` calls of a written batch that has a 410 or someone listening. */
  async #tellRecorded(batch: readonly Pending[], recorded: RecordedAttempts): Promise<void> {
    // `onSent` tells of recorded attempts: a stale one's result was discarded, a released one is made again.
    const unrecorded = new Set([...recorded.stale, ...recorded.released]);
    for (const { finished: f } of batch) {
      if (f.record?.goneSubscriptionId !== undefined && !unrecorded.has(f.record)) {
        this.#deps.logger.info({ subscriptionId: f.record.goneSubscriptionId }, 'resthooks: receiver answered 410 Gone; subscription deleted');
      }
    }
    for (const { finished: f } of batch) if (f.sent && !(f.record && unrecorded.has(f.record))) await this.#tell('onSent', () => this.#deps.onSent!(f.sent!()));
  }

  /**
   * Puts a batch that could not be written back in front of what finished since, and waits before
   * the next write. Dropping it would leave its deliveries in flight until their leases lapse, and
   * then send them again. Records whose attempt was aborted (the shutdown deadline passed) are given
   * up: their leases bring the deliveries back.
   */
  async #retryLater(batch: Pending[], error: unknown): Promise<void> {
    const kept = batch.filter((p) => p.signal?.aborted !== true);
    const retryInMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.#failures++);
    this.#deps.logger.error(
      { err: loggedError(error), count: batch.length, givenUp: batch.length - kept.length, ...(kept.length > 0 ? { retryInMs } : {}) },
      kept.length > 0 ? 'resthooks: could not record attempts; retrying' : 'resthooks: could not record attempts at shutdown; their leases bring them back',
    );
    this.#pending = kept.concat(this.#pending);
    if (kept.length === 0) return;
    const signals = kept.flatMap((p) => p.signal ?? []);
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        abort?.removeEventListener('abort', wake);
        resolve();
      }, retryInMs);
      // Shutdown should not wait out the backoff: try once more, then give up.
      const abort = signals.length === kept.length ? AbortSignal.any(signals) : undefined;
      abort?.addEventListener('abort', wake, { once: true });
    });
  }

  #report(recorded: RecordedAttempts, notReleased: readonly string[]): void {
    const { logger } = this.#deps;
    if (recorded.stale.length > 0) {
      logger.warn(
        { records: recorded.stale.map(describe) },
        'resthooks: attempt results arrived after their claims lapsed and the deliveries were taken over; discarded (the receivers got those requests)',
      );
    }
    if (notReleased.length > 0) logger.warn({ deliveryIds: notReleased }, 'resthooks: claims to give back had lapsed and been taken over; left to their new holders');
    if (recorded.batchError !== undefined) logger.warn({ err: loggedError(recorded.batchError) }, 'resthooks: the database refused a batch of attempt records; wrote them one by one');
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
    const err = new ResthooksError('delivery_failed', `Subscription ${subscriptionId} was disabled: ${reason}`);
    this.#deps.logger.error({ event: 'subscription.disabled', subscriptionId, owner: subscription.owner, reason, err }, 'resthooks: subscription.disabled');
    await this.#deps.onSubscriptionDisabled?.(subscription, reason);
  }

  // The app's callbacks must not break recording (django-rest-hooks sent hook_sent_event with send_robust).
  async #tell(name: string, call: () => void | Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      this.#deps.logger.warn({ err: loggedError(error) }, `resthooks: ${name} threw; ignored`);
    }
  }
}

/** A record as the warnings list it (a function of the module, not a closure made for every batch written). */
function describe(r: AttemptRecord) {
  return { deliveryId: r.delivery.id, attempt: r.claim.attempt, outcome: r.attempt?.outcome ?? r.delivery.status, statusCode: r.delivery.last_status_code };
}
