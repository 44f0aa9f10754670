/**
 * One error family with stable string codes, so callers (and the REST API) can branch on
 * `err.code` instead of parsing messages. Messages say what to do next.
 * @module
 */

import type { StandardSchemaIssue } from './config/standard-schema.js';

export type ResthooksErrorCode =
  | 'config_invalid'
  | 'unknown_event'
  | 'invalid_target'
  | 'target_refused'
  | 'target_unresolvable'
  | 'invalid_field'
  | 'payload_too_large'
  | 'not_found'
  | 'conflict'
  | 'migration_required'
  | 'serialization_failed'
  | 'owner_failed'
  | 'outbox_write_failed'
  | 'payload_invalid'
  | 'delivery_failed'
  | 'secret_unreadable';

export class ResthooksError extends Error {
  readonly code: ResthooksErrorCode;
  constructor(code: ResthooksErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ResthooksError';
    this.code = code;
  }
}

/** Thrown by `createHooks()` at start-up for a bad events map or bad options. */
export class ConfigError extends ResthooksError {
  constructor(message: string) {
    super('config_invalid', message);
    this.name = 'ConfigError';
  }
}

/** Bad input from a caller: an unknown event, a bad target URL, a payload too large. Nothing was stored. */
export class ValidationError extends ResthooksError {
  /** The input field at fault, when there is one (`event`, `target`, …). */
  readonly field: string | undefined;
  /** For `payload_invalid`: what the event's schema found wrong (Standard Schema issues). */
  readonly issues: readonly StandardSchemaIssue[] | undefined;
  constructor(code: ResthooksErrorCode, message: string, field?: string, issues?: readonly StandardSchemaIssue[]) {
    super(code, message);
    this.name = 'ValidationError';
    this.field = field;
    this.issues = issues;
  }
}

export class NotFoundError extends ResthooksError {
  constructor(message: string) {
    super('not_found', message);
    this.name = 'NotFoundError';
  }
}

/** The request is valid but the thing it acts on is busy right now (e.g. a retry of a delivery in flight); try again later. */
export class ConflictError extends ResthooksError {
  constructor(message: string) {
    super('conflict', message);
    this.name = 'ConflictError';
  }
}

export class MigrationRequiredError extends ResthooksError {
  /** The migrations the database has not recorded as run, in the order they run; empty when unknown. */
  readonly missing: readonly string[];
  constructor(
    message = 'The resthooks tables do not exist yet. Run `resthooks migrate`, call `migrate(store)`, or leave `migrate` on (the default) so `hooks.start()` creates them.',
    missing: readonly string[] = [],
  ) {
    super('migration_required', message);
    this.name = 'MigrationRequiredError';
    this.missing = missing;
  }
}

/**
 * Thrown by a trigger given `{ tx }` when its event cannot be recorded in that transaction (the outbox
 * write failed, or the event could not be made: serialization, size, owner, per-hook fan-out). Some of the
 * event's rows may already be written through `tx`, and on PostgreSQL the transaction is aborted: the
 * caller must roll back (letting this error leave the transaction callback does it), so that the app's
 * write and its event commit together or not at all. `cause` is the original error.
 */
export class OutboxWriteError extends ResthooksError {
  /** The event that was not recorded. */
  readonly event: string;
  constructor(event: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'outbox_write_failed',
      `Could not record "${event}" in the caller's transaction (${reason}). Roll the transaction back: committing it would keep the write without its event.`,
      { cause },
    );
    this.name = 'OutboxWriteError';
    this.event = event;
  }
}

/**
 * What the logs carry (under `err`) for a failed delivery attempt: which delivery, which attempt, the
 * target without its query string or credentials, and why. `cause` is the network error, when one was thrown.
 */
export class DeliveryAttemptError extends ResthooksError {
  readonly deliveryId: string;
  readonly attempt: number;
  /** The HTTP status, when the receiver answered. */
  readonly statusCode: number | undefined;
  constructor(deliveryId: string, attempt: number, target: string, reason: string, statusCode: number | undefined, cause?: Error) {
    super('delivery_failed', `Attempt ${attempt} of delivery ${deliveryId} to ${target} failed: ${reason}`, cause ? { cause } : undefined);
    this.name = 'DeliveryAttemptError';
    this.deliveryId = deliveryId;
    this.attempt = attempt;
    this.statusCode = statusCode;
  }
}
