/**
 * The transaction logic every ORM adapter shares, written once: writes are buffered per transaction
 * and nesting level, written to the outbox through the app's transaction just before its outermost
 * COMMIT (or appended after it), dropped with a rollback, and followed by a wake-up of the dispatcher.
 *
 * An ORM with transaction events (TypeORM, MikroORM, Sequelize) maps them onto `beforeCommit`,
 * `afterCommit`, `rollbackStarted` and `afterRollback`; one without them (Drizzle, Kysely, Prisma's
 * interactive transactions) lets `around` run its transaction call.
 * @module
 */
import { OutboxWriteError, ResthooksError } from '../../errors.js';
import type { Hooks } from '../../hooks.js';
import { loggedError, type Logger } from '../../logger.js';
import { announcingCommit, type CompiledStatement, type HostExecutor } from '../../store/host-executor.js';
import type { SyncHostExecutor } from '../../triggers/triggers.js';
import type { HostConnection, HostTransaction, ModelAction, OutboxMode, PendingWrite } from './orm-adapter.js';

export interface OutboxBridgeOptions {
  /** The adapter's entry point, which starts its log lines (`'resthooks/typeorm'`). */
  readonly adapter: string;
  /** pino's call shape. Default: silent. */
  readonly logger?: Logger;
}

export interface OutboxBridge {
  /** `'after-commit'` until {@link OutboxBridge.chooseMode} says otherwise. */
  readonly mode: OutboxMode;
  /**
   * Sets the mode. `'auto'` runs the same-database probe: `run` executes one statement on the app's own
   * connection, outside any transaction. Any failure of the probe means `'after-commit'`; never throws.
   */
  chooseMode(wanted: OutboxMode | 'auto', run: (statement: CompiledStatement) => Promise<unknown>): Promise<OutboxMode>;
  /** Whether the events map names this model and action: when not, the adapter need not even take a snapshot. */
  watches(model: string, action: ModelAction): boolean;
  /**
   * A write of the app. Inside a transaction (depth ≥ 1) it is buffered until the outermost COMMIT; with
   * no transaction it is appended at once, and the returned promise settles when it has been (never rejects).
   */
  write(tx: HostTransaction | undefined, write: PendingWrite): Promise<void> | void;
  /**
   * Call just before a COMMIT or a savepoint's release, while its level is still open. At the outermost
   * level in `'transaction'` mode, the buffered writes go to the outbox through `tx`; if one cannot be
   * written this rejects with `OutboxWriteError`, and the adapter must let that fail the app's commit.
   */
  beforeCommit(tx: HostTransaction): Promise<void>;
  /**
   * Call after a COMMIT or a savepoint's release. A released savepoint's writes join the level around it;
   * after the outermost COMMIT the dispatcher is woken, and in `'after-commit'` mode the writes are
   * appended (the promise settles when they have been; never rejects).
   */
  afterCommit(tx: HostTransaction): Promise<void>;
  /**
   * Call as soon as the ORM decides to roll back, before its ROLLBACK is sent: from then on the bridge
   * sends no statement on that transaction, since one sent after ROLLBACK would commit on its own.
   */
  rollbackStarted(tx: HostTransaction): void;
  /** Call after a ROLLBACK, or a rollback to a savepoint: the writes made at the levels rolled back are dropped. */
  afterRollback(tx: HostTransaction): void;
  /** Drops everything buffered for a transaction that ended without a commit or rollback event. */
  forget(key: object): void;
  /**
   * Runs the ORM's own transaction call for an ORM that has no commit events. `begin` calls the body it is
   * given inside a new transaction (or savepoint) and settles once that has committed or rolled back;
   * `connection` says how to run a statement in it and which outermost transaction it belongs to.
   * `work` gets the ORM's transaction and the {@link HostTransaction} to pass to `write`. Once `work`
   * resolves, the buffered writes are written through the transaction before the body returns (a failure
   * rejects the body, so the ORM rolls back); once `begin` resolves, the dispatcher is woken.
   * @example
   * // Kysely: db.transaction().execute(cb)
   * bridge.around((body) => db.transaction().execute(body), (trx) => ({ key: trx, execute: run(trx) }), (trx, tx) => app(trx, tx));
   */
  around<Trx, T>(
    begin: (body: (trx: Trx) => Promise<T>) => Promise<T>,
    connection: (trx: Trx) => HostConnection,
    work: (trx: Trx, tx: HostTransaction) => Promise<T>,
  ): Promise<T>;
}

interface BufferedWrite {
  readonly write: PendingWrite;
  /** The level (1 = outermost) the write belongs to, so that rolling back a savepoint drops only its own. */
  depth: number;
}

interface TransactionState {
  writes: BufferedWrite[];
  /** Rows were written through this transaction: wake the dispatcher once it commits. */
  wrote: boolean;
  /** Its rollback has begun: no statement of ours may follow. */
  aborted: boolean;
}

