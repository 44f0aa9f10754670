/**
 * `resthooks/sequelize`: fires `created` / `updated` / `deleted` from Sequelize 6's model hooks, after
 * the transaction commits, and nothing when it rolls back. Where the resthooks store lives in the app's
 * own database, the outbox row is written in the app's transaction (commits with it, atomically).
 *
 * Sequelize 6 has no hook before COMMIT and none on rollback, and its `afterCommit` callbacks run even
 * when the COMMIT failed. So the first watched write of a transaction wraps that transaction object's
 * own `commit()` and `rollback()` (and those of its savepoints): the outbox rows go out just before the
 * real COMMIT, and the bridge learns of every commit and rollback from their outcome.
 *
 * Imports Sequelize for types only (it is an optional peer): nothing here loads it at run time.
 * @module
 */
import type { Model, ModelStatic, Sequelize, Transaction } from 'sequelize';
import type { Hooks } from '../../hooks.js';
import type { Logger } from '../../logger.js';
import { ConfigError } from '../../errors.js';
import { placeholderParts, type CompiledStatement, type HostExecutor } from '../../store/host-executor.js';
import type { HostTransaction, ModelAction, OutboxMode } from './orm-adapter.js';
import { outboxBridge, type OutboxBridge } from './outbox-bridge.js';

export interface SequelizeHooksOptions {
  /**
   * `'auto'` (default): `'transaction'` when a probe at attach time proves that the app's database and
   * the resthooks store are one database, else `'after-commit'` (see `OutboxMode`).
   */
  outbox?: OutboxMode | 'auto';
  /** Add `changes` (the attributes a save changed) beside `data` in `updated` payloads. Default true. */
  changes?: boolean;
  /** Where the adapter reports its outbox mode and unmatched model names (pino's call shape). Default: silent. */
  logger?: Logger;
}

export interface SequelizeHooks {
  /** The outbox mode chosen at attach time. */
  readonly mode: OutboxMode;
  /** Removes resthooks' hooks from the Sequelize instance. Events still buffered in open transactions are dropped. */
  detach(): void;
}

type AnyModel = Model<Record<string, unknown>, Record<string, unknown>>;
type HookName = 'afterCreate' | 'afterUpdate' | 'afterDestroy';
/** Hook names are per attach: `detach()` removes its own hooks only, and another Hooks instance's stay. */
let attached = 0;
const ACTIONS: Readonly<Record<HookName, ModelAction>> = { afterCreate: 'created', afterUpdate: 'updated', afterDestroy: 'deleted' };

/** What a model hook receives as its options: only these are read. */
interface WriteOptions {
  transaction?: Transaction | null;
  fields?: string[];
}

/** The members of a Transaction read or wrapped here, public at run time in Sequelize 6. */
interface SequelizeTransaction {
  parent?: SequelizeTransaction;
  savepoints: SequelizeTransaction[];
  finished?: string;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * Attaches resthooks to a Sequelize 6 instance: every `create()` / `save()` / `destroy()` of a model
 * named in the events map fires its event once its transaction commits (static `update()` /
 * `destroy()` / `bulkCreate()` only with `individualHooks: true`). The model name is the model's
 * `modelName` (`sequelize.define('Book', …)` or `init(…, { modelName: 'Book' })`), or its table name if
 * the events map uses that. Call it after `hooks.start()`, before the app writes.
 * @example
 * import { Sequelize } from 'sequelize';
 * import { createHooks, postgresStore } from 'resthooks';
 * import { attachSequelize } from 'resthooks/sequelize';
 *
 * const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: postgresStore(pool) });
 * await hooks.start();
 * await attachSequelize(sequelize, hooks); // outbox rows commit with the app's writes when both share the database
 * await sequelize.transaction((t) => Book.create({ title: 'Dune', ownerId: 'alice' }, { transaction: t })); // after COMMIT
 */
