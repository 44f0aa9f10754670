/**
 * How long a receiver's 429 or 503 pauses its subscription, and what an attempt's result says of its
 * receiver: the delivery side of the send gate's pause (pure, the clock passed in).
 * @module
 */
import type { ReceiverVerdict } from '../queue/send-gate.js';
import { parseRetryAfter } from './outcome.js';
import { delayBeforeAttempt, type ResolvedRetryPolicy } from './retry.js';

/** The longest pause a `Retry-After` can ask for: a receiver asking for days gets a probe an hour. */
export const MAX_PAUSE_MS = 3_600_000;

/** What pauses need from the delivery options. */
export interface PausePolicy {
  readonly retry: ResolvedRetryPolicy;
  readonly minDelayAfter429Ms: number;
}

/**
 * How long a 429 or 503 pauses its subscription (null for any other result): its `Retry-After`
 * (delay-seconds or an HTTP-date, RFC 9110 §10.2.3) up to `MAX_PAUSE_MS`; without one, a 429 pauses
 * for `minDelayAfter429` and a 503 for the retry schedule's next delay.
 */
export function pauseLengthMs(
  result: { readonly statusCode?: number; readonly retryAfter?: string },
  policy: PausePolicy,
  attemptsMade: number,
  now: number,
  random: number,
): number | null {
  if (result.statusCode !== 429 && result.statusCode !== 503) return null;
  const asked = parseRetryAfter(result.retryAfter, now);
  if (asked !== undefined) return Math.min(asked, MAX_PAUSE_MS);
  if (result.statusCode === 429) return Math.min(policy.minDelayAfter429Ms, MAX_PAUSE_MS);
  const scheduled = delayBeforeAttempt(policy.retry, attemptsMade, random) ?? policy.retry.schedule[policy.retry.schedule.length - 1]!;
  return Math.min(scheduled, MAX_PAUSE_MS);
}

/** What a result says of its receiver, given the pause it asked for (`pauseLengthMs`). */
export function receiverVerdict(result: { readonly statusCode?: number; readonly aborted?: boolean }, pauseMs: number | null): ReceiverVerdict {
  if (result.aborted) return { kind: 'unsent' };
  if (pauseMs !== null) return { kind: 'pause', ms: pauseMs };
  // No answer or a server error: the receiver is still in trouble. Any other answer means it takes requests again.
  if (result.statusCode === undefined || result.statusCode >= 500) return { kind: 'troubled' };
  return { kind: 'fine' };
}