export function outboxBridge(hooks: Hooks, options: OutboxBridgeOptions): OutboxBridge {
  return new Bridge(hooks, options.adapter, options.logger);
}

class Bridge implements OutboxBridge {
  mode: OutboxMode = 'after-commit';
  readonly #hooks: Hooks;
  readonly #adapter: string;
  readonly #logger: Logger | undefined;
  /** `{ Book: Set('created', 'updated') }`: only these models and actions cost anything on a write. */
  readonly #watched: ReadonlyMap<string, ReadonlySet<string>>;
  readonly #transactions = new WeakMap<object, TransactionState>();
  /** The open levels of each transaction `around` runs. */
  readonly #levels = new WeakMap<object, number>();

  constructor(hooks: Hooks, adapter: string, logger: Logger | undefined) {
    this.#hooks = hooks;
    this.#adapter = adapter;
    this.#logger = logger;
    this.#watched = new Map(Object.entries(hooks.eventActions()).map(([model, actions]) => [model, new Set(Object.keys(actions))]));
  }

  async chooseMode(wanted: OutboxMode | 'auto', run: (statement: CompiledStatement) => Promise<unknown>): Promise<OutboxMode> {
    this.mode =
      wanted !== 'auto'
        ? wanted
        : await this.#probe(run).catch((error: unknown) => {
            this.#logger?.warn({ err: loggedError(error) }, `${this.#adapter}: the outbox probe failed; appending after commit`);
            return 'after-commit' as const;
          });
    const where = this.mode === 'transaction' ? "in the app's transactions" : 'after each commit';
    this.#logger?.info({ outbox: this.mode }, `${this.#adapter}: outbox rows are written ${where}`);
    return this.mode;
  }

  watches(model: string, action: ModelAction): boolean {
    return this.#watched.get(model)?.has(action) === true;
  }

  write(tx: HostTransaction | undefined, write: PendingWrite): Promise<void> | void {
    if (!this.watches(write.model, write.action)) return;
    const depth = tx?.depth() ?? 0;
    if (tx === undefined || depth === 0) return this.#publish([write]);
    let state = this.#transactions.get(tx.key);
    if (!state) this.#transactions.set(tx.key, (state = { writes: [], wrote: false, aborted: false }));
    state.writes.push({ write, depth });
  }

  async beforeCommit(tx: HostTransaction): Promise<void> {
    const state = this.#transactions.get(tx.key);
    // Only the outermost COMMIT: releasing a savepoint commits nothing yet.
    if (this.mode !== 'transaction' || !state || state.writes.length === 0 || tx.depth() !== 1) return;
    const batch = state.writes;
    state.writes = [];
    let statementError: unknown;
    // Some ORMs (TypeORM) run every commit listener at once and roll back on the first failure without
    // waiting for the rest: each statement checks first, since one sent after the ROLLBACK would autocommit.
    // afterCommit() wakes the dispatcher: announced, so the trigger starts no commit watch.
    const execute = announcingCommit(async (sql, parameters) => {
      if (state.aborted) throw new Error('the transaction is being rolled back');
      try {
        await runOne(tx.execute, sql, parameters);
      } catch (error) {
        statementError ??= error;
        throw error;
      }
    });
    const sync = tx.executeSync?.();
    // announcingCommit returns the function it is given, marked: still an executor that runs before it returns.
    const executeSync =
      sync &&
      (announcingCommit((sql, parameters) => {
        if (state.aborted) throw new Error('the transaction is being rolled back');
        try {
          return sync(sql, parameters);
        } catch (error) {
          statementError ??= error;
          throw error;
        }
      }) as SyncHostExecutor);
    for (const { write } of batch) {
      let failure: unknown;
      try {
        if (!executeSync || !this.#recordedSync(write, executeSync)) await this.#hooks.model(write.model, write.action, write.instance, { tx: execute, ...extraOf(write) });
      } catch (error) {
        failure = error;
      }
      if (state.aborted) return; // rolled back by someone else: the writes go with it
      // A statement that failed leaves the transaction broken (PostgreSQL aborts it) even if the error was swallowed.
      failure ??= statementError;
      // Committing now would keep the app's write without its event: the commit is refused instead.
      if (failure !== undefined) throw failure instanceof OutboxWriteError ? failure : new OutboxWriteError(this.#eventOf(write), failure);
    }
    state.wrote = true;
  }

  async afterCommit(tx: HostTransaction): Promise<void> {
    const state = this.#transactions.get(tx.key);
    if (!state) return;
    const depth = tx.depth();
    if (depth > 0) {
      for (const buffered of state.writes) buffered.depth = Math.min(buffered.depth, depth);
      return;
    }
    this.#transactions.delete(tx.key);
    if (state.wrote) this.#hooks.notify();
    if (state.writes.length > 0) await this.#publish(state.writes.map((buffered) => buffered.write));
  }

  rollbackStarted(tx: HostTransaction): void {
    const state = this.#transactions.get(tx.key);
    if (state && tx.depth() === 1) state.aborted = true;
  }

  afterRollback(tx: HostTransaction): void {
    const state = this.#transactions.get(tx.key);
    if (!state) return;
    const depth = tx.depth();
    if (depth === 0) this.#transactions.delete(tx.key);
    else state.writes = state.writes.filter((buffered) => buffered.depth <= depth);
  }

  forget(key: object): void {
    this.#transactions.delete(key);
  }

  async around<Trx, T>(
    begin: (body: (trx: Trx) => Promise<T>) => Promise<T>,
    connection: (trx: Trx) => HostConnection,
    work: (trx: Trx, tx: HostTransaction) => Promise<T>,
  ): Promise<T> {
    let tx: HostTransaction | undefined;
    let open = false;
    // A level ends when its body fails (the ORM rolls it back, and may call the body again) or when `begin` settles.
    const end = (): HostTransaction | undefined => {
      if (!tx || !open) return undefined;
      open = false;
      this.#levels.set(tx.key, (this.#levels.get(tx.key) ?? 1) - 1);
      return tx;
    };
    const rolledBack = (): void => {
      const ended = end();
      if (ended) this.afterRollback(ended);
    };
    let result: T;
    try {
      result = await begin(async (trx) => {
        const { key, execute, executeSync } = connection(trx);
        this.#levels.set(key, (this.#levels.get(key) ?? 0) + 1);
        open = true;
        const current: HostTransaction = (tx = { key, execute, executeSync, depth: () => this.#levels.get(key) ?? 0 });
        try {
          const value = await work(trx, current);
          await this.beforeCommit(current);
          return value;
        } catch (error) {
          this.rollbackStarted(current);
          rolledBack();
          throw error;
        }
      });
    } catch (error) {
      rolledBack();
      throw error;
    }
    const committed = end();
    if (committed) await this.afterCommit(committed);
    return result;
  }

  /**
   * Records `write` through a synchronous executor with `modelSync`; false if only `model()` can record it (it
   * refuses before writing anything: a payload per subscription, a schema that validates asynchronously, a store
   * not yet ready). Any other failure is thrown.
   */
  #recordedSync(write: PendingWrite, execute: SyncHostExecutor): boolean {
    try {
      this.#hooks.modelSync(write.model, write.action, write.instance, { tx: execute, ...extraOf(write) });
      return true;
    } catch (error) {
      const cause = error instanceof OutboxWriteError ? error.cause : undefined;
      if (cause instanceof ResthooksError && ASYNC_ONLY.has(cause.code)) return false;
      throw error;
    }
  }

  /** After a commit, or at once for a write outside a transaction: through the store. Never throws. */
  async #publish(writes: readonly PendingWrite[]): Promise<void> {
    for (const write of writes) await this.#hooks.model(write.model, write.action, write.instance, extraOf(write));
  }

  #eventOf(write: PendingWrite): string {
    return this.#hooks.eventActions()[write.model]?.[write.action]?.[0] ?? `${write.model}.${write.action}`;
  }

  /**
   * Writes a probe row through the app's connection and asks the store whether it sees it: only then
   * are the two one database. The store compiles both statements for its own dialect.
   */
  async #probe(run: (statement: CompiledStatement) => Promise<unknown>): Promise<OutboxMode> {
    const probe = await this.#hooks.outboxProbe();
    try {
      await run(probe.insert);
    } catch (error) {
      this.#logger?.debug({ err: loggedError(error) }, `${this.#adapter}: the app's database has no resthooks outbox (or another SQL dialect)`);
      return 'after-commit';
    }
    let seen = false;
    try {
      seen = await probe.seen();
    } finally {
      await run(probe.remove).catch(() => undefined);
    }
    if (!seen) this.#logger?.warn({}, `${this.#adapter}: the app's database has resthooks tables, but the store uses another database; appending after commit`);
    return seen ? 'transaction' : 'after-commit';
  }
}

/** The codes of `modelSync`'s refusals that `model()` may get past (see `#recordedSync`); a write that fails them both is refused by both. */
const ASYNC_ONLY: ReadonlySet<string> = new Set(['invalid_field', 'payload_invalid', 'migration_required']);

function extraOf(write: PendingWrite): { extra?: { changes: string[] } } {
  return write.changes ? { extra: { changes: [...write.changes] } } : {};
}

function runOne(executor: HostExecutor, sql: string, parameters: readonly unknown[]): unknown {
  return typeof executor === 'function' ? executor(sql, parameters) : executor.execute({ sql, parameters });
}
