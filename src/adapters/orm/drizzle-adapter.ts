/**
 * `resthooks/drizzle`: Drizzle has no lifecycle hooks, so its writes fire events through small typed
 * helpers. Each one runs the insert / update / delete with `.returning()` and writes the outbox row in
 * the same transaction, right after the write: the database keeps or drops both together (a rolled-back
 * transaction or savepoint takes its outbox rows with it). The resthooks store must live in the app's
 * database. Asynchronous drivers (node-postgres, postgres.js, libsql, …) use `insert` / `update` /
 * `delete` / `transaction`; better-sqlite3, whose transactions cannot await, uses the `…Sync` helpers.
 *
 * Imports Drizzle for `sql` and types only (it is an optional peer of this entry).
 * @module
 */
import { getTableName, sql, type InferInsertModel, type InferSelectModel, type SQL, type Table } from 'drizzle-orm';
import type { Hooks, JsonValue, Logger } from '../../index.js';

export interface DrizzleHooksOptions {
  /**
   * The events map's model names for Drizzle tables, e.g. `{ Book: books }`. A table not listed here
   * is known by its table name (`getTableName(table)`, `'books'`), so `'books.created'` works too.
   */
  models?: Readonly<Record<string, Table>>;
  /** Add `changes` (the keys of the update's `set`) beside `data` in `updated` payloads. Default true. */
  changes?: boolean;
  /** Where a table that no event names is reported (once per table). Default: silent. */
  logger?: Logger;
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
  /** Inserts `values` and fires `created` for each row returned. Returns the rows. */
  insert<T extends Table>(db: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]): Promise<InferSelectModel<T>[]>;
  /** Updates the rows `where` selects and fires `updated` for each (with `changes`: the keys of `set`). Returns the rows. */
  update<T extends Table>(db: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined): Promise<InferSelectModel<T>[]>;
  /** Deletes the rows `where` selects and fires `deleted` for each, with the row as it was. Returns the rows. */
  delete<T extends Table>(db: DrizzleDatabase, table: T, where: SQL | undefined): Promise<InferSelectModel<T>[]>;
  /** `db.transaction(work)`, then wakes the dispatcher once it has committed. */
  transaction<D extends DrizzleDatabase, R>(db: D, work: (tx: DrizzleTransactionOf<D>) => Promise<R>, config?: DrizzleConfigOf<D>): Promise<R>;
  /** `insert` for better-sqlite3: runs and writes the outbox row before it returns. */
  insertSync<T extends Table>(db: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]): InferSelectModel<T>[];
  updateSync<T extends Table>(db: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined): InferSelectModel<T>[];
  deleteSync<T extends Table>(db: DrizzleDatabase, table: T, where: SQL | undefined): InferSelectModel<T>[];
  /** better-sqlite3's synchronous `db.transaction(work)`, then wakes the dispatcher once it has committed. */
  transactionSync<D extends DrizzleDatabase, R>(db: D, work: (tx: DrizzleTransactionOf<D>) => R, config?: DrizzleConfigOf<D>): R;
}

type Action = 'created' | 'updated' | 'deleted';
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
 * Makes the helpers that fire the events map's `created` / `updated` / `deleted` events for Drizzle writes.
 * Called with a transaction, a helper writes within it (a failure to record the event throws
 * `OutboxWriteError`: let it leave the callback so the transaction rolls back). Called with the database
 * itself, it opens a transaction around the write and its outbox row. Call it after `hooks.start()`.
 * @example
 * import { eq } from 'drizzle-orm';
 * import { drizzleHooks } from 'resthooks/drizzle';
 *
 * const rh = drizzleHooks(hooks, { models: { Book: books } });
 * await rh.transaction(db, async (tx) => {
 *   const [book] = await rh.insert(tx, books, { title: 'Dune', ownerId: 'alice' }); // book.added, after COMMIT
 *   await rh.update(tx, books, { title: 'Dune Messiah' }, eq(books.id, book.id));   // book.changed, changes: ['title']
 * });
 * // better-sqlite3: rh.transactionSync(db, (tx) => { rh.insertSync(tx, books, { … }); });
 */
