/**
 * The public shapes of stored things, and the pure mappings from rows to them.
 * @module
 */
import type { AttemptOutcomeKind, AttemptTable, DeliveryStatus, DeliveryTable, EventRow, EventTable, FreshEventTable, SubscriptionTable } from './schema.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A webhook subscription (django-rest-hooks' `Hook`). */
export interface Subscription {
  readonly id: string;
  /** Who owns it: only this owner's events reach it (unless the event is a `+` / all-owners event). */
  readonly owner: string;
  readonly event: string;
  readonly target: string;
  readonly active: boolean;
  /** `whsec_…`: the Standard Webhooks signing secret. */
  readonly secret: string;
  /** Free-form JSON for custom finders (django-rest-hooks' `AbstractHook` extra fields). */
  readonly metadata: { readonly [key: string]: JsonValue } | null;
  /** Why it was disabled, when it was disabled automatically. */
  readonly disabledReason: string | null;
  /** Deliveries per second it receives at most; null: the configured default (`delivery.maxPerSecondPerSubscription`). */
  readonly maxPerSecond: number | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A rotated-out secret that keeps signing until `expiresAt` (ms), during a rotation's grace period. */
export interface PreviousSecret {
  readonly secret: string;
  readonly expiresAt: number;
}

/** The old secrets stored with a subscription (JSON, or null) that still sign at `now`. */
export function livePreviousSecrets(stored: string | null, now: number): PreviousSecret[] {
  return stored ? (JSON.parse(stored) as PreviousSecret[]).filter((p) => p.expiresAt > now) : [];
}

/** The `hook` part of the envelope: `{ id, event, target }`, in that order, as in django-rest-hooks. */
export interface HookInfo {
  readonly id: string;
  readonly event: string;
  readonly target: string;
}

/** An event as stored in the outbox; what a custom finder receives instead of the live instance. */
export interface StoredEvent {
  readonly id: string;
  readonly name: string;
  readonly model: string | null;
  readonly action: string | null;
  /** The owner whose subscriptions it reaches; `null` when it reaches every owner's. */
  readonly owner: string | null;
  readonly allOwners: boolean;
  /** The serialized instance (or the raw payload), parsed. */
  readonly data: JsonValue;
  readonly createdAt: Date;
}

export interface Attempt {
  readonly id: string;
  readonly number: number;
  readonly startedAt: Date;
  readonly durationMs: number;
  readonly statusCode: number | null;
  readonly responseExcerpt: string | null;
  readonly error: string | null;
  readonly outcome: AttemptOutcomeKind;
}

export interface Delivery {
  readonly id: string;
  readonly eventId: string;
  readonly event: string;
  readonly subscriptionId: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** When the next attempt is due (pending deliveries only). */
  readonly nextAttemptAt: Date | null;
  readonly lastStatusCode: number | null;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface DeliveryWithAttempts extends Delivery {
  readonly attemptLog: readonly Attempt[];
}

// PostgreSQL returns bigint columns as strings; Number() makes both engines agree.
const time = (value: number | string) => new Date(Number(value));

export function toSubscription(row: SubscriptionTable): Subscription {
  return {
    id: row.id,
    owner: row.owner,
    event: row.event,
    target: row.target,
    active: Number(row.active) === 1,
    secret: row.secret,
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Subscription['metadata']),
    disabledReason: row.disabled_reason,
    maxPerSecond: row.max_per_second == null ? null : Number(row.max_per_second),
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
  };
}

/** A fresh event's columns, as every reader of `resthooks_outbox` selects them (`seq` aside). */
export const FRESH_EVENT_COLUMNS = ['id', 'name', 'model', 'action', 'owner', 'all_owners', 'data', 'body', 'created_at'] as const satisfies ReadonlyArray<keyof EventTable>;

/** A fresh event (still in `resthooks_outbox`) as an outbox row: pending, never tried. */
export function freshEventRow(row: Omit<FreshEventTable, 'seq'>): EventRow {
  return { ...row, status: 'pending', error: null, fanout_attempts: 0, finder_failures: 0, next_fanout_at: 0 };
}

export function toStoredEvent(row: Pick<EventTable, 'id' | 'name' | 'model' | 'action' | 'owner' | 'all_owners' | 'data' | 'created_at'>): StoredEvent {
  return {
    id: row.id,
    name: row.name,
    model: row.model,
    action: row.action,
    owner: row.owner,
    allOwners: Number(row.all_owners) === 1,
    data: JSON.parse(row.data) as JsonValue,
    createdAt: time(row.created_at),
  };
}

export function toDelivery(row: DeliveryTable & { event_name: string }): Delivery {
  return {
    id: row.id,
    eventId: row.event_id,
    event: row.event_name,
    subscriptionId: row.subscription_id,
    status: row.status,
    attempts: Number(row.attempts),
    nextAttemptAt: row.status === 'pending' ? time(row.due_at) : null,
    lastStatusCode: row.last_status_code === null ? null : Number(row.last_status_code),
    lastError: row.last_error,
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
  };
}

export function toAttempt(row: AttemptTable): Attempt {
  return {
    id: row.id,
    number: Number(row.number),
    startedAt: time(row.started_at),
    durationMs: Number(row.duration_ms),
    statusCode: row.status_code === null ? null : Number(row.status_code),
    responseExcerpt: row.response_excerpt,
    error: row.error,
    outcome: row.outcome,
  };
}
