/**
 * `resthooksAdapter()`: a wrapper around a Prisma driver adapter factory (`new PrismaPg(…)`,
 * `new PrismaBetterSqlite3(…)`, any `SqlDriverAdapterFactory`) through which the Prisma extension writes
 * outbox rows on the driver's own transaction instead of `tx.$executeRawUnsafe`, whose trip through
 * Prisma's query executor costs more than the row itself.
 *
 * The extension marks each call it makes with a {@link DriverSlot} (AsyncLocalStorage); the wrapped
 * adapter, which Prisma calls in the same async context, fills it:
 * - `'interactive'`: the transaction the adapter opens for this `$transaction` call is recorded, and
 *   Prisma keeps running and committing it; the outbox row goes through it before the callback returns.
 * - `'hold'`: a write outside any transaction. The adapter opens a transaction of its own for the write's
 *   statements (including a transaction Prisma opens for the write, as for an upsert, which is joined to
 *   it) and holds it open, so that the outbox row commits with the write in one transaction and one
 *   round of the query executor, not two.
 * - `'detect'`: the extension asks whether the client's adapter is wrapped at all; without the wrapper
 *   every slot stays empty and the extension keeps to Prisma's public raw-statement path.
 *
 * Prisma's public driver adapter interface is used (`@prisma/driver-adapter-utils`; tested with Prisma 6.19 on
 * PostgreSQL and 7.10 on SQLite and PostgreSQL), typed structurally here: nothing is imported from Prisma. One
 * optimisation goes beyond it, on SQLite: `@prisma/adapter-better-sqlite3` (tested: 7.x) exposes its better-sqlite3
 * `Database` on each transaction as the plain property `client`, and prepares every statement it runs, so that
 * preparing the outbox INSERT cost about as much as running it. When a transaction's `client` is such a `Database`
 * (a `prepare` function, `inTransaction` true at the time: the transaction holds the adapter's one connection),
 * the outbox statements, and the COMMIT or ROLLBACK of a held transaction, run on it through statements prepared
 * once per connection (`sqliteTx`). Without that property, or with anything else in it, the public path is taken.
 * The adapter itself carries the same `Database` as `client`, its one connection: a held transaction begins on it
 * at once when no transaction is open or opening there (see `SqliteConnectionGate`).
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { sqliteTx, type SqlitePreparer } from '../../store/sqlite/sqlite-tx.js';
import type { SyncHostExecutor } from '../../triggers/triggers.js';

/** A statement as a Prisma driver adapter takes it. */
export interface DriverQuery {
  readonly sql: string;
  readonly args: unknown[];
  readonly argTypes: Array<{ readonly scalarType: string; readonly arity: 'scalar' | 'list'; readonly dbType?: string }>;
}