export function drizzleHooks(hooks: Hooks, options: DrizzleHooksOptions = {}): DrizzleHooks {
  const names = new Map<Table, string>(Object.entries(options.models ?? {}).map(([model, table]) => [table, model]));
  const watched = hooks.eventActions();
  const warned = new Set<string>();
  const withChanges = options.changes !== false;
  /** Counts outbox writes, so a transaction that wrote none does not wake the dispatcher. */
  let writes = 0;

  const modelOf = (table: Table, action: Action): string | undefined => {
    const model = names.get(table) ?? getTableName(table);
    const actions = watched[model];
    if (!actions && !warned.has(model)) {
      warned.add(model);
      options.logger?.warn({ model }, `resthooks/drizzle: table "${getTableName(table)}" is no model of the events map; its writes fire nothing (name it with models: { Book: ${getTableName(table)} })`);
    }
    return actions?.[action] ? model : undefined;
  };
  const extraOf = (action: Action, set: object | undefined): { extra?: { changes: JsonValue[] } } =>
    action === 'updated' && withChanges && set ? { extra: { changes: Object.keys(set).filter((key) => (set as Row)[key] !== undefined) } } : {};

  const record = async (tx: RawRunner, table: Table, action: Action, rows: readonly Row[], set?: object): Promise<void> => {
    const model = modelOf(table, action);
    if (!model) return;
    const executor = (text: string, parameters: readonly unknown[]) => runRaw(tx, text, parameters);
    for (const row of rows) await hooks.model(model, action, row, { tx: executor, ...extraOf(action, set) });
    if (rows.length > 0) writes++;
  };
  const recordSync = (tx: RawRunner, table: Table, action: Action, rows: readonly Row[], set?: object): void => {
    const model = modelOf(table, action);
    if (!model) return;
    const executor = (text: string, parameters: readonly unknown[]) => {
      try {
        return tx.run?.(drizzleStatement(text, parameters));
      } catch (error) {
        throw driverError(error);
      }
    };
    for (const row of rows) hooks.modelSync(model, action, row, { tx: executor, ...extraOf(action, set) });
    if (rows.length > 0) writes++;
  };

  /** Runs `write` in `db` when it is a transaction, else in a transaction of its own; wakes delivery after a commit. */
  const inTransaction = async <R>(db: DrizzleDatabase, write: (tx: DrizzleDatabase) => Promise<R>): Promise<R> => {
    // Awaited in better-sqlite3's transaction, a write would run after its COMMIT, alone: refused before it runs.
    if (isSynchronous(db)) throw new TypeError('resthooks/drizzle: this is a synchronous SQLite database (better-sqlite3): use insertSync / updateSync / deleteSync / transactionSync');
    if (isTransaction(db)) return write(db);
    return helpers.transaction(db, (tx) => write(tx as DrizzleDatabase));
  };
  const inTransactionSync = <R>(db: DrizzleDatabase, write: (tx: DrizzleDatabase) => R): R => {
    if (!isSynchronous(db)) throw new TypeError('resthooks/drizzle: the …Sync helpers need a synchronous SQLite database (better-sqlite3); use insert / update / delete / transaction');
    if (isTransaction(db)) return write(db);
    return helpers.transactionSync(db, (tx) => write(tx as DrizzleDatabase));
  };

  // The builders are typed for each driver; these calls go through the structural type above.
  const insertQuery = (db: DrizzleDatabase, table: Table, values: unknown) => db.insert(table as never).values(values as never).returning() as Returning;
  const updateQuery = (db: DrizzleDatabase, table: Table, set: object, where: SQL | undefined) => db.update(table as never).set(set as never).where(where).returning() as Returning;
  const deleteQuery = (db: DrizzleDatabase, table: Table, where: SQL | undefined) => db.delete(table as never).where(where).returning() as Returning;

  const helpers: DrizzleHooks = {
    insert: <T extends Table>(db: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]) =>
      inTransaction(db, async (tx) => {
        const rows = await insertQuery(tx, table, values);
        await record(tx as RawRunner, table, 'created', rows);
        return rows as InferSelectModel<T>[];
      }),
    update: <T extends Table>(db: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined) =>
      inTransaction(db, async (tx) => {
        const rows = await updateQuery(tx, table, set, where);
        await record(tx as RawRunner, table, 'updated', rows, set);
        return rows as InferSelectModel<T>[];
      }),
    delete: <T extends Table>(db: DrizzleDatabase, table: T, where: SQL | undefined) =>
      inTransaction(db, async (tx) => {
        const rows = await deleteQuery(tx, table, where);
        await record(tx as RawRunner, table, 'deleted', rows);
        return rows as InferSelectModel<T>[];
      }),
    async transaction<D extends DrizzleDatabase, R>(db: D, work: (tx: DrizzleTransactionOf<D>) => Promise<R>, config?: DrizzleConfigOf<D>) {
      if (isSynchronous(db)) throw new TypeError('resthooks/drizzle: better-sqlite3 transactions cannot await: use transactionSync');
      const before = writes;
      const result = (await db.transaction(work as never, config as never)) as R;
      if (writes !== before) hooks.notify();
      return result;
    },
    insertSync: <T extends Table>(db: DrizzleDatabase, table: T, values: InferInsertModel<T> | readonly InferInsertModel<T>[]) =>
      inTransactionSync(db, (tx) => {
        const rows = insertQuery(tx, table, values).all();
        recordSync(tx as RawRunner, table, 'created', rows);
        return rows as InferSelectModel<T>[];
      }),
    updateSync: <T extends Table>(db: DrizzleDatabase, table: T, set: DrizzleUpdateSet<T>, where: SQL | undefined) =>
      inTransactionSync(db, (tx) => {
        const rows = updateQuery(tx, table, set, where).all();
        recordSync(tx as RawRunner, table, 'updated', rows, set);
        return rows as InferSelectModel<T>[];
      }),
    deleteSync: <T extends Table>(db: DrizzleDatabase, table: T, where: SQL | undefined) =>
      inTransactionSync(db, (tx) => {
        const rows = deleteQuery(tx, table, where).all();
        recordSync(tx as RawRunner, table, 'deleted', rows);
        return rows as InferSelectModel<T>[];
      }),
    transactionSync<D extends DrizzleDatabase, R>(db: D, work: (tx: DrizzleTransactionOf<D>) => R, config?: DrizzleConfigOf<D>) {
      if (!isSynchronous(db)) throw new TypeError('resthooks/drizzle: transactionSync() is for synchronous SQLite databases (better-sqlite3); use transaction()');
      const before = writes;
      const result = db.transaction(work as never, config as never);
      if (writes !== before) hooks.notify();
      return result as R;
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
 * runs only its own SQL objects, and numbers the parameters again for the app's driver. The store
 * compiles `$1`-style (PostgreSQL) or `?`-style (SQLite) placeholders, each parameter once.
 */
function drizzleStatement(text: string, parameters: readonly unknown[]): SQL {
  const chunks: SQL[] = [];
  let last = 0;
  let next = 0;
  for (const match of text.matchAll(/\$(\d+)|\?/g)) {
    const at = match[1] === undefined ? next++ : Number(match[1]) - 1;
    if (at < 0 || at >= parameters.length) throw new Error(`resthooks/drizzle: placeholder ${match[0]} has no parameter`);
    chunks.push(sql.raw(text.slice(last, match.index)), sql`${parameters[at]}`);
    last = match.index + match[0].length;
  }
  chunks.push(sql.raw(text.slice(last)));
  return sql.join(chunks);
}
