import type { Dialect } from 'kysely';
import type { Logger } from '../logger.js';
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
  /**
   * A whole array binds as one parameter (`unnest($1::text[], …)`), so a batch of rows is one statement,
   * parsed and planned once, whatever its size. PostgreSQL plans every statement it is sent, and a
   * statement per row made its CPU the bottleneck. SQLite has no array type, and its per-row statements
   * are prepared once and run in-process, so it keeps them.
   */
  readonly supportsArrayParameters: boolean;
  /**
   * Fresh events are appended to `resthooks_outbox` (one B-tree) and moved into `resthooks_events` at
   * fan-out. On SQLite an autocommit INSERT costs about one WAL page per B-tree it touches, so the write
   * path drops from three B-trees to one. On PostgreSQL a save's cost is mostly its round trip and its
   * commit's flush, which the split shortens less, while the move would add a delete and a second heap
   * row per event to the fan-out (and dead tuples for vacuum in a table every save writes): it keeps
   * writing `resthooks_events` until the whole trade is measured. Readers read both tables either way.
   */
  readonly appendsFreshEvents: boolean;
  /**
   * A dispatcher pass with the default finder is one statement: it reads the due events and their
   * subscriptions itself, marks the events done and inserts their deliveries claimed, and returns
   * what the queue needs. On PostgreSQL every pass would otherwise be three round trips (events,
   * subscriptions, fan-out), each planned and waited for while the events trickle in one or two per
   * pass. SQLite runs in-process, where a round trip costs nothing. Absent: false.
   */
  readonly fansOutInOneStatement?: boolean;
  /**
   * While events trickle in, how long (ms) the next fan-out pass and a small batch of records wait for
   * more, so that one statement and one commit serve several. On PostgreSQL each is a round trip and a
   * commit that waits for the disk, and a pass that finds the one event saved since the last made about
   * two commits per delivery beside the save's own. SQLite commits in-process for a fraction of that,
   * and its save-to-receive latency is a target: absent (0), nothing waits.
   */
  readonly batchWindowMs?: number;
  /**
   * A subscription's deliveries are found through `resthooks_subscription_history` (migration 0008),
   * caught up with the deliveries table in sorted batches, plus the deliveries inserted since the last
   * batch, read by rowid; the fan-out writes no per-subscription index. On SQLite that index cost one WAL
   * page per subscription per fan-out transaction, ~3/4 of the fan-out's pages at 100 subscriptions per
   * event. PostgreSQL keeps its index (its fan-out is one set-based statement, and a table has no stable
   * rowid to mark a tail by). Absent: false.
   */
  readonly catchesUpSubscriptionHistory?: boolean;
}

/**
 * A compiled statement the dialect may keep prepared on each connection under `name` (PostgreSQL:
 * parsed and planned once per connection instead of once per run). Only for SQL whose text never
 * changes: the name stands for the text.
 */
export interface StoreStatement extends CompiledStatement {
  readonly name?: string;
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
  executeBatch(queries: readonly StoreStatement[]): Promise<StatementResult[]>;
  /**
   * Runs a read and returns each row as an array of its values, in the order of the select list. Where a
   * driver can return rows so (better-sqlite3's raw mode), that is one object fewer per row, and no
   * column names looked up in it: the fan-out reads one fresh event per delivery at one subscription
   * each. Absent: the store reads objects.
   */
  readArrays?(query: CompiledStatement): Promise<unknown[][]>;
  /**
   * The error says the database could not run the statements at all (busy or locked, unreachable,
   * restarting, out of disk), not that it refused these rows: the same write may succeed as it is
   * once the database is back, so it is retried whole rather than taken apart.
   */
  isUnavailable(error: unknown): boolean;
  /** Work the engine does beside its connection while hooks run (SQLite: the WAL checkpointer thread). */
  readonly maintenance?: StoreMaintenance;
}

/** Started by `hooks.start()`, stopped by `hooks.stop()` and when the store closes. */
export interface StoreMaintenance {
  /** Starts the work if it is not running; what goes wrong with it is logged to `logger`. */
  start(logger: Logger): void;
  /** Resolves once nothing of it runs any more. */
  stop(): Promise<void>;
}
