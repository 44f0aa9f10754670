/**
 * `resthooks/mikro-orm`: fires `created` / `updated` / `deleted` from MikroORM's entity events (every
 * `em.flush()`, inside `em.transactional()` or in the implicit transaction of a plain flush), after the
 * transaction commits, and nothing when it rolls back. Where the resthooks store lives in the app's own
 * database, the outbox row is written in the app's transaction (commits with it, atomically).
 *
 * Serves MikroORM 6 (SQL through Knex) and 7 (SQL through Kysely): the two follow savepoints differently,
 * and the adapter tells them apart by the connection the ORM offers. Imports MikroORM for types only (it is
 * an optional peer): nothing here loads it at run time.
 * @module
 */
import type { EntityManager, EntityMetadata, EventArgs, EventSubscriber, MikroORM, Transaction, TransactionEventArgs } from '@mikro-orm/core';
import { ConfigError } from '../../errors.js';
import { placeholderParts, type HostExecutor } from '../../store/host-executor.js';
import { sqliteTx } from '../../store/sqlite/sqlite-tx.js';
import type { SyncHostExecutor } from '../../triggers/triggers.js';
import type { Hooks } from '../../hooks.js';
import type { Logger } from '../../logger.js';
import type { HostTransaction, ModelAction, OutboxMode } from './orm-adapter.js';
import { outboxBridge, type OutboxBridge } from './outbox-bridge.js';

export interface MikroOrmHooksOptions {
  /**
   * `'auto'` (default): `'transaction'` when a probe at attach time proves that the app's database and
   * the resthooks store are one database, else `'after-commit'` (see `OutboxMode`).
   */
  outbox?: OutboxMode | 'auto';
  /** Add `changes` (the changed properties) beside `data` in `updated` payloads. Default true. */
  changes?: boolean;
  /** Where the adapter reports its outbox mode (pino's call shape). Default: silent. */
  logger?: Logger;
}

export interface MikroOrmHooks {
  /** The outbox mode chosen at attach time. */
  readonly mode: OutboxMode;
  /** Stops firing (MikroORM has no way to remove a subscriber). Events buffered in open transactions are dropped. */
  detach(): void;
}

/** What `attachMikroOrm` needs of a `MikroORM` instance (6 or 7, SQL drivers). */
export type MikroOrmLike = Pick<MikroORM, 'em'>;

/**
 * Attaches resthooks to a MikroORM instance: every flushed create, update or delete of an entity named
 * in the events map fires its event once the transaction commits. The model name is the entity's
 * metadata name (`meta.className`: an `EntitySchema`'s `name` when it has no `class`, else the class
 * name), or else its table name (`meta.tableName`). A minifier renames classes, so a minified app names
 * its entities by table in the events map, or uses class-less `EntitySchema`s. `em.nativeUpdate()`,
 * `em.nativeDelete()`, `em.insert()` and the QueryBuilder fire no entity events, so nothing
 * (docs/orms.md). Call it after `MikroORM.init()` and `hooks.start()`, before the app writes.
 * @example
 * import { MikroORM } from '@mikro-orm/postgresql';
 * import { createHooks, postgresStore } from 'resthooks';
 * import { attachMikroOrm } from 'resthooks/mikro-orm';
 *
 * const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: postgresStore(pool) });
 * await hooks.start();
 * await attachMikroOrm(orm, hooks);
 * await orm.em.fork().transactional((em) => em.persist(em.create(Book, { title: 'Dune', ownerId: 'alice' }))); // after COMMIT
 */
export async function attachMikroOrm(orm: MikroOrmLike, hooks: Hooks, options: MikroOrmHooksOptions = {}): Promise<MikroOrmHooks> {
  const layer = sqlLayerOf(orm);
  const bridge = outboxBridge(hooks, { adapter: 'resthooks/mikro-orm', logger: options.logger });
  const subscriber = new ResthooksSubscriber(bridge, options.changes !== false, orm, layer);
  // Registered before the first await: no write made while the probe runs is missed (it goes after commit).
  orm.em.getEventManager().registerSubscriber(subscriber);
  await bridge.chooseMode(options.outbox ?? 'auto', (statement) => execute(orm.em, undefined, statement.sql, statement.parameters));
  return {
    get mode() {
      return bridge.mode;
    },
    detach() {
      subscriber.detached = true;
    },
  };
}

