/**
 * `resthooks/kysely`: fires `created` / `updated` / `deleted` for the app's own Kysely writes. The app
 * builds an insert, update or delete with `.returningAll()` (or `.returning([...])`) and runs it through
 * `execute(trx, query)`: the write runs in `trx`, and one event per returned row is recorded. With the
 * store in the app's database the outbox row is written in the same transaction before `execute`
 * resolves: the database keeps or drops both together (a rollback, or a rollback to a savepoint, takes
 * the outbox rows with it); otherwise the events are appended after the commit (helper-writes.ts).
 *
 * Why a helper and not a plugin: a plugin sees the rows in `transformResult`, but Kysely 0.28 still holds
 * the transaction's one connection there, so a statement of ours from inside it deadlocks.
 *
 * The app's Kysely instance is typed structurally (any Kysely 0.27 or 0.28 fits, whichever copy the app
 * has); the outbox statement is handed to it as a compiled query.
 * @module
 */
import { CompiledQuery } from 'kysely';
import type { Hooks } from '../../index.js';
import type { HostExecutor } from '../../store/host-executor.js';
import { sqliteTx, type SqlitePreparer } from '../../store/sqlite/sqlite-tx.js';
import { HelperWrites, type HelperWritesOptions } from './helper-writes.js';
import type { ModelAction, OutboxMode } from './orm-adapter.js';

export interface KyselyHooksOptions extends HelperWritesOptions {
  /**
   * The events map's model names for tables, e.g. `{ Book: 'books' }` (or `'schema.books'`). A table
   * not listed here is known by its table name, so `'books.created'` works too.
   */
  models?: Readonly<Record<string, string>>;
  /**
   * The better-sqlite3 `Database` given to Kysely's `SqliteDialect`, when that is the dialect: the outbox
   * statement then runs on it directly, inside the transaction Kysely has open on it, prepared once per
   * connection. Through Kysely it is prepared again on every write, which costs about as much as running it.
   * Used only when a probe at start sees a Kysely transaction on `db` open on this very handle; otherwise
   * ignored, with a warning. Kysely keeps the `Database` to itself (no public API reaches it), so on SQLite
   * without this option a warning names it, once per `hooks` (to `logger`, else `process.emitWarning`).
   */
  sqlite?: SqliteHandle;
}

/** What `sqlite` needs of a better-sqlite3 `Database`. */
export interface SqliteHandle extends SqlitePreparer {
  readonly inTransaction: boolean;
}

/** What `execute` needs from a Kysely instance or transaction (`Kysely`, `Transaction`, `ControlledTransaction`). */
export interface KyselyExecutor {
  readonly isTransaction: boolean;
  executeQuery(query: never): Promise<{ readonly rows: readonly unknown[] }>;
  transaction(): { execute(work: never): Promise<unknown> };
}

/** An insert, update or delete query builder with a `returning` clause. */
export interface KyselyReturningQuery<Row> {
  execute(): Promise<Row[]>;
  compile(): { readonly sql: string; readonly parameters: readonly unknown[] };
  toOperationNode(): object;
}

/** The transaction object a Kysely instance's `transaction().execute()` hands to its callback. */
export type KyselyTransactionOf<D> = D extends { transaction(): { execute(work: (trx: infer T) => infer _R): unknown } } ? T : never;

export interface KyselyHooks {
  /** Where outbox rows go: chosen at start (see `outbox`). */
  readonly mode: OutboxMode;
  /**
   * Runs an insert / update / delete built with `.returningAll()` in `db`, and fires `created` /
   * `updated` / `deleted` for each row it returns, in the same transaction. Given a transaction, a
   * failure to record an event throws `OutboxWriteError`: let it leave the callback so it rolls back.
   * Given the Kysely instance itself, it opens a transaction for the write and its outbox rows.
   */
  execute<Row>(db: KyselyExecutor, query: KyselyReturningQuery<Row>): Promise<Row[]>;
  /**
   * `db.transaction().execute(work)`, then wakes the dispatcher once it has committed. Writes in a
   * transaction the app opened itself (a controlled one, with savepoints) are found after its commit by the
   * trigger's commit watch.
   */
  transaction<D extends KyselyExecutor, R>(db: D, work: (trx: KyselyTransactionOf<D>) => Promise<R>): Promise<R>;
}

