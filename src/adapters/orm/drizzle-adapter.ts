/**
 * `resthooks/drizzle`: Drizzle has no lifecycle hooks, so its writes fire events through small typed
 * helpers. Each one runs the insert / update / delete with `.returning()` and records one event per row
 * returned. With the store in the app's database the outbox row is written right after the write, in the
 * same transaction: the database keeps or drops both together (a rolled-back transaction or savepoint
 * takes its outbox rows with it); otherwise the events are appended after the commit (helper-writes.ts).
 * Asynchronous drivers (node-postgres, postgres.js, libsql, …) use `insert` / `update` / `delete` /
 * `transaction`; better-sqlite3, whose transactions cannot await, uses the `…Sync` helpers.
 *
 * Imports Drizzle for `sql` and types only (it is an optional peer of this entry).
 * @module
 */
import { getTableName, sql, type InferInsertModel, type InferSelectModel, type SQL, type Table } from 'drizzle-orm';
import type { Hooks } from '../../index.js';
import { placeholderParts } from '../../store/host-executor.js';
import { HelperWrites, type HelperWritesOptions } from './helper-writes.js';
import type { ModelAction, OutboxMode, PendingWrite } from './orm-adapter.js';

export interface DrizzleHooksOptions extends HelperWritesOptions {
  /**
   * The events map's model names for Drizzle tables, e.g. `{ Book: books }`. A table not listed here
   * is known by its table name (`getTableName(table)`, `'books'`), so `'books.created'` works too.
   */
  models?: Readonly<Record<string, Table>>;
}

/** The values of an update's `set`: the table's columns, each a value or an SQL expression. */
export type DrizzleUpdateSet<T extends Table> = { [K in keyof InferInsertModel<T>]?: InferInsertModel<T>[K] | SQL };

/**
 * The part of a Drizzle database or transaction the helpers call (`PgDatabase`, `BaseSQLiteDatabase`
 * and their transactions). Declared here so that any Drizzle driver's database fits.
 */
export interface DrizzleDatabase {
  insert(table: never): { values(values: never): { returning(): unknown } };
  update(table: never): { set(values: never): { where(where: SQL | undefined): { returning(): unknown } } };
  delete(table: never): { where(where: SQL | undefined): { returning(): unknown } };
  transaction(work: never, config?: never): unknown;
}

/** The transaction object a database's `transaction()` hands to its callback. */
export type DrizzleTransactionOf<D> = D extends { transaction(work: (tx: infer X) => infer _R, config?: infer _C): unknown } ? X : never;
type DrizzleConfigOf<D> = D extends { transaction(work: never, config?: infer C): unknown } ? C : never;

export interface DrizzleHooks {
  /** Where outbox rows go: chosen at start (see `outbox`). */
  readonly mode: OutboxMode;
  /** Inserts `values` and fires `created` for each row returned. Returns the rows. */
  insert<T extends Table>(db: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]): Promise<InferSelectModel<T>[]>;
  /** Updates the rows `where` selects and fires `updated` for each (with `changes`: the keys of `set`). Returns the rows. */
  update<T extends Table>(db: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined): Promise<InferSelectModel<T>[]>;
  /** Deletes the rows `where` selects and fires `deleted` for each, with the row as it was. Returns the rows. */
  delete<T extends Table>(db: DrizzleDatabase, table: T, where: SQL | undefined): Promise<InferSelectModel<T>[]>;
  /**
   * `db.transaction(work)` (a savepoint when `db` is a transaction), then wakes the dispatcher once it has
   * committed. Writes in a transaction the app opened itself are delivered at the dispatcher's next poll.
   */
  transaction<D extends DrizzleDatabase, R>(db: D, work: (tx: DrizzleTransactionOf<D>) => Promise<R>, config?: DrizzleConfigOf<D>): Promise<R>;
  /** `insert` for better-sqlite3: runs and writes the outbox row before it returns. */
  insertSync<T extends Table>(db: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]): InferSelectModel<T>[];
  updateSync<T extends Table>(db: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined): InferSelectModel<T>[];
  deleteSync<T extends Table>(db: DrizzleDatabase, table: T, where: SQL | undefined): InferSelectModel<T>[];
  /** better-sqlite3's synchronous `db.transaction(work)`, then wakes the dispatcher once it has committed. */
  transactionSync<D extends DrizzleDatabase, R>(db: D, work: (tx: DrizzleTransactionOf<D>) => R, config?: DrizzleConfigOf<D>): R;
}