/**
 * The `tx` for `hooks.model()` / `hooks.action()` by hand inside `em.transactional()`: it runs the outbox
 * statement in `em`'s transaction (for writes the adapter cannot see, such as `em.nativeUpdate()`).
 * Outside a transaction it runs the statement on its own.
 * @example
 * await orm.em.fork().transactional(async (em) => {
 *   await em.nativeUpdate(Book, { id }, { title: 'Dune Messiah' });
 *   await hooks.model('Book', 'updated', await em.findOneOrFail(Book, id), { tx: mikroOrmTx(em) });
 * });
 */
export function mikroOrmTx(em: Pick<EntityManager, 'getConnection' | 'getTransactionContext'>): HostExecutor {
  return (sql, parameters) => execute(em, em.getTransactionContext<object>(), sql, parameters);
}

/**
 * The query builder under MikroORM's SQL drivers, which decides how savepoints can be followed.
 * - `'knex'` (MikroORM 6): transaction events fire for the outermost transaction only. A savepoint is a
 *   Knex transaction whose `parentTransaction` links it to the one around it, and whose own `commit` /
 *   `rollback` MikroORM calls to release it or roll back to it: the adapter follows those calls.
 * - `'kysely'` (MikroORM 7): transaction events fire for savepoints too, each with the savepoint's own
 *   Kysely transaction; the savepoint's start events, in turn on one EntityManager, link it to its parent.
 */
type SqlLayer = 'knex' | 'kysely';

function sqlLayerOf(orm: MikroOrmLike): SqlLayer {
  const connection = orm.em.getConnection('write') as unknown as { getKnex?: unknown; getClient?: () => unknown };
  if (typeof connection.getKnex === 'function') return 'knex';
  if (typeof connection.getClient === 'function') {
    const client = (() => {
      try {
        return connection.getClient();
      } catch {
        return undefined;
      }
    })() as { startTransaction?: unknown } | undefined;
    if (typeof client?.startTransaction === 'function') return 'kysely';
  }
  throw new ConfigError(
    'resthooks/mikro-orm supports the SQL drivers of MikroORM 6 (Knex) and 7 (Kysely); this connection offers neither. Attach it after `MikroORM.init()`, or fire events with hooks.model() / hooks.action().',
  );
}

/** A MikroORM 6 savepoint or transaction (Knex). */
interface KnexTransaction {
  parentTransaction?: KnexTransaction;
  commit(value?: unknown): unknown;
  rollback(error?: unknown): unknown;
}

/** Where a transaction context sits: its outermost transaction, and its level (1 = outermost). */
interface Place {
  readonly root: object;
  readonly level: number;
}

/** One outermost transaction: the level is counted here, from what the adapter sees of its savepoints. */
interface Outermost {
  readonly host: HostTransaction;
  level: number;
  /** MikroORM 6: savepoints whose end the adapter already follows. */
  readonly followed: WeakSet<KnexTransaction>;
  /** MikroORM 6 on better-sqlite3: the transaction's connection, where the outbox statement runs prepared once. */
  direct?: Promise<SqliteConnection | undefined>;
}

/** What the outbox write needs of a better-sqlite3 `Database`. */
interface SqliteConnection {
  readonly inTransaction: boolean;
  prepare(sql: string): { run(...parameters: unknown[]): unknown };
}

class ResthooksSubscriber implements EventSubscriber {
  detached = false;
  /**
   * MikroORM 7 only: MikroORM dispatches an event to every subscriber that has its method, so MikroORM 6
   * subscribers, which need no start events, do not have these, and their transactions skip two dispatches.
   */
  declare beforeTransactionStart?: (args: TransactionEventArgs) => void;
  declare afterTransactionStart?: (args: TransactionEventArgs) => void;
  readonly #bridge: OutboxBridge;
  readonly #changes: boolean;
  readonly #orm: MikroOrmLike;
  readonly #layer: SqlLayer;
  readonly #transactions = new WeakMap<object, Outermost>();
  /** MikroORM 7: each savepoint seen starting, and where it sits. */
  readonly #savepoints = new WeakMap<object, Place>();
  /** MikroORM 7: the parent of the savepoint an EntityManager is opening, between its two start events. */
  readonly #opening = new WeakMap<EntityManager, object>();

  constructor(bridge: OutboxBridge, changes: boolean, orm: MikroOrmLike, layer: SqlLayer) {
    this.#bridge = bridge;
    this.#changes = changes;
    this.#orm = orm;
    this.#layer = layer;
    if (layer === 'kysely') {
      this.beforeTransactionStart = (args) => this.#savepointOpening(args);
      this.afterTransactionStart = (args) => this.#savepointOpened(args);
    }
  }

  // ── entity events: route, snapshot, hand to the bridge ───────────────────────────────────────

