import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Driver,
  type Kysely,
  type QueryResult,
} from 'kysely';
import { ConfigError } from '../../errors.js';
import type { CompiledStatement } from '../host-executor.js';
import type { StatementResult, StoreDialect } from '../store-dialect.js';
import { checkpointableFile, SqliteCheckpointer, type SqliteFileInfo } from './sqlite-checkpointer.js';

/**
 * The few members of a better-sqlite3 `Database` the store calls. Declared here, structurally, so
 * the core never imports `better-sqlite3` (the user passes in `new Database(file)`).
 */
export interface SqliteDatabase extends SqliteFileInfo {
  prepare(sql: string): SqliteStatement;
  close(): void;
}
export interface SqliteStatement {
  readonly reader: boolean;
  all(...parameters: readonly unknown[]): unknown[];
  run(...parameters: readonly unknown[]): { changes: number | bigint };
  /** Rows as arrays of values from now on (better-sqlite3's raw mode). */
  raw(toggle: boolean): SqliteStatement;
}

export interface SqliteStoreDialectOptions {
  /**
   * How long a statement keeps retrying while another connection holds the write lock. The wait is
   * asynchronous (timers, not SQLite's blocking busy handler), so the app's own connection in the same
   * process can finish its transaction meanwhile instead of deadlocking against us. Default 10 s.
   */
  busyTimeoutMs?: number;
  /**
   * WAL checkpoints in a worker thread with its own connection to the file, from `hooks.start()` to
   * `hooks.stop()`, so that the thread delivering never runs one (a 30–40 ms stall about once a second at
   * 1,000 events/s otherwise). `walPages`: the WAL length at which it checkpoints (default 1,000 pages).
   * `false`: no thread (one less connection and V8 isolate); the store's connection then checkpoints
   * every 10,000 pages itself, as it always does when the thread is not running. Default: on, for a file.
   */
  checkpointer?: boolean | { walPages?: number };
}

const STATEMENT_CACHE_SIZE = 256;
// Parameters are passed as arguments, not as one array, up to this many: better-sqlite3 reads an array's
// elements through V8's generic property lookup, about 50 ns each (the fan-out's insert and the record's
// update bind 11 and 14 per delivery, ~0.6 µs a statement). A longer list (an `in (…)` of many ids) stays
// one array, so no call ever pushes thousands of arguments onto the stack.
const SPREAD_PARAMETERS = 256;
// The store connection's automatic checkpoint: with the checkpointer thread running, only a backstop
// (the thread keeps the WAL far shorter); without it, the checkpoint the write path pays. Every ~1,000
// pages (SQLite's default) is every few hundred outbox appends; ten times fewer, ten times rarer stalls on
// the write path (p99 of hooks.model() ~230 µs → ~90 µs here), for a WAL of up to ~40 MB.
const BACKSTOP_WAL_PAGES = 10_000;
const CHECKPOINTER_WAL_PAGES = 1_000;
const CHECKPOINTER_INTERVAL_MS = 20;