type Row = Record<string, unknown>;

/** A query builder at `.returning()`: awaited (async drivers) or `.all()` (better-sqlite3). */
interface Returning extends PromiseLike<Row[]> {
  all(): Row[];
}

/** What the helpers call on a database beyond the builders: a raw statement, and whether it is a transaction. */
interface RawRunner {
  run?(query: SQL): unknown;
  execute?(query: SQL): unknown;
  rollback?(): unknown;
}

/**
 * Makes the helpers that fire the events map's `created` / `updated` / `deleted` events for Drizzle writes,
 * after probing whether `db` is the store's database (see `outbox`). Called with a transaction, a helper
 * writes within it (a failure to record the event throws `OutboxWriteError`: let it leave the callback so
 * the transaction rolls back). Called with the database itself, it opens a transaction around the write
 * and its outbox row. Call it after `hooks.start()`.
 * @example
 * import { eq } from 'drizzle-orm';
 * import { drizzleHooks } from 'resthooks/drizzle';
 *
 * const rh = await drizzleHooks(db, hooks, { models: { Book: books } });
 * await rh.transaction(db, async (tx) => {
 *   const [book] = await rh.insert(tx, books, { title: 'Dune', ownerId: 'alice' }); // book.added, after COMMIT
 *   await rh.update(tx, books, { title: 'Dune Messiah' }, eq(books.id, book.id));   // book.changed, changes: ['title']
 * });
 * // better-sqlite3: rh.transactionSync(db, (tx) => { rh.insertSync(tx, books, { … }); });
 */