  afterCreate(args: EventArgs<object>): Promise<void> | void {
    return this.#record(args, 'created');
  }

  afterUpdate(args: EventArgs<object>): Promise<void> | void {
    return this.#record(args, 'updated');
  }

  afterDelete(args: EventArgs<object>): Promise<void> | void {
    return this.#record(args, 'deleted');
  }

  #record(args: EventArgs<object>, action: ModelAction): Promise<void> | void {
    if (this.detached) return;
    const model = this.#modelOf(args.meta, action);
    if (model === undefined) return;
    const changeSet = args.changeSet;
    const changes = action === 'updated' && this.#changes && changeSet ? Object.keys(changeSet.payload) : undefined;
    // A snapshot now: the data is the entity as this flush left it, even if a later flush changes it.
    const instance = snapshot(args.entity, changeSet?.originalEntity);
    const context = args.em.getTransactionContext<object>();
    const tx = context ? this.#enter(context) : undefined;
    return this.#bridge.write(tx, { model, action, instance, ...(changes && { changes }) });
  }

  /** The events map's name for the entity: its metadata name, or else its table name. */
  #modelOf(meta: EntityMetadata<object>, action: ModelAction): string | undefined {
    for (const name of [meta.className, meta.tableName]) if (name && this.#bridge.watches(name, action)) return name;
    return undefined;
  }

  // ── transaction events, mapped onto the bridge ────────────────────────────────────────────────

  #savepointOpening(args: TransactionEventArgs): void {
    // MikroORM 7 names the parent when it opens a savepoint, and nothing when it opens an outermost transaction.
    if (args.transaction) this.#opening.set(args.em, args.transaction);
    else this.#opening.delete(args.em);
  }

  #savepointOpened(args: TransactionEventArgs): void {
    if (!args.transaction) return;
    const parent = this.#opening.get(args.em);
    this.#opening.delete(args.em);
    if (!parent) return;
    const around = this.#placeOf(parent);
    this.#savepoints.set(args.transaction, { root: around.root, level: around.level + 1 });
  }

  beforeTransactionCommit(args: TransactionEventArgs): Promise<void> | void {
    const ending = this.#ending(args.transaction);
    // Releasing a savepoint commits nothing yet.
    if (!ending || ending.level > 1) return;
    ending.outermost.level = 1;
    return this.#bridge.beforeCommit(ending.outermost.host);
  }

  afterTransactionCommit(args: TransactionEventArgs): Promise<void> | void {
    const ending = this.#ending(args.transaction);
    if (!ending) return;
    ending.outermost.level = ending.level - 1;
    return this.#bridge.afterCommit(ending.outermost.host);
  }

  beforeTransactionRollback(args: TransactionEventArgs): void {
    const ending = this.#ending(args.transaction);
    if (!ending || ending.level > 1) return;
    ending.outermost.level = 1;
    this.#bridge.rollbackStarted(ending.outermost.host);
  }

  afterTransactionRollback(args: TransactionEventArgs): void {
    const ending = this.#ending(args.transaction);
    if (!ending) return;
    ending.outermost.level = ending.level - 1;
    this.#bridge.afterRollback(ending.outermost.host);
  }

  /** The outermost transaction a commit or rollback event belongs to, with the level it ends; none if no write was seen in it. */
  #ending(transaction: Transaction | undefined): { outermost: Outermost; level: number } | undefined {
    // Once detached, what open transactions still hold is never written: it is left to be collected.
    if (!transaction || this.detached) return undefined;
    const { root, level } = this.#placeOf(transaction);
    const outermost = this.#transactions.get(root);
    return outermost && { outermost, level };
  }

  #placeOf(context: object): Place {
    if (this.#layer === 'kysely') return this.#savepoints.get(context) ?? { root: context, level: 1 };
    let level = 1;
    let root = context as KnexTransaction;
    while (root.parentTransaction) {
      root = root.parentTransaction;
      level += 1;
    }
    return { root, level };
  }

  /** The outermost transaction of `context`, at the level of `context`. */
  #enter(context: object): HostTransaction {
    const { root, level } = this.#placeOf(context);
    let outermost = this.#transactions.get(root);
    if (!outermost) {
      const state: Outermost = {
        level: 0,
        followed: new WeakSet(),
        host: {
          key: root,
          depth: () => state.level,
          execute: async (sql, parameters) => {
            const direct = this.#layer === 'knex' ? await (state.direct ??= sqliteConnectionOf(root)) : undefined;
            // Still in the transaction: the bridge writes just before COMMIT, but a statement after it would autocommit.
            return direct?.inTransaction ? preparedOn(direct)(sql, parameters) : execute(this.#orm.em, root, sql, parameters);
          },
        },
      };
      this.#transactions.set(root, (outermost = state));
    }
    if (this.#layer === 'knex') {
      // MikroORM 6 sends no event when a savepoint (a nested `em.transactional()`) is released or rolled back: the
      // adapter follows the `commit` / `rollback` calls of each savepoint it has seen a write in, and of the ones around it.
      for (let at = context as KnexTransaction, atLevel = level; at.parentTransaction; at = at.parentTransaction, atLevel -= 1) this.#follow(outermost, at, atLevel);
    }
    outermost.level = level;
    return outermost.host;
  }

  /** MikroORM 6: wraps a savepoint's own `commit` / `rollback`: its writes join the level around it, or are dropped. */
  #follow(outermost: Outermost, savepoint: KnexTransaction, level: number): void {
    if (outermost.followed.has(savepoint)) return;
    outermost.followed.add(savepoint);
    const release = savepoint.commit.bind(savepoint);
    const rollback = savepoint.rollback.bind(savepoint);
    // The bridge is told first, synchronously: MikroORM does not await these calls, only the transaction's promise.
    savepoint.commit = (value) => {
      outermost.level = level - 1;
      void this.#bridge.afterCommit(outermost.host);
      return release(value);
    };
    savepoint.rollback = (error) => {
      outermost.level = level - 1;
      this.#bridge.afterRollback(outermost.host);
      return rollback(error);
    };
  }
}