/**
 * Kysely's SQLite adapter says DDL is not transactional, so its Migrator would run without a
 * transaction and two processes migrating one file would race. SQLite's DDL is transactional, and
 * our `begin immediate` holds the write lock for the whole migration: migrators take turns.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

// One connection, one holder at a time. Uncontended, taking it costs no promise: the outbox
// append on every model save usually finds it free.
class Mutex {
  #held = false;
  readonly #waiters: Array<() => void> = [];
  readonly #release = () => {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  };

  tryLock(): (() => void) | undefined {
    if (this.#held) return undefined;
    this.#held = true;
    return this.#release;
  }

  lock(): Promise<() => void> {
    const release = this.tryLock();
    if (release) return Promise.resolve(release);
    return new Promise((resolve) => this.#waiters.push(() => resolve(this.#release)));
  }
}

const BEGIN = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED';
}

// Result codes (and their extended forms, e.g. SQLITE_IOERR_WRITE) for a database that cannot run a
// statement right now, as opposed to one that refuses its rows (SQLITE_CONSTRAINT, SQLITE_TOOBIG, …).
const UNAVAILABLE = ['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_NOMEM', 'SQLITE_PROTOCOL'];

export function isSqliteUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNAVAILABLE.some((prefix) => code === prefix || code.startsWith(`${prefix}_`));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function allRows(statement: SqliteStatement, parameters: readonly unknown[]): unknown[] {
  return parameters.length <= SPREAD_PARAMETERS ? statement.all(...parameters) : statement.all(parameters);
}

function runWrite(statement: SqliteStatement, parameters: readonly unknown[]): { changes: number | bigint } {
  return parameters.length <= SPREAD_PARAMETERS ? statement.run(...parameters) : statement.run(parameters);
}

class SqliteConnection implements DatabaseConnection {
  readonly #db: SqliteDatabase;
  readonly #busyTimeoutMs: number;
  readonly #statements = new Map<string, SqliteStatement>();
  /** The reads made in raw mode: a statement's mode is its own, so these are prepared apart. */
  readonly #rawStatements = new Map<string, SqliteStatement>();

  constructor(db: SqliteDatabase, busyTimeoutMs: number) {
    this.#db = db;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  // better-sqlite3 compiles a statement on every prepare(); the store runs the same few dozen
  // statements millions of times, so they are prepared once.
  statement(sql: string): SqliteStatement {
    return this.#prepared(this.#statements, sql, false);
  }

  /** A read's rows as arrays of values (see `StoreDialect.readArrays`). */
  readArraysSync(query: CompiledStatement): unknown[][] {
    return allRows(this.#prepared(this.#rawStatements, query.sql, true), query.parameters) as unknown[][];
  }

  #prepared(cache: Map<string, SqliteStatement>, sql: string, raw: boolean): SqliteStatement {
    let statement = cache.get(sql);
    if (!statement) {
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.clear();
      statement = raw ? this.#db.prepare(sql).raw(true) : this.#db.prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }

  runSync(query: CompiledStatement): StatementResult {
    const statement = this.statement(query.sql);
    if (statement.reader) return { rows: allRows(statement, query.parameters) as Record<string, unknown>[], changes: 0 };
    return { rows: [], changes: Number(runWrite(statement, query.parameters).changes) };
  }

  /** Retries on SQLITE_BUSY with growing timer delays, never blocking the event loop. */
  async withBusyRetry<T>(run: () => T): Promise<T> {
    const deadline = Date.now() + this.#busyTimeoutMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      try {
        return run();
      } catch (error) {
        if (!isBusy(error) || Date.now() >= deadline) throw error;
        await sleep(delay);
      }
    }
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.withBusyRetry(() => this.runSync(query));
    return { rows: result.rows as R[], numAffectedRows: BigInt(result.changes) };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('The resthooks SQLite store does not stream queries.');
  }
}

class SqliteStoreDriver implements Driver {
  readonly #mutex = new Mutex();
  readonly #connection: SqliteConnection;
  readonly #db: SqliteDatabase;
  #release: (() => void) | undefined;
  #openTransactions = 0;
  readonly checkpointer: SqliteCheckpointer | undefined;

  constructor(db: SqliteDatabase, busyTimeoutMs: number, checkpointer: SqliteCheckpointer | undefined) {
    this.#db = db;
    this.#connection = new SqliteConnection(db, busyTimeoutMs);
    this.checkpointer = checkpointer;
  }