export async function drizzleHooks(db: DrizzleDatabase, hooks: Hooks, options: DrizzleHooksOptions = {}): Promise<DrizzleHooks> {
  const core = new HelperWrites(hooks, 'resthooks/drizzle', options);
  await core.chooseMode((statement) => runRaw(db as RawRunner, statement.sql, statement.parameters));
  const names = new Map<Table, string>(Object.entries(options.models ?? {}).map(([model, table]) => [table, model]));

  /** The writes to record for the rows a write returned, or none when no event names them. */
  const pending = (table: Table, action: ModelAction, rows: readonly Row[], set?: object): PendingWrite[] => {
    const model = core.modelFor(getTableName(table), names.get(table), action);
    if (!model) return [];
    // An undefined value is no change: Drizzle leaves that column out of the SET.
    const changes = set && action === 'updated' ? core.changes(Object.keys(set).filter((key) => (set as Row)[key] !== undefined)) : undefined;
    return rows.map((row) => (changes ? { model, action, instance: row, changes } : { model, action, instance: row }));
  };
  const record = (tx: DrizzleDatabase, table: Table, action: ModelAction, rows: readonly Row[], set?: object) =>
    core.record(tx, pending(table, action, rows, set), (text, parameters) => runRaw(tx as RawRunner, text, parameters));
  const runSync = syncRunner(db);
  const recordSync = (tx: DrizzleDatabase, table: Table, action: ModelAction, rows: readonly Row[], set?: object) =>
    core.recordSync(tx, pending(table, action, rows, set), (text, parameters) => runSync(tx as RawRunner, text, parameters));

  /** Runs `write` in `target` when it is a transaction, else in a transaction of its own. */
  const inTransaction = async <R>(target: DrizzleDatabase, write: (tx: DrizzleDatabase) => Promise<R>): Promise<R> => {
    // Awaited in better-sqlite3's transaction, a write would run after its COMMIT, alone: refused before it runs.
    if (isSynchronous(target)) throw new TypeError('resthooks/drizzle: this is a synchronous SQLite database (better-sqlite3): use insertSync / updateSync / deleteSync / transactionSync');
    if (!isTransaction(target)) return helpers.transaction(target, (tx) => write(tx as DrizzleDatabase));
    core.checkTransaction(target);
    return write(target);
  };
  const inTransactionSync = <R>(target: DrizzleDatabase, write: (tx: DrizzleDatabase) => R): R => {
    if (!isSynchronous(target)) throw new TypeError('resthooks/drizzle: the …Sync helpers need a synchronous SQLite database (better-sqlite3); use insert / update / delete / transaction');
    if (!isTransaction(target)) return helpers.transactionSync(target, (tx) => write(tx as DrizzleDatabase));
    core.checkTransaction(target);
    return write(target);
  };

  // The builders are typed for each driver; these calls go through the structural type above.
  const insertQuery = (target: DrizzleDatabase, table: Table, values: unknown) => target.insert(table as never).values(values as never).returning() as Returning;
  const updateQuery = (target: DrizzleDatabase, table: Table, set: object, where: SQL | undefined) => target.update(table as never).set(set as never).where(where).returning() as Returning;
  const deleteQuery = (target: DrizzleDatabase, table: Table, where: SQL | undefined) => target.delete(table as never).where(where).returning() as Returning;

  const helpers: DrizzleHooks = {
    get mode() {
      return core.mode;
    },
    insert: <T extends Table>(target: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]) =>
      inTransaction(target, async (tx) => {
        const rows = await insertQuery(tx, table, values);
        await record(tx, table, 'created', rows);
        return rows as InferSelectModel<T>[];
      }),
    update: <T extends Table>(target: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined) =>
      inTransaction(target, async (tx) => {
        const rows = await updateQuery(tx, table, set, where);
        await record(tx, table, 'updated', rows, set);
        return rows as InferSelectModel<T>[];
      }),
    delete: <T extends Table>(target: DrizzleDatabase, table: T, where: SQL | undefined) =>
      inTransaction(target, async (tx) => {
        const rows = await deleteQuery(tx, table, where);
        await record(tx, table, 'deleted', rows);
        return rows as InferSelectModel<T>[];
      }),
    async transaction<D extends DrizzleDatabase, R>(target: D, work: (tx: DrizzleTransactionOf<D>) => Promise<R>, config?: DrizzleConfigOf<D>) {
      if (isSynchronous(target)) throw new TypeError('resthooks/drizzle: better-sqlite3 transactions cannot await: use transactionSync');
      return core.transaction(
        target,
        (body: (tx: DrizzleTransactionOf<D> & object) => Promise<R>) => target.transaction(body as never, config as never) as Promise<R>,
        (tx) => (text, parameters) => runRaw(tx as RawRunner, text, parameters),
        work as (tx: DrizzleTransactionOf<D> & object) => Promise<R>,
      );
    },
    insertSync: <T extends Table>(target: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]) =>
      inTransactionSync(target, (tx) => {
        const rows = insertQuery(tx, table, values).all();
        recordSync(tx, table, 'created', rows);
        return rows as InferSelectModel<T>[];
      }),
    updateSync: <T extends Table>(target: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined) =>
      inTransactionSync(target, (tx) => {
        const rows = updateQuery(tx, table, set, where).all();
        recordSync(tx, table, 'updated', rows, set);
        return rows as InferSelectModel<T>[];
      }),
    deleteSync: <T extends Table>(target: DrizzleDatabase, table: T, where: SQL | undefined) =>
      inTransactionSync(target, (tx) => {
        const rows = deleteQuery(tx, table, where).all();
        recordSync(tx, table, 'deleted', rows);
        return rows as InferSelectModel<T>[];
      }),
    transactionSync<D extends DrizzleDatabase, R>(target: D, work: (tx: DrizzleTransactionOf<D>) => R, config?: DrizzleConfigOf<D>) {
      if (!isSynchronous(target)) throw new TypeError('resthooks/drizzle: transactionSync() is for synchronous SQLite databases (better-sqlite3); use transaction()');
      return core.transactionSync(
        target,
        (body: (tx: DrizzleTransactionOf<D> & object) => R) => target.transaction(body as never, config as never) as R,
        work as (tx: DrizzleTransactionOf<D> & object) => R,
      );
    },
  };
  return helpers;
}