/** A driver adapter's transaction (`Transaction` in `@prisma/driver-adapter-utils`). */
export interface DriverTransaction {
  readonly options: { readonly usePhantomQuery: boolean };
  queryRaw(query: DriverQuery): Promise<unknown>;
  executeRaw(query: DriverQuery): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** The parts of a driver adapter (`SqlDriverAdapter`) the wrapper takes over or reads. */
interface DriverAdapter {
  readonly provider?: string;
  readonly adapterName?: string;
  queryRaw(query: DriverQuery): Promise<unknown>;
  executeRaw(query: DriverQuery): Promise<number>;
  startTransaction(isolationLevel?: string): Promise<DriverTransaction>;
}

/** What `resthooksAdapter` needs of a driver adapter factory (`SqlDriverAdapterFactory`). */
export interface DriverAdapterFactoryLike {
  connect(): Promise<object>;
}

export type DriverSlot =
  | { readonly kind: 'detect'; seen: boolean }
  | { readonly kind: 'interactive'; transaction?: DriverTransaction; sealed: boolean }
  /** `started`: the held transaction, once `held` has resolved. */
  | { readonly kind: 'hold'; held?: Promise<DriverTransaction>; started?: DriverTransaction; ended: boolean };

export interface ResthooksAdapterOptions {
  /**
   * How long a write outside a transaction waits for the transaction resthooks opens for it (a free pool
   * connection; on SQLite, the end of an open transaction), in milliseconds. Default 2000, as Prisma's own
   * `transactionOptions.maxWait`.
   */
  maxWait?: number;
}

/**
 * What the extension and the wrapped adapter know of the async context they run in: the nearest slot, and
 * each extension's nearest scope (prisma-adapter.ts), newest first. One AsyncLocalStorage holds both, for
 * the process: every storage in use makes each promise the app creates, ours or not, copy its value (Node's
 * promise hook), about 90 ns per promise and storage here, and a Prisma write creates dozens.
 */
interface Context {
  readonly slot: DriverSlot | undefined;
  readonly scopes: ScopeLink | undefined;
}
interface ScopeLink {
  /** The extension (one per `withResthooks` call) the scope is of: another client's calls must not see it. */
  readonly owner: object;
  readonly scope: object;
  readonly outer: ScopeLink | undefined;
}

const context = new AsyncLocalStorage<Context>();

/** Runs `work` with `slot` visible to every wrapped adapter it reaches. */
export function inSlot<T>(slot: DriverSlot, work: () => T): T {
  return context.run({ slot, scopes: context.getStore()?.scopes }, work);
}

/** Runs `work` with `scope` as `owner`'s scope (see `scopeOf`); the slot stays as it is. */
export function inScope<T>(owner: object, scope: object, work: () => T): T {
  const current = context.getStore();
  return context.run({ slot: current?.slot, scopes: { owner, scope, outer: current?.scopes } }, work);
}

/** Runs `work` with `slot` (when given; else the current one) and `scope` as `owner`'s scope, in one context. */
export function inContext<T>(slot: DriverSlot | undefined, owner: object, scope: object, work: () => T): T {
  const current = context.getStore();
  return context.run({ slot: slot ?? current?.slot, scopes: { owner, scope, outer: current?.scopes } }, work);
}

/** `owner`'s nearest scope in the current async context. */
export function scopeOf(owner: object): object | undefined {
  for (let link = context.getStore()?.scopes; link !== undefined; link = link.outer) if (link.owner === owner) return link.scope;
  return undefined;
}

function currentSlot(): DriverSlot | undefined {
  return context.getStore()?.slot;
}

/**
 * Wraps a Prisma driver adapter factory so that `withResthooks` writes outbox rows through the driver's
 * own transaction: give the result to `new PrismaClient({ adapter })`. Every other call goes to the
 * factory and its adapter unchanged.
 * @example
 * import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
 * import { resthooksAdapter, withResthooks } from 'resthooks/prisma';
 *
 * const prisma = await withResthooks(new PrismaClient({ adapter: resthooksAdapter(new PrismaBetterSqlite3({ url: 'file:app.db' })) }), hooks);
 */
export function resthooksAdapter<Factory extends DriverAdapterFactoryLike>(factory: Factory, options: ResthooksAdapterOptions = {}): Factory {
  if (typeof factory?.connect !== 'function') throw new TypeError('resthooks/prisma: resthooksAdapter() needs a Prisma driver adapter factory (one with connect())');
  const maxWait = options.maxWait ?? 2000;
  return overriding(factory, {
    connect: async () => {
      const adapter = (await factory.connect()) as DriverAdapter;
      const gate = await SqliteConnectionGate.of(adapter);
      // Every transaction Prisma or a held write opens through the adapter passes the gate, if there is one.
      const begin: Begin = gate
        ? (isolationLevel, started) => gate.start(isolationLevel, started)
        : (isolationLevel, started) => (started ? adapter.startTransaction(isolationLevel).then((transaction) => (started(transaction), transaction)) : adapter.startTransaction(isolationLevel));
      const starts = new StartWatch(maxWait, () => begin(undefined));
      const hold = (slot: Hold): Promise<DriverTransaction> => {
        if (slot.held) return slot.held;
        let begun: DriverTransaction | undefined;
        try {
          begun = gate?.beginHeld();
        } catch (error) {
          return (slot.held = Promise.reject(databaseError(error)));
        }
        if (begun) return (slot.held = Promise.resolve((slot.started = begun)));
        return (slot.held = starts.start().then((transaction) => (slot.started = transaction)));
      };
      return overriding(adapter, {
        queryRaw: (query: DriverQuery) => statement(adapter, hold, (target) => target.queryRaw(query)),
        executeRaw: (query: DriverQuery) => statement(adapter, hold, (target) => target.executeRaw(query)),
        startTransaction: (isolationLevel?: string) => startTransaction(begin, hold, isolationLevel),
      });
    },
  });
}

type Hold = Extract<DriverSlot, { kind: 'hold' }>;
/** Starts a transaction through the adapter; `started` is told of it as it resolves (in the same `then`: one promise fewer). */
type Begin = (isolationLevel: string | undefined, started?: (transaction: DriverTransaction) => void) => Promise<DriverTransaction>;

/** A statement Prisma runs outside any transaction: in the held one while a watched write runs. */
// Not async functions: an extra promise and await on every statement Prisma runs, watched or not, costs more
// than the rest of the wrapper's work.
function statement<R>(adapter: DriverAdapter, hold: (slot: Hold) => Promise<DriverTransaction>, run: (target: DriverAdapter | DriverTransaction) => Promise<R>): Promise<R> {
  const slot = currentSlot();
  if (slot?.kind === 'detect') slot.seen = true;
  if (slot?.kind !== 'hold' || slot.ended) return run(adapter);
  if (slot.started) return run(slot.started);
  const held = hold(slot);
  // Begun at once on SQLite's connection (see SqliteConnectionGate): no need to wait for the promise.
  return slot.started ? run(slot.started) : held.then(run);
}

function startTransaction(begin: Begin, hold: (slot: Hold) => Promise<DriverTransaction>, isolationLevel: string | undefined): Promise<DriverTransaction> {
  const slot = currentSlot();
  if (slot?.kind === 'hold' && !slot.ended) return hold(slot).then(joined);
  if (slot?.kind !== 'interactive' || slot.sealed) return begin(isolationLevel);
  return begin(isolationLevel, (transaction) => {
    // The first transaction opened for a `$transaction` call, before its callback runs, is that call's.
    if (!slot.sealed && !slot.transaction) slot.transaction = transaction;
  });
}

interface PendingStart {
  readonly deadline: number;
  readonly reject: (error: Error) => void;
}

/**
 * Starts the transactions held for writes, each rejected if it has not started within `maxWait` ms (as
 * Prisma's own `maxWait`): a write outside a transaction, made on SQLite inside another transaction's
 * callback, would otherwise wait for ever. One that starts too late is rolled back at once.
 *
 * One timer watches every pending start, armed for the earliest deadline: a start almost always succeeds
 * at once, and a timer set and cleared for each write cost more than the rest of the start. The timer
 * keeps the process alive only while a start is pending.
 */
class StartWatch {
  /** In the order they began, which is the order of their deadlines (one `maxWait` for all). */
  readonly #pending = new Set<PendingStart>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxWait: number,
    private readonly begin: () => Promise<DriverTransaction>,
  ) {}