export async function attachSequelize(sequelize: Sequelize, hooks: Hooks, options: SequelizeHooksOptions = {}): Promise<SequelizeHooks> {
  const bridge = outboxBridge(hooks, { adapter: 'resthooks/sequelize', logger: options.logger });
  const hookName = `resthooks:${++attached}`;
  const adapter = new SequelizeAdapter(sequelize, bridge, Object.keys(hooks.eventActions()), options.changes !== false);
  // Added before the first await: no write made while the probe runs is missed (it goes after commit).
  for (const hook of Object.keys(ACTIONS) as HookName[]) {
    sequelize.addHook(hook, hookName, (instance: AnyModel, hookOptions: WriteOptions) => adapter.record(instance, hookOptions, ACTIONS[hook]));
  }
  const detach = () => {
    for (const hook of Object.keys(ACTIONS) as HookName[]) sequelize.removeHook(hook, hookName);
  };
  const run = (statement: CompiledStatement) => adapter.run(statement.sql, statement.parameters, undefined);
  const wanted = options.outbox ?? 'auto';
  if (sequelize.getDialect() === 'sqlite') {
    // The probe tells whether the store is the app's own file, which on SQLite must never be the case here.
    if ((await bridge.chooseMode('auto', run)) === 'transaction') {
      detach();
      throw new ConfigError(SHARED_SQLITE_FILE);
    }
    if (wanted !== 'auto') await bridge.chooseMode(wanted, run);
  } else await bridge.chooseMode(wanted, run);
  warnUnmatched(sequelize, hooks, options.logger);
  return {
    get mode() {
      return bridge.mode;
    },
    detach,
  };
}

/**
 * Sequelize reaches SQLite through `sqlite3`, the store through `better-sqlite3`: two copies of SQLite in
 * one process. SQLite's file locks are POSIX locks, which never conflict within one process, and each
 * copy keeps its own in-process lock table: the two copies do not see each other's locks. Measured here:
 * a `sqlite3` connection ran BEGIN IMMEDIATE, INSERT and COMMIT while `better-sqlite3` held the write
 * lock, and that INSERT was gone after `better-sqlite3` committed (https://sqlite.org/howtocorrupt.html, 2.2.1).
 */
const SHARED_SQLITE_FILE =
  "resthooks/sequelize: the resthooks store is the app's own SQLite file. Sequelize uses the sqlite3 driver and the store uses better-sqlite3: " +
  'two copies of SQLite in one process do not see each other\'s locks, and writes of either can be lost. ' +
  "Give the store a file of its own (sqliteStore(new Database('hooks.db'))): events are then appended after each commit; " +
  'or use PostgreSQL for the outbox in the transaction.';

class SequelizeAdapter {
  /** Each outermost transaction as the bridge sees it, keyed by the Sequelize transaction itself. */
  readonly #transactions = new WeakMap<SequelizeTransaction, HostTransaction>();
  /** Transactions (and savepoints) whose commit and rollback report to the bridge. */
  readonly #watched = new WeakSet<SequelizeTransaction>();
  /** Levels whose commit or rollback has run, even where Sequelize leaves `finished` unset. */
  readonly #ended = new WeakSet<SequelizeTransaction>();
  /** Transactions whose commit() resthooks refused, and rolled back itself. */
  readonly #refused = new WeakSet<SequelizeTransaction>();
  readonly #names = new WeakMap<object, string>();
  readonly #models: ReadonlySet<string>;

  constructor(
    private readonly sequelize: Sequelize,
    private readonly bridge: OutboxBridge,
    models: readonly string[],
    private readonly changes: boolean,
  ) {
    this.#models = new Set(models);
  }

