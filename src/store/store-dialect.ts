import type { Dialect } from 'kysely';
import type { CompiledStatement } from './host-executor.js';

/** What a compiled statement returns, whatever the engine. */
export interface StatementResult {
  readonly rows: Record<string, unknown>[];
  readonly changes: number;
}

/**
 * Engine differences the store branches on. Named, so each branch says why it exists.
 */
export interface StoreCapabilities {
  /**
   * `FOR UPDATE SKIP LOCKED` lets many workers claim disjoint batches without waiting on each other.
   * SQLite has one writer at a time, so a plain `UPDATE … RETURNING` is already exclusive there.
   */
  readonly supportsSkipLocked: boolean;
}

/**
 * A store dialect is Kysely's `Dialect` (for compiling and for reads) plus one thing Kysely lacks:
 * running several compiled statements atomically without yielding between them, which the store
 * uses for every state transition.
 */
export interface StoreDialect {
  readonly name: 'sqlite' | 'postgres';
  readonly kysely: Dialect;
  readonly capabilities: StoreCapabilities;
  /** Runs the statements in one transaction, in order; all or nothing. */
  executeBatch(queries: readonly CompiledStatement[]): Promise<StatementResult[]>;
  /**
   * The error says the database could not run the statements at all (busy or locked, unreachable,
   * restarting, out of disk), not that it refused these rows: the same write may succeed as it is
   * once the database is back, so it is retried whole rather than taken apart.
   */
  isUnavailable(error: unknown): boolean;
}
