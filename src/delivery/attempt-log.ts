/**
 * What a finished attempt tells the logs: a failure that will be retried at warn, one given up on at
 * error, each with a `DeliveryAttemptError` (and the network error as its `cause`, stack kept). Nothing
 * secret goes out: no headers, no signature, no body, and the target without credentials or query string,
 * where receivers often keep a token.
 * @module
 */
import { DeliveryAttemptError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import type { HookInfo } from '../store/records.js';
import type { AttemptOutcome } from './outcome.js';
import type { SendResult } from './sender.js';

export function logAttempt(logger: Logger, claim: ClaimedDelivery, hook: HookInfo, result: SendResult, outcome: AttemptOutcome): void {
  if (outcome.kind === 'delivered' || outcome.kind === 'gone') return;
  const target = publicTarget(hook.target);
  const why = result.error ?? `HTTP ${result.statusCode}`;
  const fields = { deliveryId: claim.id, subscriptionId: hook.id, event: hook.event, attempt: claim.attempt, target, statusCode: result.statusCode ?? null };
  if (outcome.kind === 'retry') {
    const err = new DeliveryAttemptError(claim.id, claim.attempt, target, why, result.statusCode, result.cause);
    const retryInMs = Math.max(0, outcome.at - Date.now());
    logger.warn({ ...fields, retryInMs, err }, `resthooks: delivery attempt failed (${why}); retrying in ${retryInMs} ms`);
    return;
  }
  const err = new DeliveryAttemptError(claim.id, claim.attempt, target, `${why}; ${outcome.reason}`, result.statusCode, result.cause);
  logger.error({ ...fields, err }, `resthooks: delivery failed for good (${why}; ${outcome.reason})`);
}

/**
 * A target as logs and traces show it: scheme, host, port and path, without the credentials and the query
 * string (where webhook URLs often carry tokens) or the fragment; `invalid` for one that does not parse.
 */
export function publicTarget(target: string, invalid = '(invalid URL)'): string {
  try {
    const url = new URL(target);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return invalid;
  }
}