/** The parts of Kysely's operation nodes read here (the same in 0.27 and 0.28). */
interface QueryNode {
  readonly kind: string;
  readonly into?: TableNode;
  readonly table?: TableNode | { readonly kind: 'AliasNode'; readonly node: TableNode };
  readonly from?: { readonly froms: ReadonlyArray<TableNode | { readonly kind: 'AliasNode'; readonly node: TableNode }> };
  readonly updates?: ReadonlyArray<{ readonly column: { readonly column: { readonly name: string } } }>;
  readonly returning?: object;
}
interface TableNode {
  readonly kind: string;
  readonly table?: { readonly schema?: { readonly name: string }; readonly identifier: { readonly name: string } };
}

const ACTIONS: Readonly<Record<string, ModelAction>> = { InsertQueryNode: 'created', UpdateQueryNode: 'updated', DeleteQueryNode: 'deleted' };

/**
 * Makes the helper that fires the events map's `created` / `updated` / `deleted` events for Kysely
 * writes, after probing whether `db` is the store's database (see `outbox`). Call it after `hooks.start()`.
 * @example
 * import { kyselyHooks } from 'resthooks/kysely';
 *
 * const kh = await kyselyHooks(db, hooks, { models: { Book: 'books' } });
 * await kh.transaction(db, async (trx) => {
 *   const [book] = await kh.execute(trx, trx.insertInto('books').values({ title: 'Dune', ownerId: 'alice' }).returningAll()); // book.added
 *   await kh.execute(trx, trx.updateTable('books').set({ title: 'Dune Messiah' }).where('id', '=', book.id).returningAll()); // book.changed, changes: ['title']
 * });
 */
export async function kyselyHooks(db: KyselyExecutor, hooks: Hooks, options: KyselyHooksOptions = {}): Promise<KyselyHooks> {
  const core = new HelperWrites(hooks, 'resthooks/kysely', options);
  await core.chooseMode((statement) => db.executeQuery(CompiledQuery.raw(statement.sql, [...statement.parameters]) as never));
  const direct = options.sqlite && core.mode === 'transaction' ? await directExecutor(db, options.sqlite, options) : undefined;
  if (!options.sqlite && core.mode === 'transaction' && !advised.has(hooks) && (await onSqlite(db))) {
    advised.add(hooks);
    if (options.logger) options.logger.warn({ option: 'sqlite' }, SQLITE_ADVICE);
    else process.emitWarning(SQLITE_ADVICE, { code: 'RESTHOOKS_KYSELY_SQLITE' });
  }
  const executorOf = (trx: KyselyExecutor): HostExecutor => {
    const throughKysely = kyselyExecutor(trx);
    if (!direct) return throughKysely;
    // The handle is in a transaction whenever Kysely runs a callback of one on it: that transaction is `trx`.
    return (sql, parameters) => (direct.handle.inTransaction ? direct.run(sql, parameters) : throughKysely.execute({ sql, parameters }));
  };
  const names = new Map(Object.entries(options.models ?? {}).map(([model, table]) => [table, model]));

  const write = async <Row>(trx: KyselyExecutor, query: KyselyReturningQuery<Row>, node: QueryNode, action: ModelAction, model: string | undefined): Promise<Row[]> => {
    // Run on `trx` whichever instance built the query: the write and its outbox rows share the transaction.
    const { rows } = await trx.executeQuery(query.compile() as never);
    if (!model) return rows as Row[];
    const changes = action === 'updated' ? core.changes((node.updates ?? []).map((update) => update.column.column.name)) : undefined;
    const writes = rows.map((row) => (changes ? { model, action, instance: row as object, changes } : { model, action, instance: row as object }));
    await core.record(trx, writes, executorOf(trx));
    return rows as Row[];
  };

  const helpers: KyselyHooks = {
    get mode() {
      return core.mode;
    },
    async execute<Row>(target: KyselyExecutor, query: KyselyReturningQuery<Row>) {
      const node = query.toOperationNode() as QueryNode;
      const action = ACTIONS[node.kind];
      // Checked before anything runs: without rows back there is nothing to fire, and the write would go unnoticed.
      if (!action) throw new TypeError(`resthooks/kysely: execute() takes an insert, update or delete query, not a ${node.kind}`);
      if (!node.returning) throw new TypeError('resthooks/kysely: the query needs .returningAll() (or .returning([...])): the events carry the rows it returns');
      const table = tableOf(node);
      const qualified = table.schema === undefined ? table.name : `${table.schema}.${table.name}`;
      const model = core.modelFor(qualified, names.get(qualified) ?? names.get(table.name), action);
      if (!target.isTransaction) return helpers.transaction(target, (trx) => write(trx as KyselyExecutor, query, node, action, model));
      core.checkTransaction(target);
      return write(target, query, node, action, model);
    },
    transaction<D extends KyselyExecutor, R>(target: D, work: (trx: KyselyTransactionOf<D>) => Promise<R>) {
      return core.transaction(
        target,
        (body: (trx: KyselyTransactionOf<D> & object) => Promise<R>) => target.transaction().execute(body as never) as Promise<R>,
        (trx) => executorOf(trx as unknown as KyselyExecutor),
        work as (trx: KyselyTransactionOf<D> & object) => Promise<R>,
      );
    },
  };
  return helpers;
}

