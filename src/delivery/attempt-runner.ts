/**
 * One attempt of one claimed delivery: build the body, sign it, send it (or hand it to the custom
 * deliverer), and decide what the result means. Writes nothing: it returns what to record.
 * @module
 */
import type { Deliverer, ResolvedDeliveryOptions, SentInfo } from '../config/options.js';
import { newId } from '../ids.js';
import { errorInfo, loggedError, type Logger } from '../logger.js';
import { logAttempt } from './attempt-log.js';
import { giveBackDelayMs } from '../queue/queue.js';
import type { GatePass, ReceiverVerdict, SendGate } from '../queue/send-gate.js';
import { storedEventOf, type AttemptRecord, type ClaimedDelivery, type ClaimRelease } from '../store/kysely-store.js';
import { livePreviousSecrets, type HookInfo, type JsonValue } from '../store/records.js';
import { firstAttemptId } from '../store/rows.js';
import { storableText } from '../store/storable-text.js';
import { eventBody } from './envelope.js';
import { classifyAttempt, type AttemptOutcome } from './outcome.js';
import { pauseLengthMs, receiverVerdict } from './receiver-pause.js';
import type { Sender, SendResult } from './sender.js';
import { legacySignature, signatureHeaders } from './signing.js';
import { originOf } from './origins.js';

/** What an attempt leaves to record. */
export interface FinishedAttempt {
  readonly record?: AttemptRecord;
  /** Given back unattempted (shutdown, rate limit), due again at `dueAt`. */
  readonly release?: ClaimRelease;
  /** Builds the `onSent` argument, only when someone listens. */
  readonly sent?: () => SentInfo;
}

export interface AttemptRunnerDeps {
  readonly sender: Sender;
  readonly options: ResolvedDeliveryOptions;
  readonly deliverer: Deliverer | undefined;
  readonly wantsSentInfo: boolean;
  readonly logger: Logger;
  /** Rate limits and pauses: the queue's own (shared by its workers) or one in this process. */
  readonly gate: SendGate;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** How long an attempt waits when the gate cannot be asked (its Redis unreachable). */
const GATE_UNREACHABLE_WAIT_MS = 1000;

export class AttemptRunner {
  readonly #deps: AttemptRunnerDeps;

  constructor(deps: AttemptRunnerDeps) {
    this.#deps = deps;
  }

  /** `extraHeaders` (a trace's `traceparent`) go with the attempt's request; `stillMine`: see DeliveryProcessor. */
  async run(claim: ClaimedDelivery, signal: AbortSignal, extraHeaders: Readonly<Record<string, string>> = NO_HEADERS, stillMine?: () => boolean): Promise<FinishedAttempt> {
    const { options } = this.#deps;
    const subscription = claim.subscription;
    const startedAt = Date.now();
    // Shutting down, its lease too short for an attempt, or its owner's or receiver's slots all stuck: it goes back unattempted.
    if (signal.aborted) return { release: giveBack(claim, startedAt + giveBackDelayMs(signal.reason)) };
    if (!subscription || !subscription.active) {
      return { record: endedWithoutAttempt(claim, subscription ? 'subscription inactive' : 'subscription deleted') };
    }
    const perSecond = subscription.maxPerSecond ?? options.maxPerSecondPerSubscription;
    const gate = this.#deps.gate;
    let pass: GatePass;
    try {
      const request = { subscriptionId: subscription.id, origin: originOf(subscription.target), perSecond };
      const admission = gate.now ? gate.now.admit(request) : await gate.admit(request);
      if (!admission.admitted) return { release: giveBack(claim, Date.now() + admission.waitMs) };
      pass = admission.pass;
      if (stillMine && !stillMine()) {
        // Nothing to record and no claim to give back: whoever holds the attempt now makes it.
        await this.#finishPass(pass, { kind: 'unsent' }, claim, false);
        return {};
      }
    } catch (error) {
      this.#deps.logger.warn({ err: loggedError(error), deliveryId: claim.id }, 'resthooks: could not check the rate limits; the delivery waits');
      return { release: giveBack(claim, Date.now() + GATE_UNREACHABLE_WAIT_MS) };
    }
    // The event the delivery was made for: editing the subscription's event later must not relabel it.
    const hook: HookInfo = { id: subscription.id, event: claim.event.name, target: subscription.target };
    const body = claim.body ?? eventBody(hook, claim.event.data, claim.event.body, subscription);
    let result: SendResult = { error: 'not sent', excerpt: null, durationMs: 0, aborted: true };
    try {
      result = await this.#send(claim, hook, body, startedAt, signal, extraHeaders);
    } finally {
      const pauseMs = pauseLengthMs(result, options, claim.attempt, Date.now(), Math.random());
      // Not awaited: the record need not wait for the gate, and a shared gate (Redis) then sends the
      // finish with its next admissions rather than in a call of its own. A gate that cannot be told
      // lets the slots go when their lease ends (`#finishPass` logs why).
      void this.#finishPass(pass, receiverVerdict(result, pauseMs), claim, true);
    }
    return this.#finished(claim, hook, body, startedAt, result);
  }

