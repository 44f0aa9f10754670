/**
 * What an ORM adapter supplies to the outbox bridge (outbox-bridge.ts), and what it gets back. An
 * adapter turns its ORM's own events into {@link PendingWrite}s and names the transaction they happen
 * in as a {@link HostTransaction}; everything about transactions (buffering, the outbox write before
 * COMMIT, rollbacks, savepoints, the wake-up after COMMIT) is the bridge's.
 *
 * Types only: no ORM, driver or framework is imported here or by the bridge.
 * @module
 */
import type { HostExecutor } from '../../store/host-executor.js';
import type { SyncHostExecutor } from '../../triggers/triggers.js';

/**
 * Where the outbox row of an ORM write goes.
 * - `'transaction'`: into the app's transaction, just before it commits, so the row commits or rolls
 *   back with the write; the dispatcher is woken after the commit. Needs the resthooks store in the
 *   app's database. An event that cannot be written there fails the app's commit (`outbox_write_failed`).
 * - `'after-commit'`: appended through the store once the transaction has committed. Works with any
 *   store, but is not atomic: a crash between the commit and the append, or an append that fails,
 *   loses that event (the write is kept; a failed append is logged).
 */
export type OutboxMode = 'transaction' | 'after-commit';

/** The actions an ORM adapter fires by itself. Custom actions go through `hooks.action()`. */
export type ModelAction = 'created' | 'updated' | 'deleted';

/**
 * One transaction of the app, as the bridge sees it. The same `key` for every nesting level of one
 * outermost transaction, so that a savepoint's writes join the buffer of the transaction around it.
 */
export interface HostTransaction {
  /** The outermost transaction's identity: the same object from BEGIN to COMMIT (TypeORM: its QueryRunner). */
  readonly key: object;
  /**
   * The nesting level now: 1 = the outermost transaction, n = inside n−1 savepoints, 0 = no transaction
   * (ended). Read by the bridge at each call, so it must be live: during a commit or rollback event,
   * before it the level being ended, after it the level around it.
   */
  depth(): number;
  /** Runs one statement on the app's connection, inside this transaction. */
  readonly execute: HostExecutor;
  /**
   * An executor that has run its statement when it returns, if the transaction can offer one now (Prisma on
   * better-sqlite3): the bridge then records the events with `hooks.modelSync`, without `model()`'s awaits.
   */
  readonly executeSync?: () => SyncHostExecutor | undefined;
}

/** For ORMs whose transactions the bridge wraps (`around`): the level is counted by the bridge itself. */
export type HostConnection = Omit<HostTransaction, 'depth'>;

/** One write of a watched model, as the ORM reported it. */
export interface PendingWrite {
  /** The model's name as the events map spells it, from the ORM's metadata (never a class name alone). */
  readonly model: string;
  readonly action: ModelAction;
  /**
   * The row as this write left it: a snapshot taken now, so a later change in the same transaction does
   * not show in this event's data.
   */
  readonly instance: object;
  /** For `updated`: the names of the changed fields, sent beside `data` as `changes`, when the ORM knows them. */
  readonly changes?: readonly string[];
}