  record(instance: AnyModel, options: WriteOptions, action: ModelAction): Promise<void> | void {
    const model = this.#nameOf(instance.constructor as ModelStatic<AnyModel>);
    if (!this.bridge.watches(model, action)) return;
    const changes = this.changes && action === 'updated' ? changedAttributes(instance, options.fields) : undefined;
    const transaction = (options.transaction ?? undefined) as SequelizeTransaction | undefined;
    const tx = transaction && !this.#isEnded(transaction) ? this.#adopt(transaction) : undefined;
    // A snapshot now: the data is the row as this write left it, even if the app changes it before COMMIT.
    return this.bridge.write(tx, { model, action, instance: snapshot(instance), ...(changes && { changes }) });
  }

  run(sql: string, parameters: readonly unknown[], transaction: SequelizeTransaction | undefined): Promise<unknown> {
    return runStatement(this.sequelize, sql, parameters, (transaction ?? null) as Transaction | null);
  }

  #nameOf(model: ModelStatic<AnyModel>): string {
    let name = this.#names.get(model);
    if (name === undefined) {
      name = model.name;
      // A model whose modelName no event names may still be named by its table (`books.created`).
      if (!this.#models.has(name)) {
        const table = tableNameOf(model);
        if (table !== undefined && this.#models.has(table)) name = table;
      }
      this.#names.set(model, name);
    }
    return name;
  }

  /**
   * The bridge's view of the transaction `transaction` belongs to. Every open level of it (the outermost
   * transaction and its open savepoints) reports its commit and rollback from now on.
   */
  #adopt(transaction: SequelizeTransaction): HostTransaction {
    const root = rootOf(transaction);
    for (let level: SequelizeTransaction | undefined = root; level; level = this.#openChild(level)) this.#watch(level, root);
    for (let level: SequelizeTransaction | undefined = transaction; level; level = level.parent) this.#watch(level, root);
    return this.#hostOf(root);
  }

  #hostOf(root: SequelizeTransaction): HostTransaction {
    let host = this.#transactions.get(root);
    if (!host) {
      host = { key: root, depth: () => this.#depth(root), execute: (sql, parameters) => this.run(sql, parameters, root) };
      this.#transactions.set(root, host);
    }
    return host;
  }

  /** The connection's level now: 1 for the outermost transaction, one more per open savepoint, 0 once it ended. */
  #depth(root: SequelizeTransaction): number {
    let depth = 0;
    for (let level: SequelizeTransaction | undefined = this.#isEnded(root) ? undefined : root; level; level = this.#openChild(level)) depth++;
    return depth;
  }

  #openChild(level: SequelizeTransaction): SequelizeTransaction | undefined {
    return level.savepoints.findLast((savepoint) => !this.#isEnded(savepoint));
  }

  #isEnded(level: SequelizeTransaction): boolean {
    return this.#ended.has(level) || level.finished !== undefined;
  }

  /** Wraps this level's own `commit()` and `rollback()` (the instance's, not Sequelize's prototype). */
  #watch(level: SequelizeTransaction, root: SequelizeTransaction): void {
    if (this.#watched.has(level)) return;
    this.#watched.add(level);
    const host = this.#hostOf(root);
    const commit = level.commit;
    const rollback = level.rollback;
    const adapter = this;
    level.rollback = async function rollbackWithResthooks(this: SequelizeTransaction) {
      // Already rolled back by a refused commit(): the usual `catch { await t.rollback() }` must not hide its error.
      if (adapter.#refused.has(level)) return;
      adapter.bridge.rollbackStarted(host);
      try {
        await rollback.call(this);
      } finally {
        adapter.#ended.add(level);
        adapter.bridge.afterRollback(host);
      }
    };
    level.commit = async function commitWithResthooks(this: SequelizeTransaction) {
      if (!adapter.#isEnded(level)) {
        try {
          await adapter.bridge.beforeCommit(host);
        } catch (error) {
          // Sequelize's managed transaction() does not roll back when commit() throws: done here, so the
          // write and its refused event both go, and the connection is released.
          await level.rollback().catch(() => undefined);
          adapter.#refused.add(level);
          throw error;
        }
      }
      try {
        await commit.call(this);
      } catch (error) {
        // A failed COMMIT (a deferred constraint, a serialization failure): the database kept nothing.
        adapter.#ended.add(level);
        adapter.bridge.afterRollback(host);
        throw error;
      }
      adapter.#ended.add(level);
      await adapter.bridge.afterCommit(host);
    };
  }
}