  /**
   * Tells the gate the attempt is over. A gate that cannot be told lets the slots go when their lease
   * ends: its failure is logged (when `warn`) and goes no further. Undefined once done: a gate in memory
   * is told at once, without a promise.
   */
  #finishPass(pass: GatePass, verdict: ReceiverVerdict, claim: ClaimedDelivery, warn: boolean): Promise<void> | undefined {
    const gate = this.#deps.gate;
    // No closure made per attempt for the gate in memory, the common case.
    if (!gate.now) return gate.finish(pass, verdict).catch((error: unknown) => this.#finishFailed(error, claim, warn));
    try {
      gate.now.finish(pass, verdict);
    } catch (error) {
      this.#finishFailed(error, claim, warn);
    }
    return undefined;
  }

  #finishFailed(error: unknown, claim: ClaimedDelivery, warn: boolean): void {
    if (warn) this.#deps.logger.warn({ err: loggedError(error), deliveryId: claim.id }, 'resthooks: could not free the rate-limit slot of an attempt');
  }

  #send(claim: ClaimedDelivery, hook: HookInfo, body: string, startedAt: number, signal: AbortSignal, extraHeaders: Readonly<Record<string, string>>): Promise<SendResult> {
    const { options } = this.#deps;
    const subscription = claim.subscription!;
    const headers = signatureHeaders(claim.id, Math.floor(startedAt / 1000), body, secretsOf(subscription.secret, subscription.previousSecrets, startedAt));
    for (const name in extraHeaders) headers[name] = extraHeaders[name]!;
    if (options.legacySignatureHeader) headers['x-hook-signature'] = legacySignature(subscription.secret, body);
    return this.#deps.deliverer
      ? this.#deliverCustom(hook, body, headers, claim, signal)
      : this.#deps.sender.send({ url: hook.target, headers, body, timeoutMs: options.timeoutMs, signal });
  }

  #finished(claim: ClaimedDelivery, hook: HookInfo, body: string, startedAt: number, result: SendResult): FinishedAttempt {
    const { options } = this.#deps;
    if (result.aborted) return { release: giveBack(claim, Date.now()) };
    const outcome = classifyAttempt(result, claim.attempt, options, Date.now(), Math.random());
    const record = attemptRecord(claim, startedAt, result, outcome, options.responseExcerptBytes);
    logAttempt(this.#deps.logger, claim, hook, result, outcome);
    if (!this.#deps.wantsSentInfo) return { record };
    const sent = (): SentInfo => ({
      hook,
      payload: JSON.parse(body) as JsonValue,
      event: storedEventOf(claim),
      deliveryId: claim.id,
      attempt: claim.attempt,
      outcome: outcome.kind,
      statusCode: result.statusCode ?? null,
      error: result.error ?? null,
      durationMs: result.durationMs,
    });
    return { record, sent };
  }

  async #deliverCustom(hook: HookInfo, body: string, headers: Record<string, string>, claim: ClaimedDelivery, shutdown: AbortSignal): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    try {
      const answer = await this.#deps.deliverer!(hook.target, JSON.parse(body) as JsonValue, {
        hook,
        body,
        headers: { 'content-type': 'application/json', ...headers },
        deliveryId: claim.id,
        attempt: claim.attempt,
        signal: AbortSignal.any([shutdown, AbortSignal.timeout(this.#deps.options.timeoutMs)]),
      });
      return { statusCode: answer?.statusCode ?? 200, excerpt: answer?.body?.slice(0, this.#deps.options.responseExcerptBytes) ?? null, durationMs: elapsed() };
    } catch (error) {
      if (shutdown.aborted) return { error: 'aborted by shutdown', excerpt: null, durationMs: elapsed(), aborted: true };
      return { error: errorInfo(error).message, excerpt: null, durationMs: elapsed(), cause: loggedError(error) };
    }
  }
}

// During a rotation's grace period the old secrets sign too (Standard Webhooks allows several signatures).
function secretsOf(secret: string, previous: string | null, now: number): readonly string[] {
  return previous === null ? [secret] : [secret, ...livePreviousSecrets(previous, now).map((p) => p.secret)];
}

function giveBack(claim: ClaimedDelivery, dueAt: number): ClaimRelease {
  return { id: claim.id, claim: { attempt: claim.attempt, leaseUntil: claim.leaseUntil }, dueAt };
}

function endedWithoutAttempt(claim: ClaimedDelivery, reason: string): AttemptRecord {
  return {
    claim: { attempt: claim.attempt, leaseUntil: claim.leaseUntil },
    attempt: undefined,
    delivery: { id: claim.id, status: 'cancelled', attempts: claim.attempt - 1, due_at: 0, last_status_code: null, last_error: reason },
  };
}

function attemptRecord(claim: ClaimedDelivery, startedAt: number, result: SendResult, outcome: AttemptOutcome, excerptBytes: number): AttemptRecord {
  const status = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'retry' ? 'pending' : outcome.kind === 'gone' ? 'cancelled' : 'failed';
  const lastError =
    outcome.kind === 'failed' ? `${result.error ?? `HTTP ${result.statusCode}`}; ${outcome.reason}` : outcome.kind === 'gone' ? 'subscription gone (410)' : (result.error ?? null);
  return {
    // The claim is its own token (its attempt and lease): no copy per attempt.
    claim,
    attempt: {
      // The first attempt's id is derived from the delivery's (`firstAttemptId`): no new id per delivery.
      id: claim.attempt === 1 ? firstAttemptId(claim.id) : newId('att'),
      delivery_id: claim.id,
      number: claim.attempt,
      started_at: startedAt,
      duration_ms: result.durationMs,
      status_code: result.statusCode ?? null,
      // A custom deliverer's body is cut in UTF-16 units: the limit is in bytes, and never splits a character.
      response_excerpt: result.excerpt === null ? null : storableText(result.excerpt, excerptBytes),
      error: result.error ?? null,
      outcome: outcome.kind,
    },
    delivery: {
      id: claim.id,
      status,
      attempts: claim.attempt,
      due_at: outcome.kind === 'retry' ? outcome.at : 0,
      last_status_code: result.statusCode ?? null,
      last_error: lastError,
    },
    ...(outcome.kind === 'gone'
      ? { goneSubscriptionId: claim.subscriptionId }
      : // A success only has a streak to end when one was running (saves a write per delivery).
        outcome.kind !== 'delivered' || claim.subscription?.failingSince != null
        ? { streak: { subscriptionId: claim.subscriptionId, failed: outcome.kind !== 'delivered' } }
        : {}),
  };
}