/**
 * Runs one store statement through MikroORM's connection, in `transaction` when given. MikroORM's raw
 * SQL takes `?` placeholders on every engine, so PostgreSQL's `$n` ones are rewritten.
 */
async function execute(em: Pick<EntityManager, 'getConnection'>, transaction: object | undefined, sql: string, parameters: readonly unknown[]): Promise<unknown> {
  const { texts, values } = placeholderParts({ sql, parameters });
  return em.getConnection('write').execute(texts.join('?'), values, 'run', transaction as Transaction | undefined);
}

/**
 * MikroORM 6 on better-sqlite3: the connection of a Knex transaction, if it is a better-sqlite3 `Database`
 * (Knex's `Client.acquireConnection()`, which a transaction's client answers with its own connection).
 * Through MikroORM and Knex, the outbox INSERT is prepared again on every write, which costs more than
 * running it: on the connection itself it is prepared once (the store on SQLite writes `?` placeholders).
 */
async function sqliteConnectionOf(transaction: object): Promise<SqliteConnection | undefined> {
  const client = (transaction as { isTransaction?: unknown; client?: { transacting?: unknown; acquireConnection?: () => unknown } }).client;
  // Only a transaction's client: the root client would lend a connection out of its pool, to be released.
  if ((transaction as { isTransaction?: unknown }).isTransaction !== true || client?.transacting !== true || typeof client.acquireConnection !== 'function') return undefined;
  const connection: unknown = await client.acquireConnection();
  const candidate = connection as Partial<SqliteConnection> | null;
  return typeof candidate?.prepare === 'function' && typeof candidate.inTransaction === 'boolean' ? (connection as SqliteConnection) : undefined;
}

const prepared = new WeakMap<SqliteConnection, SyncHostExecutor>();

function preparedOn(connection: SqliteConnection): SyncHostExecutor {
  let run = prepared.get(connection);
  if (!run) prepared.set(connection, (run = sqliteTx(connection)));
  return run;
}

/**
 * A shallow copy of the entity, with what it lacks filled in from the row as loaded. Same prototype, so
 * a `serializeHook` method and MikroORM's own `toJSON` (which leaves `hidden` properties out) still apply;
 * MikroORM gives the copy a wrapper of its own, detached from the identity map, when `toJSON` first asks.
 * The values are defined as plain properties: assigned, they would go through the prototype's change-tracking
 * setters, which cost more than the rest of the copy.
 */
function snapshot(entity: object, original: object | undefined): object {
  const values: PropertyDescriptorMap = {};
  for (const key of Object.keys(entity)) values[key] = field((entity as Record<string, unknown>)[key]);
  if (original) for (const [key, value] of Object.entries(original)) if (values[key]?.value === undefined) values[key] = field(value);
  return Object.create(Object.getPrototypeOf(entity) as object | null, values) as object;
}

function field(value: unknown): PropertyDescriptor {
  return { value, writable: true, enumerable: true, configurable: true };
}
