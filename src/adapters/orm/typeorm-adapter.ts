/**
 * `resthooks/typeorm`: fires `created` / `updated` / `deleted` from TypeORM's entity events, after
 * the transaction commits, and nothing when it rolls back. Where the resthooks store lives in the
 * app's own database, the outbox row is written in the app's transaction (commits with it, atomically).
 *
 * Imports TypeORM for types only (it is an optional peer): nothing here loads it at run time.
 * @module
 */
import type {
  DataSource,
  EntityMetadata,
  EntitySubscriberInterface,
  InsertEvent,
  QueryRunner,
  RecoverEvent,
  RemoveEvent,
  SoftRemoveEvent,
  TransactionCommitEvent,
  TransactionRollbackEvent,
  TransactionStartEvent,
  UpdateEvent,
} from 'typeorm';
import { ResthooksError } from '../../errors.js';
import type { Hooks, HostExecutor, JsonValue, Logger } from '../../index.js';

/**
 * Where the outbox row of a TypeORM write goes.
 * - `'transaction'`: into the app's transaction, just before it commits (through its query runner), so
 *   the row commits or rolls back with the write; the dispatcher is woken after the commit. Needs the
 *   resthooks store in the same database as the app. An event that cannot be written refuses the
 *   COMMIT: the transaction rolls back and the app's `save()` / `transaction()` rejects.
 * - `'after-commit'`: appended through the store once the transaction has committed. Works with any
 *   store, but not atomically: a crash between the commit and the append, or an append that fails,
 *   loses that event (the write is kept; a failed append is logged).
 */
export type TypeormOutboxMode = 'transaction' | 'after-commit';

export interface TypeormHooksOptions {
  /**
   * `'auto'` (default): `'transaction'` when a probe at attach time proves that the app's database
   * and the resthooks store are the same database, else `'after-commit'`. Forcing `'transaction'`
   * skips the probe; if the outbox is not in fact in the app's database, every transaction that writes
   * a watched entity is then refused (see {@link TypeormOutboxMode}).
   */
  outbox?: TypeormOutboxMode | 'auto';
  /**
   * Soft deletes (`softRemove()`) fire `deleted` and `recover()` fires `created`, as the app sees
   * them (default true). With false both fire `updated`, with the delete-date column in `changes`.
   */
  softDelete?: boolean;
  /** Add `changes` (the changed properties) beside `data` in `updated` payloads. Default true. */
  changes?: boolean;
  /** Where the adapter reports its outbox mode and runner resets (pino's call shape). Default: silent. */
  logger?: Logger;
}

export interface TypeormHooks {
  /** The outbox mode chosen at attach time. */
  readonly mode: TypeormOutboxMode;
  /** Removes the subscriber from the data source. Events still buffered in open transactions are dropped. */
  detach(): void;
}

type Action = 'created' | 'updated' | 'deleted';

interface PendingEvent {
  /** The transaction depth (1 = outermost) at which the write happened, so a rolled-back savepoint drops it. */
  depth: number;
  readonly model: string;
  readonly action: Action;
  readonly instance: object;
  readonly extra: { changes: JsonValue[] } | undefined;
}

interface TransactionState {
  events: PendingEvent[];
  /** Rows were written through this transaction: wake the dispatcher once it commits. */
  wrote: boolean;
  /** The transaction is being rolled back: no statement of ours may follow its ROLLBACK (it would autocommit). */
  aborted: boolean;
}

/** The code of a failed outbox write, as the core's own error for one carries it. */
const OUTBOX_WRITE_FAILED = 'outbox_write_failed';

/** The event the probe writes (and deletes at once); never declared, never fanned out. */
const PROBE_EVENT = 'resthooks.typeorm-probe';

/**
 * Attaches resthooks to a TypeORM `DataSource`: every `save()` / `insert()` / `remove()` /
 * `softRemove()` of an entity named in the events map fires its event once the transaction commits.
 * The model name is the entity's name (`EntitySchema` `name`, or the class name). Call it after
 * `dataSource.initialize()` and `hooks.start()`, before the app writes.
 * @example
 * import { DataSource } from 'typeorm';
 * import { createHooks, postgresStore } from 'resthooks';
 * import { attachTypeorm } from 'resthooks/typeorm';
 *
 * const hooks = createHooks({ events: { 'book.added': 'Book.created', 'book.changed': 'Book.updated+' }, store: postgresStore(pool) });
 * await hooks.start();
 * await attachTypeorm(dataSource, hooks); // outbox rows commit with the app's writes when both share the database
 * await dataSource.manager.transaction((m) => m.save(Book, { title: 'Dune', ownerId: 'alice' })); // book.added, after COMMIT
 */