/** Drizzle's SQLite databases say whether they run synchronously (better-sqlite3, Bun, Durable Objects). */
function isSynchronous(db: DrizzleDatabase): boolean {
  return (db as { resultKind?: unknown }).resultKind === 'sync';
}

/** Drizzle transactions (and savepoints) have `rollback()`; databases do not. */
function isTransaction(db: DrizzleDatabase): boolean {
  return typeof (db as RawRunner).rollback === 'function';
}

/** Runs a statement of the store's on the app's transaction: `run` on SQLite databases, `execute` on PostgreSQL ones. */
async function runRaw(tx: RawRunner, text: string, parameters: readonly unknown[]): Promise<void> {
  const statement = drizzleStatement(text, parameters);
  try {
    if (tx.run) await tx.run(statement);
    else if (tx.execute) await tx.execute(statement);
    else throw new Error('resthooks/drizzle: the database has neither run() nor execute()');
  } catch (error) {
    throw driverError(error);
  }
}

/** What a better-sqlite3 `Database` (a synchronous Drizzle database's public `$client`) offers here. */
interface SyncSqliteClient {
  readonly inTransaction: boolean;
  prepare(sql: string): { run(...parameters: unknown[]): unknown };
}

/**
 * `runRaw` for better-sqlite3: the statement has run when it returns. Through Drizzle, every outbox
 * insert is built and prepared again (about a third of a resthooks insert's cost); the store's SQL text
 * never changes, so while the connection of the database the helpers were made for is in its
 * transaction, the statement runs there, prepared once. Another connection's transaction goes through Drizzle.
 */
function syncRunner(db: DrizzleDatabase): (tx: RawRunner, text: string, parameters: readonly unknown[]) => unknown {
  const client = (db as { $client?: unknown }).$client;
  const direct = typeof client === 'object' && client !== null && typeof (client as SyncSqliteClient).prepare === 'function' ? (client as SyncSqliteClient) : undefined;
  const prepared = new Map<string, { run(...parameters: unknown[]): unknown }>();
  return (tx, text, parameters) => {
    try {
      if (!direct?.inTransaction) return tx.run?.(drizzleStatement(text, parameters));
      let statement = prepared.get(text);
      if (!statement) prepared.set(text, (statement = direct.prepare(text)));
      return statement.run(...parameters);
    } catch (error) {
      throw driverError(error);
    }
  };
}

/**
 * The driver's own error out of Drizzle's `DrizzleQueryError`, whose message lists every parameter
 * (the event's whole data): the reason the database gave is what the app's error should say.
 */
function driverError(error: unknown): unknown {
  const cause = error instanceof Error ? error.cause : undefined;
  return cause instanceof Error && error instanceof Error && error.message.startsWith('Failed query') ? cause : error;
}

/**
 * The store's compiled statement as Drizzle SQL, its parameters bound as Drizzle parameters: Drizzle
 * runs only its own SQL objects, and numbers the parameters again for the app's driver.
 */
function drizzleStatement(text: string, parameters: readonly unknown[]): SQL {
  const { texts, values } = placeholderParts({ sql: text, parameters });
  const chunks: SQL[] = [sql.raw(texts[0]!)];
  values.forEach((value, i) => chunks.push(sql`${value}`, sql.raw(texts[i + 1]!)));
  return sql.join(chunks);
}