  async init(): Promise<void> {
    // WAL: readers never block the writer and the writer never blocks readers; NORMAL sync is
    // durable against process crashes (kill -9), the guarantee the outbox promises.
    if (!this.#db.memory) this.#connection.runSync(CompiledQuery.raw('pragma journal_mode = wal'));
    this.#connection.runSync(CompiledQuery.raw('pragma synchronous = normal'));
    // A checkpoint (copy the WAL back, fsync) is paid by whichever commit crosses the threshold.
    this.#connection.runSync(CompiledQuery.raw(`pragma wal_autocheckpoint = ${BACKSTOP_WAL_PAGES}`));
    // Busy waits are done asynchronously in withBusyRetry; SQLite's own handler would block the thread.
    this.#connection.runSync(CompiledQuery.raw('pragma busy_timeout = 0'));
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    this.#release = await this.#mutex.lock();
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // IMMEDIATE takes the write lock up front, so a read-then-write transaction cannot fail halfway
    // with SQLITE_BUSY_SNAPSHOT when another connection wrote in between.
    await connection.executeQuery(BEGIN);
    this.#openTransactions++;
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    this.#openTransactions--;
    await connection.executeQuery(COMMIT);
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    this.#openTransactions--;
    await connection.executeQuery(ROLLBACK);
  }
  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
  async destroy(): Promise<void> {
    await this.checkpointer?.stop();
    this.#db.close();
  }

  /** A read as arrays; like `executeBatch`, it waits for the connection only while a Kysely transaction holds it. */
  async readArrays(query: CompiledStatement): Promise<unknown[][]> {
    const release = this.#openTransactions > 0 ? await this.#mutex.lock() : undefined;
    const connection = this.#connection;
    try {
      return await connection.withBusyRetry(() => connection.readArraysSync(query));
    } finally {
      release?.();
    }
  }

  /**
   * All statements between BEGIN and COMMIT run synchronously: no other code can interleave. So the
   * connection mutex matters only while a Kysely transaction (awaiting between its statements) is
   * open; otherwise a batch never waits behind a dispatcher query that merely holds the mutex
   * across promise turns, and the write path keeps its latency while the dispatcher works.
   */
  async executeBatch(queries: readonly CompiledStatement[]): Promise<StatementResult[]> {
    const release = this.#openTransactions > 0 ? await this.#mutex.lock() : undefined;
    const connection = this.#connection;
    try {
      // A single statement is atomic by itself (autocommit): no BEGIN/COMMIT round.
      if (queries.length === 1) return [await connection.withBusyRetry(() => connection.runSync(queries[0]!))];
      return await connection.withBusyRetry(() => {
        connection.runSync(BEGIN);
        try {
          const results = queries.map((query) => connection.runSync(query));
          connection.runSync(COMMIT);
          return results;
        } catch (error) {
          connection.runSync(ROLLBACK);
          throw error;
        }
      });
    } finally {
      release?.();
    }
  }
}

/**
 * The embedded engine: a better-sqlite3 database (a file, or `:memory:` for tests).
 * Give the store its own `Database` instance, separate from the app's connection to the same file.
 */
export function sqliteStoreDialect(database: SqliteDatabase, options: SqliteStoreDialectOptions = {}): StoreDialect {
  const file = options.checkpointer === false ? undefined : checkpointableFile(database);
  const walPages = (typeof options.checkpointer === 'object' ? options.checkpointer.walPages : undefined) ?? CHECKPOINTER_WAL_PAGES;
  if (!Number.isInteger(walPages) || walPages < 1) throw new ConfigError(`sqliteStore: checkpointer.walPages must be a whole number of pages, 1 or more (got ${walPages}).`);
  const checkpointer = file === undefined ? undefined : new SqliteCheckpointer(database, file, { walPages, intervalMs: CHECKPOINTER_INTERVAL_MS, backstopPages: BACKSTOP_WAL_PAGES });
  const driver = new SqliteStoreDriver(database, options.busyTimeoutMs ?? 10_000, checkpointer);
  return {
    name: 'sqlite',
    capabilities: { supportsSkipLocked: false, supportsArrayParameters: false, appendsFreshEvents: true, catchesUpSubscriptionHistory: true },
    kysely: {
      createAdapter: () => new TransactionalDdlSqliteAdapter(),
      createDriver: () => driver,
      createIntrospector: (db: Kysely<any>) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
    executeBatch: (queries) => driver.executeBatch(queries),
    readArrays: (query) => driver.readArrays(query),
    isUnavailable: isSqliteUnavailable,
    ...(checkpointer ? { maintenance: checkpointer } : {}),
  };
}