export async function attachTypeorm(
  dataSource: Pick<DataSource, 'subscribers' | 'query'>,
  hooks: Hooks,
  options: TypeormHooksOptions = {},
): Promise<TypeormHooks> {
  const logger = options.logger;
  const subscriber = new ResthooksSubscriber(hooks, watchedModels(hooks), options.softDelete !== false, options.changes !== false, logger);
  // Pushed before the first await: no write made while the probe runs is missed (it goes after commit).
  dataSource.subscribers.push(subscriber);
  const wanted = options.outbox ?? 'auto';
  subscriber.mode =
    wanted !== 'auto'
      ? wanted
      : await probeSameDatabase(dataSource, hooks, logger).catch((error: unknown) => {
          logger?.warn({ err: errorMessage(error) }, 'resthooks/typeorm: the outbox probe failed; appending after commit');
          return 'after-commit' as const;
        });
  logger?.info({ outbox: subscriber.mode }, `resthooks/typeorm: outbox rows are written ${subscriber.mode === 'transaction' ? "in the app's transactions" : 'after each commit'}`);
  return {
    get mode() {
      return subscriber.mode;
    },
    detach() {
      const at = dataSource.subscribers.indexOf(subscriber);
      if (at >= 0) dataSource.subscribers.splice(at, 1);
    },
  };
}

/** `{ Book: Set('created', 'updated') }`: only these entities and actions cost anything on a write. */
function watchedModels(hooks: Hooks): ReadonlyMap<string, ReadonlySet<string>> {
  const table = hooks.eventActions();
  return new Map(Object.entries(table).map(([model, actions]) => [model, new Set(Object.keys(actions))]));
}

class ResthooksSubscriber implements EntitySubscriberInterface {
  mode: TypeormOutboxMode = 'after-commit';
  readonly #hooks: Hooks;
  readonly #models: ReadonlyMap<string, ReadonlySet<string>>;
  readonly #softDelete: boolean;
  readonly #changes: boolean;
  readonly #logger: Logger | undefined;
  // Per query runner, i.e. per transaction (TypeORM's SQLite drivers share one runner, and so one state).
  readonly #transactions = new WeakMap<QueryRunner, TransactionState>();

  constructor(hooks: Hooks, models: ReadonlyMap<string, ReadonlySet<string>>, softDelete: boolean, changes: boolean, logger: Logger | undefined) {
    this.#hooks = hooks;
    this.#models = models;
    this.#softDelete = softDelete;
    this.#changes = changes;
    this.#logger = logger;
  }

  // ── entity events: route, snapshot, buffer ────────────────────────────────────────────────────

  afterInsert(event: InsertEvent<object>): Promise<void> | void {
    return this.#record(event.queryRunner, event.metadata, 'created', () => snapshot(event.entity, undefined, event.entityId));
  }

  afterUpdate(event: UpdateEvent<object>): Promise<void> | void {
    // `update()` / QueryBuilder updates also call afterUpdate, with only the SET values and no row:
    // which rows changed is unknown, so nothing can be fired truthfully (docs/typeorm.md).
    if (!event.databaseEntity || !event.entity) return;
    const entity = event.entity;
    const changes = this.#changes ? () => changedProperties(event) : undefined;
    return this.#record(event.queryRunner, event.metadata, 'updated', () => snapshot(entity, event.databaseEntity, undefined), changes);
  }

  afterRemove(event: RemoveEvent<object>): Promise<void> | void {
    // `delete()` / QueryBuilder deletes call afterRemove with no entity at all: skipped (docs/typeorm.md).
    if (!event.entity && !event.databaseEntity) return;
    // TypeORM has already cleared the primary key on `entity`: it comes back from `entityId` / `databaseEntity`.
    return this.#record(event.queryRunner, event.metadata, 'deleted', () => snapshot(event.entity, event.databaseEntity, event.entityId));
  }

