/**
 * The same-database probe an ORM adapter runs once at attach time, to choose between writing outbox
 * rows in the app's transactions and appending them after each commit.
 * @module
 */
import type { CompiledStatement } from './host-executor.js';

/**
 * Statements compiled by the store for its own dialect. Run `insert` on the app's connection (outside
 * any transaction), ask `seen()`, then run `remove`: if the store sees the row the app's connection
 * wrote, the two share one database. The row is stored as already handled, so the dispatcher never
 * picks it up, even in the moment it exists.
 */
export interface OutboxProbe {
  readonly insert: CompiledStatement;
  readonly remove: CompiledStatement;
  /** Whether the store's own connection sees the row `insert` wrote. */
  seen(): Promise<boolean>;
}
