/**
 * Core records → the API's JSON. Pure; the shapes are `schemas.ts`'s.
 * @module
 */
import type { Attempt, DeliveryWithAttempts, Subscription } from '../store/records.js';
import type { AttemptJson, DeliveryJson, SubscriptionJson } from './schemas.js';

/** Exactly `{id, event, target, active, secret, createdAt, updatedAt}`, plus `disabledReason` when disabled and `maxPerSecond` when set. */
export function subscriptionJson(s: Subscription): SubscriptionJson {
  const json: SubscriptionJson = {
    id: s.id,
    event: s.event,
    target: s.target,
    active: s.active,
    secret: s.secret,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
  if (s.disabledReason !== null) json.disabledReason = s.disabledReason;
  if (s.maxPerSecond !== null) json.maxPerSecond = s.maxPerSecond;
  return json;
}

export function deliveryJson(d: DeliveryWithAttempts): DeliveryJson {
  return {
    id: d.id,
    eventId: d.eventId,
    event: d.event,
    subscriptionId: d.subscriptionId,
    status: d.status,
    nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
    attempts: d.attemptLog.map(attemptJson),
  };
}

function attemptJson(a: Attempt): AttemptJson {
  return {
    id: a.id,
    number: a.number,
    startedAt: a.startedAt.toISOString(),
    durationMs: a.durationMs,
    statusCode: a.statusCode,
    responseExcerpt: a.responseExcerpt,
    error: a.error,
    outcome: a.outcome,
  };
}