const SQLITE_ADVICE =
  'resthooks/kysely: on SQLite without the `sqlite` option, Kysely prepares the outbox INSERT again on every write, ' +
  'which costs about as much as running it (in our benchmark a single-row insert with resthooks took 1.5-1.7x the time ' +
  'of the insert without it, against 1.4x with the option). If the dialect is SqliteDialect over better-sqlite3, pass ' +
  'its Database: kyselyHooks(db, hooks, { ..., sqlite: database })';
/** The hooks whose helpers were told, once, of the `sqlite` option. */
const advised = new WeakSet<Hooks>();

/** Whether `db` is on SQLite: only SQLite knows `sqlite_version()`. */
function onSqlite(db: KyselyExecutor): Promise<boolean> {
  return db.executeQuery(CompiledQuery.raw('select sqlite_version()', []) as never).then(
    () => true,
    () => false,
  );
}

/** Runs the store's statements on the app's transaction, as compiled queries. */
function kyselyExecutor(trx: KyselyExecutor): { execute(statement: { sql: string; parameters: readonly unknown[] }): unknown } {
  return { execute: (statement) => trx.executeQuery(CompiledQuery.raw(statement.sql, [...statement.parameters]) as never) };
}

/**
 * The `sqlite` option's executor, if `handle` is the connection under `db`: idle outside a transaction,
 * and in one inside a Kysely transaction on `db`.
 */
async function directExecutor(db: KyselyExecutor, handle: SqliteHandle, options: KyselyHooksOptions): Promise<{ handle: SqliteHandle; run: ReturnType<typeof sqliteTx> } | undefined> {
  const idle = !handle.inTransaction;
  const seen = await db
    .transaction()
    .execute((async () => handle.inTransaction) as never)
    .then((open) => open === true, () => false);
  if (idle && seen && !handle.inTransaction) return { handle, run: sqliteTx(handle) };
  options.logger?.warn({}, "resthooks/kysely: the sqlite option is not the connection under this Kysely instance; outbox statements go through Kysely");
  return undefined;
}

/** The written table: `into` (insert), `table` (update), the first of `from` (delete); an alias unwrapped. */
function tableOf(node: QueryNode): { schema?: string; name: string } {
  const target = node.into ?? node.table ?? node.from?.froms[0];
  const table = target && 'node' in target ? target.node : target;
  const identifier = table?.table;
  if (!identifier) throw new TypeError(`resthooks/kysely: cannot tell which table the ${node.kind} writes`);
  return identifier.schema ? { schema: identifier.schema.name, name: identifier.identifier.name } : { name: identifier.identifier.name };
}
