/**
 * What the Drizzle and Kysely adapters share. Neither ORM reports its writes, so their resthooks helpers
 * run the app's insert / update / delete themselves and get the rows back from `returning`.
 *
 * - `'transaction'` mode: the outbox row goes right after the write, through the same transaction. The
 *   database's own transactions and savepoints then keep or drop both together, in any transaction the
 *   app opened (its own, a controlled one, a savepoint): no buffer is needed. A failure to record throws
 *   `OutboxWriteError` out of the helper, and the app's transaction rolls back.
 * - `'after-commit'` mode (the store is another database): the writes are buffered by the outbox bridge
 *   and appended once the transaction has committed, so resthooks must see that commit: only
 *   transactions opened through the adapter's `transaction()` qualify.
 * @module
 */
import type { Hooks } from '../../hooks.js';
import type { Logger } from '../../logger.js';
import type { CompiledStatement, HostExecutor } from '../../store/host-executor.js';
import type { SyncHostExecutor } from '../../triggers/triggers.js';
import type { HostTransaction, ModelAction, OutboxMode, PendingWrite } from './orm-adapter.js';
import { outboxBridge, type OutboxBridge } from './outbox-bridge.js';

export interface HelperWritesOptions {
  /**
   * `'auto'` (default): `'transaction'` when a probe at start proves that the app's database is the
   * store's, else `'after-commit'`. See {@link OutboxMode}.
   */
  outbox?: OutboxMode | 'auto';
  /** Add `changes` (the columns an update sets) beside `data` in `updated` payloads. Default true. */
  changes?: boolean;
  /** Where the adapter reports its outbox mode, and a table that no event names (once). Default: silent. */
  logger?: Logger;
}

export class HelperWrites {
  readonly #hooks: Hooks;
  readonly #adapter: string;
  readonly #options: HelperWritesOptions;
  readonly #bridge: OutboxBridge;
  readonly #warned = new Set<string>();
  /** Outbox writes so far: a transaction that wrote none does not wake the dispatcher. */
  #writes = 0;
  /** 'after-commit': the transactions `transaction()` opened, as the bridge knows them. */
  readonly #opened = new WeakMap<object, HostTransaction>();
  /** 'after-commit', synchronous transactions: the writes waiting for the outermost commit. */
  readonly #openedSync = new WeakMap<object, PendingWrite[]>();

  constructor(hooks: Hooks, adapter: string, options: HelperWritesOptions) {
    this.#hooks = hooks;
    this.#adapter = adapter;
    this.#options = options;
    this.#bridge = outboxBridge(hooks, { adapter, ...(options.logger ? { logger: options.logger } : {}) });
  }

  get mode(): OutboxMode {
    return this.#bridge.mode;
  }

  /** Picks the outbox mode; `run` executes a statement on the app's database, outside any transaction. */
  async chooseMode(run: (statement: CompiledStatement) => Promise<unknown>): Promise<OutboxMode> {
    return this.#bridge.chooseMode(this.#options.outbox ?? 'auto', run);
  }

  /** The events map's model for a table (its explicit name, else its table name) when it fires `action`. */
  modelFor(table: string, named: string | undefined, action: ModelAction): string | undefined {
    const model = named ?? table;
    if (this.#bridge.watches(model, action)) return model;
    if (!this.#hooks.eventActions()[model] && !this.#warned.has(model)) {
      this.#warned.add(model);
      this.#options.logger?.warn({ model }, `${this.#adapter}: table "${table}" is no model of the events map; its writes fire nothing (name it in the models option)`);
    }
    return undefined;
  }

  /** The columns an update sets, when payloads carry them. */
  changes(columns: readonly string[]): readonly string[] | undefined {
    return this.#options.changes === false ? undefined : columns;
  }

  /**
   * Called before a write in a transaction runs: in 'after-commit' mode a transaction resthooks did not
   * open would commit unseen, and its events with it, so the write is refused before it happens.
   */
  checkTransaction(trx: object): void {
    if (this.mode === 'after-commit' && !this.#opened.has(trx) && !this.#openedSync.has(trx)) {
      throw new TypeError(`${this.#adapter}: with the resthooks store in another database (outbox 'after-commit'), resthooks must see the commit: open the transaction with its transaction() helper`);
    }
  }

  /** Records the rows a write in `trx` returned: in it at once ('transaction'), or for after its commit. */
  async record(trx: object, writes: readonly PendingWrite[], execute: HostExecutor): Promise<void> {
    if (writes.length === 0) return;
    const opened = this.#opened.get(trx);
    if (this.mode === 'after-commit' && opened) {
      for (const write of writes) await this.#bridge.write(opened, write);
      return;
    }
    for (const write of writes) await this.#hooks.model(write.model, write.action, write.instance, { tx: execute, ...extraOf(write) });
    this.#writes++;
  }

  /** `record` for a synchronous transaction: written before it returns, or kept for after the commit. */
  recordSync(trx: object, writes: readonly PendingWrite[], execute: SyncHostExecutor): void {
    if (writes.length === 0) return;
    const pending = this.#openedSync.get(trx);
    if (this.mode === 'after-commit' && pending) {
      pending.push(...writes);
      return;
    }
    for (const write of writes) this.#hooks.modelSync(write.model, write.action, write.instance, { tx: execute, ...extraOf(write) });
    this.#writes++;
  }

  /**
   * Runs the ORM's transaction call (`begin`), inside `outer` when that is a transaction `transaction()`
   * opened (a savepoint then). 'transaction' mode: the dispatcher is woken after a commit that wrote
   * outbox rows. 'after-commit': the bridge buffers the writes and appends them after the commit.
   */
  async transaction<Trx extends object, T>(
    outer: object,
    begin: (body: (trx: Trx) => Promise<T>) => Promise<T>,
    execute: (trx: Trx) => HostExecutor,
    work: (trx: Trx) => Promise<T>,
  ): Promise<T> {
    if (this.mode === 'transaction') {
      const before = this.#writes;
      const result = await begin(work);
      if (this.#writes !== before) this.#hooks.notify();
      return result;
    }
    const enclosing = this.#opened.get(outer);
    return this.#bridge.around(
      begin,
      (trx) => ({ key: enclosing?.key ?? trx, execute: execute(trx) }),
      (trx, tx) => {
        this.#opened.set(trx, tx);
        return work(trx);
      },
    );
  }

  /** `transaction` for a synchronous one (better-sqlite3). 'after-commit': appended after the outermost commit, without waiting. */
  transactionSync<Trx extends object, T>(outer: object, begin: (body: (trx: Trx) => T) => T, work: (trx: Trx) => T): T {
    if (this.mode === 'transaction') {
      const before = this.#writes;
      const result = begin(work);
      if (this.#writes !== before) this.#hooks.notify();
      return result;
    }
    const enclosing = this.#openedSync.get(outer);
    const pending = enclosing ?? [];
    // A savepoint rolled back drops the writes made since it began.
    const mark = pending.length;
    let result: T;
    try {
      result = begin((trx) => {
        this.#openedSync.set(trx, pending);
        return work(trx);
      });
    } catch (error) {
      pending.length = mark;
      throw error;
    }
    // The bridge appends a write made outside any transaction at once, and never rejects.
    if (!enclosing) for (const write of pending) void this.#bridge.write(undefined, write);
    return result;
  }
}

function extraOf(write: PendingWrite): { extra?: { changes: string[] } } {
  return write.changes ? { extra: { changes: [...write.changes] } } : {};
}
