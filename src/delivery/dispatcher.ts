/**
 * The in-process dispatcher: fans out the outbox, claims due deliveries, runs attempts with bounded
 * concurrency, and records their results in batches. Each stage reads only what the stage before
 * wrote to the store, so a restart resumes wherever a crash left off.
 * @module
 */
import type { Deliverer, ResolvedDeliveryOptions, SentInfo } from '../config/options.js';
import { newId } from '../ids.js';
import { errorInfo, type Logger } from '../logger.js';
import type { AttemptRecord, ClaimedDelivery, KyselyStore } from '../store/kysely-store.js';
import { toStoredEvent, type HookInfo, type JsonValue, type Subscription } from '../store/records.js';
import type { AttemptOutcomeKind } from '../store/schema.js';
import type { FindSubscriptions } from '../triggers/triggers.js';
import { eventBody } from './envelope.js';
import { fanOutBatch } from './fanout.js';
import { classifyAttempt, type AttemptOutcome } from './outcome.js';
import type { Sender, SendResult } from './sender.js';
import { legacySignature, signatureHeaders } from './signing.js';
import { RateLimiter } from './rate-limiter.js';

export interface DispatcherDeps {
  readonly store: KyselyStore;
  readonly sender: Sender;
  readonly options: ResolvedDeliveryOptions;
  readonly findSubscriptions: FindSubscriptions;
  readonly customFinder: boolean;
  readonly deliverer: Deliverer | undefined;
  readonly onSent: ((info: SentInfo) => void | Promise<void>) | undefined;
  readonly onSubscriptionDisabled: ((subscription: Subscription, reason: string) => void | Promise<void>) | undefined;
  readonly logger: Logger;
}

const FAN_OUT_BATCH = 500;
const CLAIM_BATCH = 256;
// A claimed delivery's lease outlives its attempt comfortably; only a dead process lets it lapse.
const LEASE_MARGIN_MS = 60_000;

interface Finished {
  readonly record?: AttemptRecord;
  /** Given back unattempted, due again at `dueAt`. */
  readonly release?: { readonly id: string; readonly dueAt: number };
  readonly sent?: () => SentInfo;
}

