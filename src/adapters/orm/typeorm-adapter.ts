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
import type { Hooks, Logger } from '../../index.js';
import type { HostTransaction, ModelAction, OutboxMode } from './orm-adapter.js';
import { declaredModelName } from '../../triggers/model-name.js';
import { outboxBridge, type OutboxBridge } from './outbox-bridge.js';

/** Where the outbox row of a TypeORM write goes: see {@link OutboxMode}. */
export type TypeormOutboxMode = OutboxMode;

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

/**
 * Attaches resthooks to a TypeORM `DataSource`: every `save()` / `insert()` / `remove()` /
 * `softRemove()` of an entity named in the events map fires its event once the transaction commits.
 * The model name looked up in the events map is, in this order: the name the entity class declares
 * (`static resthooksModel = 'Book'`, which minifiers leave alone), the entity's metadata name (an
 * `EntitySchema`'s `name`, or a decorated entity's class name, which a minifier renames), its table name
 * (`@Entity('books')`). Call it after
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
  const bridge = outboxBridge(hooks, { adapter: 'resthooks/typeorm', logger: options.logger });
  const subscriber = new ResthooksSubscriber(bridge, options.softDelete !== false, options.changes !== false, options.logger);
  // Pushed before the first await: no write made while the probe runs is missed (it goes after commit).
  dataSource.subscribers.push(subscriber);
  await bridge.chooseMode(options.outbox ?? 'auto', (statement) => dataSource.query(statement.sql, [...statement.parameters]));
  return {
    get mode() {
      return bridge.mode;
    },
    detach() {
      const at = dataSource.subscribers.indexOf(subscriber);
      if (at >= 0) dataSource.subscribers.splice(at, 1);
    },
  };
}

class ResthooksSubscriber implements EntitySubscriberInterface {
  readonly #bridge: OutboxBridge;
  readonly #softDelete: boolean;
  readonly #changes: boolean;
  readonly #logger: Logger | undefined;
  // One per query runner, i.e. per transaction (TypeORM's SQLite drivers share one runner).
  readonly #transactions = new WeakMap<QueryRunner, HostTransaction>();
  /** The names the events map may know each entity by, most explicit first. */
  readonly #names = new WeakMap<EntityMetadata, readonly string[]>();

  constructor(bridge: OutboxBridge, softDelete: boolean, changes: boolean, logger: Logger | undefined) {
    this.#bridge = bridge;
    this.#softDelete = softDelete;
    this.#changes = changes;
    this.#logger = logger;
  }

  // ── entity events: route, snapshot, hand to the bridge ───────────────────────────────────────

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
  #record(runner: QueryRunner, metadata: EntityMetadata, action: ModelAction, take: () => object, changes?: () => string[] | undefined): Promise<void> | void {
    const model = this.#modelOf(metadata, action);
    if (model === undefined) return;
    // On a runner left stale by a failed COMMIT, this write has just autocommitted: published at once.
    this.#resync(runner, false);
    const changed = changes?.();
    // A snapshot now: the data is the entity as this write left it, even if the app changes it before COMMIT.
    return this.#bridge.write(this.#transaction(runner), { model, action, instance: take(), ...(changed && { changes: changed }) });
  }

  #modelOf(metadata: EntityMetadata, action: ModelAction): string | undefined {
    let names = this.#names.get(metadata);
    if (!names) this.#names.set(metadata, (names = modelNames(metadata)));
    return names.find((name) => this.#bridge.watches(name, action));
  }

  // ── transaction events, mapped onto the bridge ────────────────────────────────────────────────

  beforeTransactionStart(event: TransactionStartEvent): void {
    // TypeORM picks BEGIN or SAVEPOINT from its depth only after this event: resynced first, a runner
    // left stale by a failed COMMIT opens a real transaction again instead of a savepoint of a dead one.
    this.#resync(event.queryRunner, true);
  }

  afterTransactionStart(event: TransactionStartEvent): void {
    // A new outermost transaction: whatever is left from one that ended without a commit or rollback
    // event (a failed COMMIT the app did not roll back) must not leak into it.
    if (depthOf(event.queryRunner) === 1) this.#bridge.forget(event.queryRunner);
  }

  beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    // A COMMIT on a stale runner fails ("no transaction is active"): the writes held for the
    // transaction SQLite already rolled back must not be written now, outside of any transaction.
    this.#resync(event.queryRunner, false);
    return this.#bridge.beforeCommit(this.#transaction(event.queryRunner));
  }

  afterTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    return this.#bridge.afterCommit(this.#transaction(event.queryRunner));
  }

  beforeTransactionRollback(event: TransactionRollbackEvent): void {
    // After a COMMIT that SQLite answered by rolling back itself, TypeORM's ROLLBACK is about to fail and
    // no afterTransactionRollback will follow: resynced now, the runner and the buffer end clean anyway.
    if (this.#resync(event.queryRunner, false)) return;
    this.#bridge.rollbackStarted(this.#transaction(event.queryRunner));
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    this.#bridge.afterRollback(this.#transaction(event.queryRunner));
  }

  /** The runner as the bridge sees it; its depth is read live, as TypeORM moves it. */
  #transaction(runner: QueryRunner): HostTransaction {
    let transaction = this.#transactions.get(runner);
    if (!transaction) {
      transaction = { key: runner, depth: () => (runner.isTransactionActive ? depthOf(runner) : 0), execute: (sql, parameters) => runner.query(sql, [...parameters]) };
      this.#transactions.set(runner, transaction);
    }
    return transaction;
  }

  /**
   * Resets a runner that TypeORM believes to be in a transaction the database no longer has, and drops
   * its buffered writes (they were rolled back). Returns whether it was stale.
   *
   * TypeORM's SQLite runners reset `isTransactionActive` and `transactionDepth` only once COMMIT or
   * ROLLBACK succeeds. A COMMIT refused with SQLITE_FULL or SQLITE_IOERR rolls back by itself and the
   * ROLLBACK after it fails, so the data source's one runner would stay "in a transaction" for good:
   * later writes would autocommit with no commit event (their events waiting forever) and every later
   * `transaction()` would be a savepoint. Only drivers that tell (better-sqlite3's `inTransaction`) are
   * checked. `starting`: inside `startTransaction()`, which has already set `isTransactionActive`.
   */
  #resync(runner: QueryRunner, starting: boolean): boolean {
    if (!runner.isTransactionActive || depthOf(runner) === 0 || databaseInTransaction(runner) !== false) return false;
    const typeorm = runner as unknown as { isTransactionActive: boolean; transactionDepth: number };
    typeorm.transactionDepth = 0;
    if (!starting) typeorm.isTransactionActive = false;
    this.#bridge.forget(runner);
    this.#logger?.warn({}, 'resthooks/typeorm: the query runner still counted a transaction that the database had already rolled back (a failed COMMIT, e.g. disk full); its events were dropped with it and the runner is reset');
    return true;
  }
}

