/**
 * One error family with stable string codes, so callers (and the REST API) can branch on
 * `err.code` instead of parsing messages. Messages say what to do next.
 * @module
 */

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
  | 'migration_required';

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
  constructor(code: ResthooksErrorCode, message: string, field?: string) {
    super(code, message);
    this.name = 'ValidationError';
    this.field = field;
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
  constructor(message = 'The resthooks tables do not exist yet. Run `resthooks migrate`, call `migrate(store)`, or leave `migrate` on (the default) so `hooks.start()` creates them.') {
    super('migration_required', message);
    this.name = 'MigrationRequiredError';
  }
}
