/**
 * What one attempt's result means for the delivery: delivered, retry at a time, gone, or failed.
 * Pure: the caller passes the clock and the random number.
 * @module
 */
import { delayBeforeAttempt, type ResolvedRetryPolicy } from './retry.js';

/** What the sender (or a custom deliverer) observed. */
export interface AttemptResult {
  /** The HTTP status, when a response arrived. */
  readonly statusCode?: number;
  /** The `Retry-After` response header, verbatim. */
  readonly retryAfter?: string;
  /** Why no response arrived (timeout, refused connection, reset, …). */
  readonly error?: string;
}

export type AttemptOutcome =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'retry'; readonly at: number }
  | { readonly kind: 'gone' }
  | { readonly kind: 'failed'; readonly reason: string };

export interface OutcomePolicy {
  readonly retry: ResolvedRetryPolicy;
  /**
   * Whether a response status that is neither 2xx nor 410 is worth retrying. Default: always
   * (the REST Hooks rule: a 401 or 404 can be a receiver's passing misconfiguration).
   */
  readonly retryOn: (statusCode: number) => boolean;
  /** Lowest delay after a 429, whatever the schedule says. Default 60 s. */
  readonly minDelayAfter429Ms: number;
}

/**
 * `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Returns milliseconds
 * from `now`, or undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function classifyAttempt(result: AttemptResult, attemptsMade: number, policy: OutcomePolicy, now: number, random: number): AttemptOutcome {
  const status = result.statusCode;
  if (status !== undefined && status >= 200 && status < 300) return { kind: 'delivered' };
  // REST Hooks: 410 Gone means the receiver unsubscribed; no retry, the subscription goes.
  if (status === 410) return { kind: 'gone' };
  if (status !== undefined && !isAlwaysRetried(status) && !policy.retryOn(status)) {
    return { kind: 'failed', reason: `receiver answered ${status}, which is not retried` };
  }
  let delay = delayBeforeAttempt(policy.retry, attemptsMade, random);
  if (delay === null) return { kind: 'failed', reason: `gave up after ${attemptsMade} attempts` };
  const asked = parseRetryAfter(result.retryAfter, now);
  // The receiver's wish is honoured, but only within [scheduled, 2 × scheduled], so a hostile or
  // buggy Retry-After can neither hammer the receiver nor park a delivery for days.
  if (asked !== undefined) delay = Math.min(Math.max(asked, delay), 2 * delay);
  if (status === 429) delay = Math.max(delay, policy.minDelayAfter429Ms);
  return { kind: 'retry', at: now + delay };
}

// RFC 9110: 408 and 429 are temporary by definition, as are server errors.
function isAlwaysRetried(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}