  afterSoftRemove(event: SoftRemoveEvent<object>): Promise<void> | void {
    return this.#softDeleteEvent(event, 'deleted');
  }

  afterRecover(event: RecoverEvent<object>): Promise<void> | void {
    return this.#softDeleteEvent(event, 'created');
  }

  /** A soft delete or recover fires `action` as the app sees it, or with `softDelete: false` an update of the delete-date column. */
  #softDeleteEvent(event: SoftRemoveEvent<object> | RecoverEvent<object>, action: 'deleted' | 'created'): Promise<void> | void {
    if (!event.entity && !event.databaseEntity) return;
    const changes = this.#softDelete || !this.#changes ? undefined : () => deleteDateProperty(event.metadata);
    return this.#record(event.queryRunner, event.metadata, this.#softDelete ? action : 'updated', () => snapshot(event.entity, event.databaseEntity, event.entityId), changes);
  }

  // `take` and `changes` are thunks: most writes are of models or actions no event names, and cost nothing.
  #record(runner: QueryRunner, metadata: EntityMetadata, action: Action, take: () => object, changes?: () => JsonValue[] | undefined): Promise<void> | void {
    const model = metadata.name || metadata.targetName;
    if (!this.#models.get(model)?.has(action)) return;
    // On a runner left stale by a failed COMMIT, this write has just autocommitted: publish it at once.
    this.#resync(runner, false);
    const changed = changes?.();
    // A snapshot now: the data is the entity as this write left it, even if the app changes it before COMMIT.
    const pending: PendingEvent = { depth: depthOf(runner), model, action, instance: take(), extra: changed && { changes: changed } };
    if (!runner.isTransactionActive) return this.#publish([pending]);
    let state = this.#transactions.get(runner);
    if (!state) this.#transactions.set(runner, (state = { events: [], wrote: false, aborted: false }));
    state.events.push(pending);
  }

  // ── transaction events: write before commit, publish after, drop on rollback ──────────────────

  beforeTransactionStart(event: TransactionStartEvent): void {
    // TypeORM picks BEGIN or SAVEPOINT from its depth only after this event: resynced first, a runner
    // left stale by a failed COMMIT opens a real transaction again instead of a savepoint of a dead one.
    this.#resync(event.queryRunner, true);
  }

  afterTransactionStart(event: TransactionStartEvent): void {
    // A new outermost transaction: whatever is left from one that ended without a commit or rollback
    // event (a failed COMMIT the app did not roll back) must not leak into it.
    if (depthOf(event.queryRunner) === 1) this.#transactions.delete(event.queryRunner);
  }

  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const runner = event.queryRunner;
    // A COMMIT on a stale runner fails ("no transaction is active"): the events held for the
    // transaction SQLite already rolled back must not be written now, outside of any transaction.
    this.#resync(runner, false);
    const state = this.#transactions.get(runner);
    // Only the outermost COMMIT; releasing a savepoint commits nothing yet.
    if (this.mode !== 'transaction' || !state || state.events.length === 0 || depthOf(runner) !== 1) return;
    const batch = state.events;
    state.events = [];
    let sqlError: unknown;
    // TypeORM starts every subscriber's beforeTransactionCommit at once and rolls back as soon as one
    // fails, without waiting for the others: once the rollback has begun, a statement of ours would run
    // after ROLLBACK, outside any transaction, and commit on its own. So each one checks first.
    const tx: HostExecutor = async (sql, parameters) => {
      if (state.aborted) throw new Error('the transaction is being rolled back');
      try {
        await runner.query(sql, [...parameters]);
      } catch (error) {
        sqlError ??= error;
        throw error;
      }
    };
    for (const pending of batch) {
      let failure: unknown;
      try {
        const result = await this.#hooks.model(pending.model, pending.action, pending.instance, pending.extra ? { tx, extra: pending.extra } : { tx });
        if (result.status === 'failed') failure = result.error;
      } catch (error) {
        failure = error;
      }
      if (state.aborted) return; // rolled back by someone else: the events go with it
      failure ??= sqlError;
      if (failure !== undefined) {
        // Committing now would keep the app's write without its event: the write is refused instead.
        throw outboxWriteFailure(this.#hooks.eventActions()[pending.model]?.[pending.action]?.[0] ?? `${pending.model}.${pending.action}`, failure);
      }
    }
    state.wrote = true;
  }

  async afterTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const runner = event.queryRunner;
    const state = this.#transactions.get(runner);
    if (!state) return;
    const depth = depthOf(runner);
    if (depth > 0) {
      // A savepoint was released: its events now belong to the enclosing transaction.
      for (const pending of state.events) pending.depth = Math.min(pending.depth, depth);
      return;
    }
    this.#transactions.delete(runner);
    if (state.wrote) this.#hooks.notify();
    if (state.events.length > 0) await this.#publish(state.events);
  }

  beforeTransactionRollback(event: TransactionRollbackEvent): void {
    // After a COMMIT that SQLite answered by rolling back itself, TypeORM's ROLLBACK is about to fail and
    // no afterTransactionRollback will follow: resynced now, the runner and our state end clean anyway.
    if (this.#resync(event.queryRunner, false)) return;
    const state = this.#transactions.get(event.queryRunner);
    if (state && depthOf(event.queryRunner) === 1) state.aborted = true;
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    const runner = event.queryRunner;
    const state = this.#transactions.get(runner);
    if (!state) return;
    const depth = depthOf(runner);
    if (depth === 0) this.#transactions.delete(runner);
    // Rolled back to a savepoint: only the writes made inside it are gone.
    else state.events = state.events.filter((pending) => pending.depth <= depth);
  }

  /**
   * Brings a runner that TypeORM still believes to be inside a transaction, though the database has
   * none open, back to no transaction, and drops the events held for it: they were rolled back.
   *
   * TypeORM's SQLite runners set `isTransactionActive` and `transactionDepth` back only once COMMIT or
   * ROLLBACK succeeds. A COMMIT refused with SQLITE_FULL (disk full) or SQLITE_IOERR makes SQLite roll
   * the whole transaction back by itself, and the ROLLBACK that follows then fails ("no transaction is
   * active"): the data source's one shared runner would believe, for good, that it is inside a
   * transaction. Every later write would autocommit with no commit event, so its event would wait for
   * one forever, and every later `transaction()` would become a savepoint. Only drivers that tell
   * (better-sqlite3's `inTransaction`) can be checked; `starting`: called from inside
   * `startTransaction()`, which has already set `isTransactionActive` for the transaction it opens.
   * Returns whether the runner was stale.
   */
  #resync(runner: QueryRunner, starting: boolean): boolean {
    if (!runner.isTransactionActive || depthOf(runner) === 0 || databaseInTransaction(runner) !== false) return false;
    const typeorm = runner as unknown as { isTransactionActive: boolean; transactionDepth: number };
    typeorm.transactionDepth = 0;
    if (!starting) typeorm.isTransactionActive = false;
    this.#transactions.delete(runner);
    this.#logger?.warn({}, 'resthooks/typeorm: the query runner still counted a transaction that the database had already rolled back (a failed COMMIT, e.g. disk full); its events were dropped with it and the runner is reset');
    return true;
  }

  /** After a commit, or at once for a write outside a transaction: through the store. Never throws. */
  async #publish(events: readonly PendingEvent[]): Promise<void> {
    for (const pending of events) {
      await this.#hooks.model(pending.model, pending.action, pending.instance, pending.extra ? { extra: pending.extra } : {});
    }
  }
}