/** Whether the database has a transaction open on the runner's connection; undefined when the driver cannot tell. */
function databaseInTransaction(runner: QueryRunner): boolean | undefined {
  // better-sqlite3: the SQLite drivers' one connection, a `Database` with an `inTransaction` getter.
  const connection: unknown = (runner.dataSource?.driver as { databaseConnection?: unknown } | undefined)?.databaseConnection;
  const open = typeof connection === 'object' && connection !== null ? (connection as { inTransaction?: unknown }).inTransaction : undefined;
  return typeof open === 'boolean' ? open : undefined;
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

function changedProperties(event: UpdateEvent<object>): string[] {
  const paths = [...event.updatedColumns.map((column) => column.propertyPath), ...event.updatedRelations.map((relation) => relation.propertyPath)];
  return [...new Set(paths)];
}

function modelNames(metadata: EntityMetadata): string[] {
  const declared = typeof metadata.target === 'function' ? declaredModelName(metadata.target) : undefined;
  const names = [declared, metadata.name || metadata.targetName, metadata.tableName].filter((name): name is string => typeof name === 'string' && name !== '');
  return [...new Set(names)];
}

function deleteDateProperty(metadata: EntityMetadata): string[] | undefined {
  const column = metadata.deleteDateColumn;
  return column ? [column.propertyPath] : undefined;
}