/**
 * Runs the store's statements through Sequelize, in `transaction`: the `tx` to give `hooks.model()` or
 * `hooks.action()` for a write the adapter does not see (a custom action, raw SQL) inside a Sequelize transaction.
 * @example
 * await sequelize.transaction(async (t) => {
 *   const book = await Book.findByPk(id, { transaction: t });
 *   await hooks.action(book, 'read', { model: 'Book', tx: sequelizeExecutor(sequelize, t) });
 * }); // the dispatcher finds the event after the commit by itself
 */
export function sequelizeExecutor(sequelize: Sequelize, transaction: Transaction): HostExecutor {
  return (sql, parameters) => runStatement(sequelize, sql, parameters, transaction);
}

/** One statement of the store's dialect (`?` on SQLite, `$1` on PostgreSQL) through Sequelize. */
async function runStatement(sequelize: Sequelize, sql: string, parameters: readonly unknown[], transaction: Transaction | null): Promise<unknown> {
  // Sequelize binds an array as $1, $2, … on every dialect: SQLite's positional `?` are renumbered.
  const { texts, values } = placeholderParts({ sql, parameters });
  const text = texts.reduce((out, part, i) => `${out}$${i}${part}`);
  try {
    return await sequelize.query(text, { bind: values, transaction });
  } catch (error) {
    // Sequelize renames constraint failures ("Validation error"); the driver's error says what refused the row.
    const original: unknown = (error as { original?: unknown } | null)?.original;
    throw original instanceof Error ? original : error;
  }
}

function rootOf(transaction: SequelizeTransaction): SequelizeTransaction {
  let root = transaction;
  while (root.parent) root = root.parent;
  return root;
}

function tableNameOf(model: ModelStatic<AnyModel>): string | undefined {
  const table: unknown = model.getTableName();
  if (typeof table === 'string') return table;
  const name = (table as { tableName?: unknown } | null)?.tableName;
  return typeof name === 'string' ? name : undefined;
}

/**
 * The row as this write left it, as a new instance of the same model (so `toJSON()` and a model's
 * `serializeHook()` still apply) holding a copy of its values.
 */
function snapshot(instance: AnyModel): object {
  const model = instance.constructor as ModelStatic<AnyModel>;
  return model.build(instance.get({ plain: true, clone: true }), { isNewRecord: false, raw: true });
}

/** The attributes a save changed: Sequelize's `changed()`, within the fields the save wrote. */
function changedAttributes(instance: AnyModel, fields: readonly string[] | undefined): string[] | undefined {
  const changed = instance.changed();
  const names = Array.isArray(changed) ? changed.map(String) : [];
  const written = fields ? names.filter((name) => fields.includes(name)) : names;
  return written.length > 0 ? written : fields ? [...fields] : undefined;
}

/**
 * A model the events map names but no defined model answers to: most often a class renamed by a
 * minifier and given no `modelName`. Models defined after attaching are not checked.
 */
function warnUnmatched(sequelize: Sequelize, hooks: Hooks, logger: Logger | undefined): void {
  const models = Object.values(sequelize.models) as Array<ModelStatic<AnyModel>>;
  if (!logger || models.length === 0) return;
  const known = new Set(models.flatMap((model) => [model.name, tableNameOf(model)]));
  for (const name of Object.keys(hooks.eventActions())) {
    if (known.has(name)) continue;
    logger.warn(
      { model: name, models: models.map((model) => model.name) },
      `resthooks/sequelize: the events map names model "${name}", which no Sequelize model is called (modelName or table name): its writes fire nothing. A minified class needs an explicit modelName.`,
    );
  }
}