/**
 * Proves that the app's database is the store's: an event row is written through the app's connection,
 * then must be visible through the store's (it is deleted again at once). Any failure means no.
 */
async function probeSameDatabase(dataSource: Pick<DataSource, 'query'>, hooks: Hooks, logger: Logger | undefined): Promise<TypeormOutboxMode> {
  const owner = `resthooks-probe-${Math.random().toString(36).slice(2)}`;
  const statements: Array<{ sql: string; parameters: unknown[] }> = [];
  // The store compiles the row for its own dialect; the capturing executor runs nothing.
  const result = await hooks.raw(PROBE_EVENT, {}, { trust: true, owner, tx: (sql, parameters) => void statements.push({ sql, parameters: [...parameters] }) });
  const insert = statements[0];
  // Stored as 'done', the dispatcher's fan-out never picks the probe up, even in the moment it exists.
  const status = insert?.parameters.indexOf('pending') ?? -1;
  if (result.status !== 'queued' || !insert || status < 0) return 'after-commit';
  const parameters = insert.parameters.with(status, 'done');
  try {
    await dataSource.query(insert.sql, parameters);
  } catch (error) {
    logger?.debug({ err: errorMessage(error) }, "resthooks/typeorm: the app's database has no resthooks outbox (or another SQL dialect)");
    return 'after-commit';
  }
  let seen = false;
  try {
    seen = (await hooks.recentEvents(PROBE_EVENT, { owner, limit: 1 })).some((stored) => stored.id === result.eventId);
  } finally {
    const table = /^\s*insert\s+into\s+((?:"[^"]+"\.)?"[^"]+"|\S+)/i.exec(insert.sql)?.[1] ?? 'resthooks_events';
    const placeholder = insert.sql.includes('$1') ? '$1' : '?';
    await dataSource.query(`delete from ${table} where id = ${placeholder}`, [result.eventId]).catch(() => undefined);
  }
  if (!seen) logger?.warn({}, "resthooks/typeorm: the app's database has resthooks tables, but the store uses another database; appending after commit");
  return seen ? 'transaction' : 'after-commit';
}

/** Whether the database has a transaction open on the runner's connection; undefined when the driver cannot tell. */
function databaseInTransaction(runner: QueryRunner): boolean | undefined {
  // better-sqlite3: the SQLite drivers' one connection, a `Database` with an `inTransaction` getter.
  const connection: unknown = (runner.dataSource?.driver as { databaseConnection?: unknown } | undefined)?.databaseConnection;
  const open = typeof connection === 'object' && connection !== null ? (connection as { inTransaction?: unknown }).inTransaction : undefined;
  return typeof open === 'boolean' ? open : undefined;
}

/**
 * The error that refuses the app's COMMIT when an event cannot be written in its transaction. The core's
 * own error for a failed write through `tx` (code `outbox_write_failed`) is passed on as it is.
 */
function outboxWriteFailure(event: string, failure: unknown): Error {
  if (failure instanceof ResthooksError && (failure.code as string) === OUTBOX_WRITE_FAILED) return failure;
  const message = `resthooks/typeorm: could not record "${event}" in the app's transaction (${errorMessage(failure)}), so the transaction is rolled back: a write and its event commit together or not at all`;
  return Object.assign(new Error(message, { cause: failure }), { code: OUTBOX_WRITE_FAILED });
}

/** `transactionDepth` is protected in TypeORM's types but public at run time on every SQL query runner. */
function depthOf(runner: QueryRunner): number {
  const depth = (runner as unknown as { transactionDepth?: unknown }).transactionDepth;
  return typeof depth === 'number' ? depth : runner.isTransactionActive ? 1 : 0;
}

/**
 * A shallow copy (same prototype, so `toJSON` / `serializeHook` still apply) of the entity, with what it
 * lacks filled in from the database row and the id map: a partial `save({ id, title })` or a `remove()`
 * whose entity lost its primary key still carries the whole row and the id.
 */
function snapshot(entity: object | undefined, databaseEntity: object | undefined, ids: unknown): object {
  const base = entity ?? databaseEntity ?? {};
  const copy = Object.assign(Object.create(Object.getPrototypeOf(base) as object | null) as Record<string, unknown>, base);
  for (const source of [databaseEntity, ids]) {
    if (source === null || typeof source !== 'object') continue;
    for (const [key, value] of Object.entries(source)) if (copy[key] === undefined) copy[key] = value;
  }
  return copy;
}

function changedProperties(event: UpdateEvent<object>): JsonValue[] {
  const paths = [...event.updatedColumns.map((column) => column.propertyPath), ...event.updatedRelations.map((relation) => relation.propertyPath)];
  return [...new Set(paths)];
}

function deleteDateProperty(metadata: EntityMetadata): JsonValue[] | undefined {
  const column = metadata.deleteDateColumn;
  return column ? [column.propertyPath] : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