  start(): Promise<DriverTransaction> {
    const starting = this.begin();
    return new Promise<DriverTransaction>((resolve, reject) => {
      const pending: PendingStart = { deadline: Date.now() + this.maxWait, reject };
      this.#pending.add(pending);
      // A timer already armed is armed for an earlier deadline.
      if (this.#timer) this.#timer.ref();
      else this.#timer = setTimeout(() => this.#expire(), this.maxWait);
      starting.then(
        (transaction) => {
          if (this.#settled(pending)) resolve(transaction);
          else void rollback(transaction).catch(() => undefined);
        },
        (error: unknown) => {
          if (this.#settled(pending)) reject(error);
        },
      );
    });
  }

  /** Whether `pending` was still waiting (not given up on); it waits no longer. */
  #settled(pending: PendingStart): boolean {
    const waiting = this.#pending.delete(pending);
    if (this.#pending.size === 0) this.#timer?.unref();
    return waiting;
  }

  #expire(): void {
    this.#timer = undefined;
    const now = Date.now();
    for (const pending of this.#pending) {
      if (pending.deadline > now) {
        this.#timer = setTimeout(() => this.#expire(), pending.deadline - now);
        return;
      }
      this.#pending.delete(pending);
      pending.reject(new Error(`resthooks/prisma: no transaction could be started for a write within ${this.maxWait} ms (resthooksAdapter's maxWait)`));
    }
  }
}

/**
 * `@prisma/adapter-better-sqlite3` runs every transaction on its one connection, one at a time: its
 * `startTransaction` takes an async mutex, prepares BEGIN and runs it. For a write outside a transaction,
 * that start (the mutex's promises, a BEGIN prepared anew) cost more than the rest of what resthooks adds.
 * When nothing has a transaction open or opening on the connection, a held transaction begins on it at once
 * instead, with a BEGIN prepared once. The adapter's mutex knows nothing of it, so every transaction started
 * through the wrapped adapter passes here first and waits until that held transaction has ended; a held
 * transaction does not begin while such a start is under way (it may hold the mutex, its BEGIN not yet run).
 * The adapter's plain statements run on the connection as before: inside whatever transaction is open there.
 */
class SqliteConnectionGate {
  /** Starts through the adapter not yet settled. */
  #starting = 0;
  /** Resolves when the held transaction begun here ends; undefined while there is none. */
  #ended: Promise<void> | undefined;

  private constructor(
    private readonly adapter: DriverAdapter,
    private readonly connection: SqliteConnection,
  ) {}

  /**
   * The gate of `adapter`'s connection, if its `client` is a better-sqlite3 `Database` and the one its
   * transactions run on: a transaction started through it (then rolled back) must be open there and carry
   * the same `client`. Otherwise (another driver, a `client` of another kind) none, and held transactions
   * start through the adapter.
   */
  static async of(adapter: DriverAdapter): Promise<SqliteConnectionGate | undefined> {
    const connection = sqliteConnection((adapter as { readonly client?: unknown }).client);
    if (!connection || connection.inTransaction) return undefined;
    try {
      const transaction = await adapter.startTransaction();
      const open = connection.inTransaction && (transaction as { readonly client?: unknown }).client === connection;
      await rollback(transaction);
      return open && !connection.inTransaction ? new SqliteConnectionGate(adapter, connection) : undefined;
    } catch {
      return undefined;
    }
  }

  /** A held transaction begun now, if the connection is free; otherwise undefined (start one through `start`). */
  beginHeld(): DriverTransaction | undefined {
    if (this.#ended || this.#starting > 0 || this.connection.inTransaction) return undefined;
    sqliteTx(this.connection)('BEGIN', NO_PARAMETERS);
    let end!: () => void;
    this.#ended = new Promise<void>((resolve) => (end = resolve));
    return new HeldSqliteTransaction(this.adapter, this.connection, () => {
      this.#ended = undefined;
      end();
    });
  }

  /** The adapter's own `startTransaction`, once no held transaction begun here is open; `started` as in `Begin`. */
  start(isolationLevel: string | undefined, started?: (transaction: DriverTransaction) => void): Promise<DriverTransaction> {
    if (this.#ended) return this.#ended.then(() => this.start(isolationLevel, started));
    this.#starting++;
    return this.adapter.startTransaction(isolationLevel).then(
      (transaction) => {
        this.#starting--;
        started?.(transaction);
        return transaction;
      },
      (error: unknown) => {
        this.#starting--;
        throw error;
      },
    );
  }
}

/**
 * A transaction begun by `SqliteConnectionGate.beginHeld`: its statements are the adapter's, which run on the
 * connection it is open on. `commit()` and `rollback()` end only the hold (the COMMIT or ROLLBACK is sent
 * before, as for the adapter's own transactions).
 */
class HeldSqliteTransaction implements DriverTransaction {
  readonly options = { usePhantomQuery: false };
  readonly provider: string | undefined;
  readonly adapterName: string | undefined;

  constructor(
    private readonly adapter: DriverAdapter,
    /** The connection, where `openSqliteConnection` looks for it. */
    readonly client: SqliteConnection,
    private readonly end: () => void,
  ) {
    this.provider = adapter.provider;
    this.adapterName = adapter.adapterName;
  }

  queryRaw(query: DriverQuery): Promise<unknown> {
    return this.adapter.queryRaw(query);
  }

  executeRaw(query: DriverQuery): Promise<number> {
    return this.adapter.executeRaw(query);
  }

  commit(): Promise<void> {
    this.end();
    return Promise.resolve();
  }

  rollback(): Promise<void> {
    this.end();
    return Promise.resolve();
  }

  async createSavepoint(name: string): Promise<void> {
    await this.adapter.executeRaw(raw(`SAVEPOINT ${name}`));
  }

  async rollbackToSavepoint(name: string): Promise<void> {
    await this.adapter.executeRaw(raw(`ROLLBACK TO ${name}`));
  }

  async releaseSavepoint(name: string): Promise<void> {
    await this.adapter.executeRaw(raw(`RELEASE SAVEPOINT ${name}`));
  }
}

/**
 * The held transaction, as Prisma sees it when it opens one of its own for the write: its end is left to
 * the holder, and `usePhantomQuery` keeps Prisma from sending COMMIT or ROLLBACK itself. Prisma rolls back
 * only when the write fails, which the holder sees too: it rolls the held transaction back then.
 */
function joined(held: DriverTransaction): DriverTransaction {
  return overriding(held, {
    options: { ...held.options, usePhantomQuery: true },
    commit: () => Promise.resolve(),
    rollback: () => Promise.resolve(),
  });
}

/**
 * Ends a slot's held transaction, if the write opened one: COMMIT (`commit` true) or ROLLBACK. From then on
 * statements of the slot's context run as they would without it.
 */
export async function endHold(slot: Hold, commit: boolean): Promise<void> {
  slot.ended = true;
  if (!slot.held) return;
  const transaction = slot.started ?? (await slot.held);
  if (commit) {
    try {
      if (!transaction.options.usePhantomQuery) await end(transaction, 'COMMIT');
    } catch (error) {
      await rollback(transaction);
      throw error;
    }
    await transaction.commit();
    return;
  }
  await rollback(transaction);
}

async function rollback(transaction: DriverTransaction): Promise<void> {
  try {
    if (!transaction.options.usePhantomQuery) await end(transaction, 'ROLLBACK');
  } finally {
    await transaction.rollback();
  }
}

/** Sends COMMIT or ROLLBACK on `transaction`'s connection; the driver's `commit()`/`rollback()` then releases it. */
function end(transaction: DriverTransaction, statement: 'COMMIT' | 'ROLLBACK'): Promise<unknown> | unknown {
  const connection = openSqliteConnection(transaction);
  return connection ? sqliteTx(connection)(statement, NO_PARAMETERS) : transaction.executeRaw(raw(statement));
}

/** Runs a store statement on a driver transaction. Its parameters are strings, numbers and nulls: no Prisma type says more. */
export async function executeOn(transaction: DriverTransaction, sql: string, parameters: readonly unknown[]): Promise<number> {
  try {
    const connection = openSqliteConnection(transaction);
    // The store compiled the statement for better-sqlite3 itself: its parameters need none of the adapter's conversions.
    if (connection) return (sqliteTx(connection)(sql, parameters) as { changes: number }).changes;
    return await transaction.executeRaw({ sql, args: [...parameters], argTypes: parameters.map(() => UNKNOWN) });
  } catch (error) {
    throw databaseError(error);
  }
}

/**
 * An executor that runs a store statement on `transaction` before it returns, if it can (the better-sqlite3
 * fast path, see the module comment).
 */
export function syncExecutorOn(transaction: DriverTransaction | undefined): SyncHostExecutor | undefined {
  const connection = transaction && openSqliteConnection(transaction);
  return connection && sqliteTx(connection);
}

/** A better-sqlite3 `Database`, as `@prisma/adapter-better-sqlite3` exposes it (see the module comment). */
interface SqliteConnection extends SqlitePreparer {
  readonly inTransaction: boolean;
}

/** `transaction`'s better-sqlite3 `Database`, if it has one and a transaction is open on it now. */
function openSqliteConnection(transaction: DriverTransaction): SqliteConnection | undefined {
  const connection = sqliteConnection((transaction as { readonly client?: unknown }).client);
  return connection?.inTransaction === true ? connection : undefined;
}

/** `client`, if it is a better-sqlite3 `Database` (by shape). */
function sqliteConnection(client: unknown): SqliteConnection | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  const connection = client as Partial<SqliteConnection>;
  return typeof connection.prepare === 'function' && typeof connection.inTransaction === 'boolean' ? (connection as SqliteConnection) : undefined;
}

/**
 * A driver adapter's `DriverAdapterError` names only the kind of failure (`sqlite`, `postgres`); the
 * database's own words are in its `cause`, which Prisma turns into its message for the app's queries.
 */
function databaseError(error: unknown): unknown {
  const cause = error instanceof Error ? (error.cause as { originalMessage?: unknown; message?: unknown } | undefined) : undefined;
  const said = cause?.originalMessage ?? cause?.message;
  return typeof said === 'string' && error instanceof Error && !error.message.includes(said) ? new Error(said, { cause: error }) : error;
}

const NO_PARAMETERS: readonly unknown[] = [];
const UNKNOWN = { scalarType: 'unknown', arity: 'scalar' } as const;

function raw(sql: string): DriverQuery {
  return { sql, args: [], argTypes: [] };
}

/**
 * `target` with some members replaced; the rest read from `target` itself, methods bound to it (driver
 * adapters keep state in private fields, which a proxy as `this` could not reach).
 */
function overriding<T extends object>(target: T, members: Record<string, unknown>): T {
  return new Proxy(target, {
    get(object, key) {
      if (typeof key === 'string' && Object.hasOwn(members, key)) return members[key];
      const value: unknown = Reflect.get(object, key, object);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
  });
}