export class Dispatcher {
  readonly #deps: DispatcherDeps;
  readonly #shutdown = new AbortController();
  #running = false;
  #pumping = false;
  #again = false;
  #outboxWanted = true;
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];
  #finished: Finished[] = [];
  #flushing: Promise<void> | undefined;
  readonly #rateLimiter: RateLimiter | undefined;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    const rate = deps.options.maxPerSecondPerSubscription;
    this.#rateLimiter = rate === null ? undefined : new RateLimiter(rate);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#outboxWanted = true;
    this.nudge();
  }

  /** New work may exist (an append, a finished attempt): pump soon, coalescing bursts into one pass. */
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
    let wait = this.#deps.options.pollIntervalMs;
    try {
      do {
        this.#again = false;
        if (this.#outboxWanted) {
          this.#outboxWanted = false;
          const taken = await fanOutBatch(this.#deps.store, this.#deps.findSubscriptions, this.#deps.customFinder, FAN_OUT_BATCH, this.#deps.logger);
          if (taken === FAN_OUT_BATCH) this.#outboxWanted = this.#again = true;
        }
        const free = this.#deps.options.concurrency - this.#inFlight;
        if (free > 0 && this.#running) {
          const want = Math.min(free, CLAIM_BATCH);
          const now = Date.now();
          const claimed = await this.#deps.store.claimDue(want, now, now + this.#deps.options.timeoutMs + LEASE_MARGIN_MS);
          for (const delivery of claimed) void this.#attempt(delivery);
          if (claimed.length === want) this.#again = true;
        }
      } while (this.#again && this.#running);
      if (this.#inFlight < this.#deps.options.concurrency) {
        const next = await this.#deps.store.nextDueAt();
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

  async #attempt(claim: ClaimedDelivery): Promise<void> {
    this.#inFlight++;
    try {
      this.#finish(await this.#run(claim));
    } catch (error) {
      // Not expected (send() does not throw); the lease makes the delivery due again later.
      this.#deps.logger.error({ deliveryId: claim.id, err: errorInfo(error) }, 'resthooks: attempt crashed');
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      this.nudge(false);
    }
  }

  async #run(claim: ClaimedDelivery): Promise<Finished> {
    const { options } = this.#deps;
    const subscription = claim.subscription;
    const startedAt = Date.now();
    if (!subscription || !subscription.active) {
      const reason = subscription ? 'subscription inactive' : 'subscription deleted';
      return { record: finishWithoutAttempt(claim, 'cancelled', reason) };
    }
    const wait = this.#rateLimiter?.take(subscription.id, startedAt) ?? 0;
    if (wait > 0) return { release: { id: claim.id, dueAt: startedAt + wait } };
    const hook: HookInfo = { id: subscription.id, event: subscription.event, target: subscription.target };
    const body = claim.body ?? eventBody(hook, claim.event.data, claim.event.body);
    const headers = signatureHeaders(claim.id, Math.floor(startedAt / 1000), body, secretsOf(subscription.secret, subscription.previousSecrets, startedAt));
    if (options.legacySignatureHeader) headers['x-hook-signature'] = legacySignature(subscription.secret, body);
    const result = this.#deps.deliverer
      ? await this.#deliverCustom(hook, body, headers, claim)
      : await this.#deps.sender.send({ url: hook.target, headers, body, timeoutMs: options.timeoutMs, signal: this.#shutdown.signal });
    if (result.aborted) return { release: { id: claim.id, dueAt: Date.now() } };

    const now = Date.now();
    const outcome = classifyAttempt(result, claim.attempt, options, now, Math.random());
    const record = attemptRecord(claim, startedAt, result, outcome);
    const onSent = this.#deps.onSent;
    const sent = onSent
      ? () => ({
          hook,
          payload: JSON.parse(body) as JsonValue,
          event: toStoredEvent({ id: claim.eventId, ...claim.event, all_owners: claim.event.allOwners ? 1 : 0, created_at: claim.event.createdAt }),
          deliveryId: claim.id,
          attempt: claim.attempt,
          outcome: outcome.kind,
          statusCode: result.statusCode ?? null,
          error: result.error ?? null,
          durationMs: result.durationMs,
        })
      : undefined;
    if (outcome.kind === 'gone') this.#deps.logger.info({ subscriptionId: hook.id }, 'resthooks: receiver answered 410 Gone; subscription deleted');
    return { record, ...(sent ? { sent } : {}) };
  }

  async #deliverCustom(hook: HookInfo, body: string, headers: Record<string, string>, claim: ClaimedDelivery): Promise<SendResult> {
    const started = performance.now();
    const signal = AbortSignal.any([this.#shutdown.signal, AbortSignal.timeout(this.#deps.options.timeoutMs)]);
    try {
      const answer = await this.#deps.deliverer!(hook.target, JSON.parse(body) as JsonValue, {
        hook,
        body,
        headers: { 'content-type': 'application/json', ...headers },
        deliveryId: claim.id,
        attempt: claim.attempt,
        signal,
      });
      return { statusCode: answer?.statusCode ?? 200, excerpt: answer?.body?.slice(0, this.#deps.options.responseExcerptBytes) ?? null, durationMs: Math.round(performance.now() - started) };
    } catch (error) {
      if (this.#shutdown.signal.aborted) return { error: 'aborted by shutdown', excerpt: null, durationMs: 0, aborted: true };
      return { error: errorInfo(error).message, excerpt: null, durationMs: Math.round(performance.now() - started) };
    }
  }

  #finish(finished: Finished): void {
    this.#finished.push(finished);
    this.#flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flush());
  }

  // Results are written in batches: one transaction for everything that finished in the same tick.
  async #flush(): Promise<void> {
    while (this.#finished.length > 0) {
      const batch = this.#finished;
      this.#finished = [];
      const records = batch.flatMap((f) => (f.record ? [f.record] : []));
      const releases = batch.flatMap((f) => (f.release ? [f.release] : []));
      let disabled: string[];
      try {
        const now = Date.now();
        ({ disabled } = await this.#deps.store.recordAttempts(records, now, this.#deps.options.disableAfterMs));
        await this.#deps.store.releaseClaims(releases, now);
      } catch (error) {
        // The claims' leases will lapse and the deliveries be attempted again: at-least-once holds.
        this.#deps.logger.error({ err: errorInfo(error), count: batch.length }, 'resthooks: could not record attempts');
        continue;
      }
      for (const f of batch) if (f.sent) await this.#notify(f.sent);
      for (const id of disabled) await this.#disabled(id);
    }
    this.#flushing = undefined;
  }

  async #disabled(subscriptionId: string): Promise<void> {
    try {
      const subscription = await this.#deps.store.getSubscription(subscriptionId);
      if (!subscription) return;
      const reason = subscription.disabledReason ?? 'failing continuously';
      this.#deps.logger.warn({ event: 'subscription.disabled', subscriptionId, owner: subscription.owner, reason }, 'resthooks: subscription.disabled');
      await this.#deps.onSubscriptionDisabled?.(subscription, reason);
    } catch (error) {
      this.#deps.logger.warn({ err: errorInfo(error) }, 'resthooks: onSubscriptionDisabled threw; ignored');
    }
  }

  async #notify(sent: () => SentInfo): Promise<void> {
    try {
      await this.#deps.onSent!(sent());
    } catch (error) {
      this.#deps.logger.warn({ err: errorInfo(error) }, 'resthooks: onSent threw; ignored');
    }
  }

  /** Resolves when no attempt is in flight and every result is recorded. */
  async settled(): Promise<void> {
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    while (this.#flushing) await this.#flushing;
  }

  /**
   * Stops claiming, lets in-flight attempts finish until `deadline`, then aborts the rest (they are
   * given back unattempted, so the next start sends them), and records everything.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = setTimeout(() => this.#shutdown.abort(new Error('shutdown deadline')), timeoutMs);
    try {
      await this.settled();
    } finally {
      clearTimeout(deadline);
    }
  }
}

function secretsOf(secret: string, previous: string | null, now: number): string[] {
  if (previous === null) return [secret];
  const old = (JSON.parse(previous) as Array<{ secret: string; expiresAt: number }>).filter((p) => p.expiresAt > now).map((p) => p.secret);
  return [secret, ...old];
}

function finishWithoutAttempt(claim: ClaimedDelivery, status: 'cancelled', reason: string): AttemptRecord {
  return {
    attempt: undefined,
    delivery: { id: claim.id, status, attempts: claim.attempt - 1, due_at: 0, last_status_code: null, last_error: reason },
  };
}

function attemptRecord(claim: ClaimedDelivery, startedAt: number, result: SendResult, outcome: AttemptOutcome): AttemptRecord {
  const kind: AttemptOutcomeKind = outcome.kind;
  const status = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'retry' ? 'pending' : outcome.kind === 'gone' ? 'cancelled' : 'failed';
  const lastError = outcome.kind === 'failed' ? `${result.error ?? `HTTP ${result.statusCode}`}; ${outcome.reason}` : outcome.kind === 'gone' ? 'subscription gone (410)' : (result.error ?? null);
  return {
    attempt: {
      id: newId('att'),
      delivery_id: claim.id,
      number: claim.attempt,
      started_at: startedAt,
      duration_ms: result.durationMs,
      status_code: result.statusCode ?? null,
      response_excerpt: result.excerpt,
      error: result.error ?? null,
      outcome: kind,
    },
    delivery: {
      id: claim.id,
      status,
      attempts: claim.attempt,
      due_at: outcome.kind === 'retry' ? outcome.at : 0,
      last_status_code: result.statusCode ?? null,
      last_error: lastError,
    },
    ...(outcome.kind === 'gone' ? { goneSubscriptionId: claim.subscriptionId } : { streak: { subscriptionId: claim.subscriptionId, failed: outcome.kind !== 'delivered' } }),
  };
}
