/**
 * The `tx` of a trigger on a better-sqlite3 connection, with the store's statements prepared once per
 * connection. Preparing the outbox INSERT costs about as much as running it (SQLite compiles the insert
 * into every index of the event table), so an executor that prepares on every call pays that on every
 * save. Typed by shape: no driver is imported here.
 * @module
 */
import type { SyncHostExecutor } from '../../triggers/triggers.js';

/** What `sqliteTx` needs of a better-sqlite3 `Database`. */
export interface SqlitePreparer {
  prepare(sql: string): { run(...parameters: unknown[]): unknown };
}

type Prepared = ReturnType<SqlitePreparer['prepare']>;

/**
 * The store writes a handful of statement texts; the bound keeps a connection that is handed other SQL
 * from growing without end (the oldest statement is dropped first).
 */
const MAX_STATEMENTS = 32;
const caches = new WeakMap<SqlitePreparer, Map<string, Prepared>>();

/**
 * A `tx` for `hooks.model()` and `hooks.modelSync()` that runs each statement on `db`, in whatever
 * transaction `db` has open, preparing each SQL text once per connection. Calls with the same `db`
 * share its statements.
 * @example
 * db.exec('BEGIN IMMEDIATE');
 * db.prepare('insert into books (id, title, owner_id) values (?, ?, ?)').run(book.id, book.title, book.ownerId);
 * await hooks.model('Book', 'created', book, { tx: sqliteTx(db) });
 * db.exec('COMMIT');
 */
export function sqliteTx(db: SqlitePreparer): SyncHostExecutor {
  let statements = caches.get(db);
  if (!statements) caches.set(db, (statements = new Map()));
  const cache = statements;
  return (sql, parameters) => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      if (cache.size >= MAX_STATEMENTS) cache.delete(cache.keys().next().value!);
      cache.set(sql, statement);
    }
    return statement.run(...parameters);
  };
}
