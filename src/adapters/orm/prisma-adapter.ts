/**
 * `resthooks/prisma`: a Prisma Client extension that fires `created` / `updated` / `deleted` for the
 * writes that return their rows (create, update, upsert, delete, createManyAndReturn,
 * updateManyAndReturn), after the transaction commits, and nothing when it rolls back. Where the
 * resthooks store lives in the app's own database, the outbox row is written in the app's transaction.
 *
 * Public Prisma API only: a client extension's `$transaction` follows each interactive transaction
 * (AsyncLocalStorage), and a query extension sees each write. With the driver adapter wrapped by
 * `resthooksAdapter()` (prisma-driver.ts), outbox rows go through the driver's own transactions (on
 * better-sqlite3, through the `Database` its transactions expose: see there).
 * Imports Prisma for nothing at run time.
 * @module
 */
import type { Hooks } from '../../hooks.js';
import type { Logger } from '../../logger.js';
import type { HostConnection, HostTransaction, ModelAction, OutboxMode, PendingWrite } from './orm-adapter.js';
import { outboxBridge, type OutboxBridge } from './outbox-bridge.js';
import { endHold, executeOn, inContext, inScope, inSlot, scopeOf, syncExecutorOn, type DriverSlot } from './prisma-driver.js';

export { resthooksAdapter, type DriverAdapterFactoryLike, type ResthooksAdapterOptions } from './prisma-driver.js';

export interface PrismaHooksOptions {
  /**
   * `'auto'` (default): `'transaction'` when a probe at attach time proves that the app's database and
   * the resthooks store are one database, else `'after-commit'` (see `OutboxMode`).
   */
  outbox?: OutboxMode | 'auto';
  /**
   * Also fire for `createMany`, `updateMany` and `deleteMany`, which return no rows: they are run as
   * `createManyAndReturn` / `updateManyAndReturn`, and `deleteMany` reads the rows it matches first,
   * all in the write's transaction (default false; SQLite, PostgreSQL and CockroachDB only).
   */
  bulk?: boolean;
  /**
   * A watched write outside `$transaction`: `'transaction'` (default) runs it in a transaction of its own with
   * its outbox row. With the driver adapter wrapped by `resthooksAdapter()` the write runs once, as the app
   * called it, in a driver transaction resthooks holds open for it; without, it runs again in an interactive
   * `$transaction` on the client `withResthooks` was given (so query extensions applied to that client see it
   * twice, and ones applied to the result of `withResthooks` not at all). `'after-write'`
   * lets it run as the app called it and appends its event right after (not atomic: a crash in between
   * loses the event). In `'after-commit'` outbox mode writes are always `'after-write'`.
   */
  standalone?: 'transaction' | 'after-write';
  /** Add `changes` (the fields an update set) beside `data` in `updated` payloads. Default true. */
  changes?: boolean;
  /** Where the adapter reports its outbox mode (pino's call shape). Default: silent. */
  logger?: Logger;
}

/** What `withResthooks` adds to the client (and to its transactions' clients). */
export interface ResthooksPrismaClient {
  /**
   * `mode`: where outbox rows go, as chosen at attach time. `driverAdapter`: whether the client's driver
   * adapter was wrapped with `resthooksAdapter()`, so that outbox rows go through the driver's transaction.
   */
  readonly $resthooks: { readonly mode: OutboxMode; readonly driverAdapter: boolean };
}

/** What `withResthooks` needs of a Prisma Client (any generated client, extended or not). */
export interface PrismaClientLike {
  $executeRawUnsafe(query: string, ...values: never[]): PromiseLike<unknown>;
  $transaction: unknown;
  $extends: unknown;
}

/**
 * Returns the client extended with resthooks: every write of a model named in the events map fires its
 * event once its transaction commits. The model name is the schema's model name (`Book`). Writes
 * outside `$transaction` run in a transaction of their own with their outbox row. Apply it to the
 * client before other extensions (see docs/orms.md).
 * @example
 * import { PrismaClient } from './generated/prisma/client.js';
 * import { withResthooks } from 'resthooks/prisma';
 *
 * const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: postgresStore(pool) });
 * await hooks.start();
 * const prisma = await withResthooks(new PrismaClient({ adapter }), hooks);
 * await prisma.$transaction(async (tx) => tx.book.create({ data: { title: 'Dune', ownerId: 'alice' } })); // after COMMIT
 */
export async function withResthooks<Client extends PrismaClientLike>(prisma: Client, hooks: Hooks, options: PrismaHooksOptions = {}): Promise<Client & ResthooksPrismaClient> {
  const client = prisma as unknown as PrismaClient;
  if (typeof client.$transaction !== 'function' || typeof client.$extends !== 'function') {
    throw new TypeError('resthooks/prisma: withResthooks() needs a Prisma Client (one with $transaction and $extends)');
  }
  const bridge = outboxBridge(hooks, { adapter: 'resthooks/prisma', logger: options.logger });
  await bridge.chooseMode(options.outbox ?? 'auto', (statement) => Promise.resolve(client.$executeRawUnsafe(statement.sql, ...statement.parameters)));
  const adapter = new PrismaAdapter(bridge, client, await wrappedDriver(client), options.bulk === true, options.standalone ?? 'transaction', options.changes !== false, options.logger);
  return client.$extends(adapter.extension()) as Client & ResthooksPrismaClient;
}

/** Whether the client's driver adapter is wrapped by `resthooksAdapter()`: a statement run through it says. */
async function wrappedDriver(client: PrismaClient): Promise<boolean> {
  if (typeof client.$queryRawUnsafe !== 'function') return false;
  const slot: DriverSlot = { kind: 'detect', seen: false };
  await inSlot(slot, async () => await client.$queryRawUnsafe('SELECT 1'));
  return slot.seen;
}

type Args = Record<string, unknown>;
type Operation = (args: Args) => PromiseLike<unknown>;
interface PrismaClient {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<unknown>;
  $queryRawUnsafe(query: string, ...values: unknown[]): PromiseLike<unknown>;
  $transaction(input: unknown, options?: unknown): Promise<unknown>;
  $extends(extension: object): unknown;
}
interface QueryParams {
  model?: string;
  operation: string;
  args: Args;
  query(args: Args): PromiseLike<unknown>;
}

/** Where a write runs: in an interactive transaction (its client), in a batch, or inside one of ours. */
type Scope =
  /** `trx` and `tx` are set when the transaction's callback is called: the scope is entered just before the `$transaction` call. */
  | { readonly kind: 'interactive'; trx?: PrismaClient; tx?: HostTransaction }
  | { readonly kind: 'batch'; readonly writes: PendingWrite[] }
  | { readonly kind: 'own-read' };

/** The operations that fire, and the actions they may fire (upsert: either). */
const FIRING: Readonly<Record<string, readonly ModelAction[]>> = {
  create: ['created'],
  createManyAndReturn: ['created'],
  update: ['updated'],
  updateManyAndReturn: ['updated'],
  upsert: ['created', 'updated'],
  delete: ['deleted'],
};
const BULK: Readonly<Record<string, readonly ModelAction[]>> = { createMany: ['created'], updateMany: ['updated'], deleteMany: ['deleted'] };
/** The operations whose result is the rows they wrote, each firing one action. */
const SINGLE: Readonly<Record<string, ModelAction | undefined>> = {
  create: 'created',
  createManyAndReturn: 'created',
  update: 'updated',
  updateManyAndReturn: 'updated',
  delete: 'deleted',
};

class PrismaAdapter {
  #warnedBatch = false;

  constructor(
    private readonly bridge: OutboxBridge,
    /** The client before this extension: its `$transaction` is the one ours wraps. */
    private readonly base: PrismaClient,
    /** Its driver adapter is wrapped by `resthooksAdapter()`: outbox rows go through the driver's transactions. */
    private readonly driver: boolean,
    private readonly bulk: boolean,
    private readonly standalone: 'transaction' | 'after-write',
    private readonly changes: boolean,
    private readonly logger: Logger | undefined,
  ) {}

  extension(): object {
    const adapter = this;
    const original = this.base.$transaction;
    return {
      name: 'resthooks',
      client: {
        $resthooks: { mode: this.bridge.mode, driverAdapter: this.driver },
        // `this` is the client the app called: the extended client, or a transaction's client (nesting).
        $transaction(this: PrismaClient, input: unknown, options?: unknown): Promise<unknown> {
          const begin = (body: unknown) => original.call(this, body, options);
          if (typeof input === 'function') return adapter.#interactive(this, begin, input as (trx: PrismaClient) => Promise<unknown>);
          // A batch on an interactive transaction's client is part of that transaction: its writes are too.
          if (adapter.#transactionOf(this)) return begin(input);
          return adapter.#batch(begin, input);
        },
      },
      query: {
        $allModels: {
          $allOperations: (params: QueryParams) => adapter.#onQuery(params),
        },
      },
    };
  }

  // The scope lives in the async context the driver wrapper shares (prisma-driver.ts), keyed by this adapter.
  #inScope<T>(scope: Scope, work: () => T): T {
    return inScope(this, scope, work);
  }

  #currentScope(): Scope | undefined {
    return scopeOf(this) as Scope | undefined;
  }

  /** The interactive transaction whose client `caller` is, if any (a call on the root client inside one is not in it). */
  #transactionOf(caller: PrismaClient): HostTransaction | undefined {
    const scope = this.#currentScope();
    return scope?.kind === 'interactive' && scope.trx !== undefined && scope.trx === caller ? scope.tx : undefined;
  }

  #interactive(caller: PrismaClient, begin: (body: unknown) => Promise<unknown>, work: (trx: PrismaClient) => Promise<unknown>): Promise<unknown> {
    // Called on the enclosing transaction's client, Prisma opens a savepoint in it; called on the root client, a new transaction.
    const enclosing = this.#transactionOf(caller);
    const key = enclosing?.key ?? {};
    // A new transaction through a wrapped driver adapter: the adapter records the driver transaction it opens for this call.
    const slot: DriverSlot | undefined = this.driver && !enclosing ? { kind: 'interactive', sealed: false } : undefined;
    const scope: Scope = { kind: 'interactive' };
    // One async context for the whole call, entered before it: the wrapped adapter sees the slot when Prisma opens
    // the transaction, and the callback, which Prisma calls in the same context, sees the scope. The bridge awaits
    // the callback's result there too: a callback may return a query unawaited (`(tx) => tx.book.create(…)`), and
    // Prisma runs a query only when it is awaited, in the async context of that await.
    const opened = (body: unknown) => inContext(slot, this, scope, () => begin(body));
    const inTransaction = (trx: PrismaClient, tx: HostTransaction) => {
      if (slot?.kind === 'interactive') slot.sealed = true;
      scope.trx = trx;
      scope.tx = tx;
      return work(trx);
    };
    return this.bridge.around(opened, (trx: PrismaClient) => connection(key, trx, slot), inTransaction);
  }

  /**
   * A watched write outside any transaction, through a wrapped driver adapter: its statements run in a driver
   * transaction held open for it (see prisma-driver.ts), the outbox row goes through that transaction, then it
   * commits. One transaction, and the write runs once, through every query extension as the app called it.
   * It has no savepoints, so the bridge's commit events are called here directly rather than through `around`.
   */
  async #held(model: string, operation: string, args: Args, write: () => PromiseLike<unknown>): Promise<unknown> {
    const slot: Extract<DriverSlot, { kind: 'hold' }> = { kind: 'hold', ended: false };
    const tx: HostTransaction = {
      key: slot,
      depth: () => (slot.ended ? 0 : 1),
      // A write that ran no statement of its own has opened no transaction yet: this statement opens it (in the slot).
      execute: async (sql, parameters) => (slot.held ? executeOn(await slot.held, sql, parameters) : this.base.$executeRawUnsafe(sql, ...parameters)),
      executeSync: () => syncExecutorOn(slot.started),
    };
    let value: unknown;
    try {
      value = await inSlot(slot, async () => {
        const result = await this.#perform(this.base, tx, model, operation, args, write);
        await this.bridge.beforeCommit(tx);
        return result;
      });
    } catch (error) {
      this.bridge.rollbackStarted(tx);
      await endHold(slot, false).catch(() => undefined);
      this.bridge.afterRollback(tx);
      throw error;
    }
    try {
      await endHold(slot, true);
    } catch (error) {
      this.bridge.afterRollback(tx);
      throw error;
    }
    await this.bridge.afterCommit(tx);
    return value;
  }

  /** `$transaction([...])` has no client to write through: its writes are appended once it has committed. */
  async #batch(begin: (body: unknown) => Promise<unknown>, requests: unknown): Promise<unknown> {
    const writes: PendingWrite[] = [];
    const results = await this.#inScope({ kind: 'batch', writes }, () => begin(requests));
    for (const write of writes) await this.bridge.write(undefined, write);
    return results;
  }

  #onQuery({ model, operation, args, query }: QueryParams): PromiseLike<unknown> {
    const actions = FIRING[operation] ?? (this.bulk ? BULK[operation] : undefined);
    const scope = this.#currentScope();
    if (!model || !actions || !actions.some((action) => this.bridge.watches(model, action)) || scope?.kind === 'own-read') return query(args);
    if (scope?.kind === 'interactive' && scope.trx && scope.tx) return this.#perform(scope.trx, scope.tx, model, operation, args, () => query(args));
    if (scope?.kind === 'batch') return this.#inBatch(scope.writes, model, operation, args, () => query(args));
    if (this.standalone === 'after-write' || this.bridge.mode === 'after-commit') return this.#perform(this.base, undefined, model, operation, args, () => query(args));
    if (this.driver) return this.#held(model, operation, args, () => query(args));
    // Alone: run again in a transaction of its own on the client before this extension, with its outbox row.
    return this.bridge.around(
      (body) => this.base.$transaction(body),
      (trx: PrismaClient) => connection({}, trx),
      (trx, tx) => this.#perform(trx, tx, model, operation, args, () => delegate(trx, model, operation)(args)),
    );
  }

  /**
   * Runs one write (`write`, plus the reads it needs through `trx`) and hands its events to the bridge:
   * buffered in `tx`, or with no `tx` appended before this returns.
   */
  async #perform(trx: PrismaClient, tx: HostTransaction | undefined, model: string, operation: string, args: Args, write: () => PromiseLike<unknown>): Promise<unknown> {
    const action = SINGLE[operation];
    if (action) return this.#performSingle(tx, model, action, args, write);
    const writes: PendingWrite[] = [];
    const result = await this.#write(trx, model, operation, args, write, (action, row, set) => void writes.push(this.#pending(model, action, row, set)));
    for (const pending of writes) await this.bridge.write(tx, pending);
    return result;
  }

  /**
   * The common case, without the reads the others need: every row the write returns fires one action. Not an
   * async function: the write's result is taken with one `then`, not an async frame and its awaits.
   */
  #performSingle(tx: HostTransaction | undefined, model: string, action: ModelAction, args: Args, write: () => PromiseLike<unknown>): PromiseLike<unknown> {
    return write().then((result) => this.#fire(tx, model, action, args, result, 0));
  }

  /** Hands the bridge the rows of `result` from `from` on; a row appended at once (no transaction) is waited for before the next. */
  #fire(tx: HostTransaction | undefined, model: string, action: ModelAction, args: Args, result: unknown, from: number): unknown {
    const rows: readonly unknown[] = Array.isArray(result) ? result : [result];
    for (let i = from; i < rows.length; i++) {
      const row = rows[i];
      if (row === null || typeof row !== 'object') continue;
      const appended = this.bridge.write(tx, this.#pending(model, action, row, args.data));
      if (appended) return appended.then(() => this.#fire(tx, model, action, args, result, i + 1));
    }
    return result;
  }

  /**
   * `set`: the update's `data`, whose field names are the event's `changes`. The row is copied: it is the
   * object the app gets back, and what the app does to it before COMMIT is not this write's data.
   */
  #pending(model: string, action: ModelAction, row: object, set?: unknown): PendingWrite {
    const instance = { ...row };
    const changes = this.changes && action === 'updated' && isArgs(set) ? Object.keys(set) : undefined;
    return changes ? { model, action, instance, changes } : { model, action, instance };
  }

  async #write(trx: PrismaClient, model: string, operation: string, args: Args, write: () => PromiseLike<unknown>, fire: (action: ModelAction, row: object, set?: unknown) => void): Promise<unknown> {
    // The reads and writes resthooks adds run through `trx` (in the write's transaction, if any), and fire nothing themselves.
    const own = (name: string, ownArgs: Args) => this.#inScope({ kind: 'own-read' }, async () => await delegate(trx, model, name)(ownArgs));
    switch (operation) {
      case 'upsert': {
        // Whether the row existed decides the action; read in the write's transaction, just before it.
        const existed = (await own('findUnique', { where: args.where })) !== null;
        const row = await write();
        for (const written of asRows([row])) fire(existed ? 'updated' : 'created', written, existed ? args.update : undefined);
        return row;
      }
      case 'createMany':
      case 'updateMany': {
        const rows = await own(`${operation}AndReturn`, args);
        for (const row of asRows(rows)) fire(operation === 'createMany' ? 'created' : 'updated', row, args.data);
        return { count: asRows(rows).length };
      }
      case 'deleteMany': {
        const rows = await own('findMany', args.limit === undefined ? { where: args.where } : { where: args.where, take: args.limit });
        const result = await write();
        for (const row of asRows(rows)) fire('deleted', row);
        return result;
      }
      default: {
        const result = await write();
        const action = FIRING[operation]![0]!;
        for (const row of asRows(Array.isArray(result) ? result : [result])) fire(action, row, args.data);
        return result;
      }
    }
  }

  /** In a batch, only the writes whose result tells what happened fire; upsert and bulk writes cannot. */
  async #inBatch(writes: PendingWrite[], model: string, operation: string, args: Args, write: () => PromiseLike<unknown>): Promise<unknown> {
    const result = await write();
    const action = operation === 'upsert' ? undefined : FIRING[operation]?.[0];
    if (!action) {
      if (!this.#warnedBatch) this.logger?.warn({ model, operation }, `resthooks/prisma: ${operation} inside $transaction([...]) fires no event (use an interactive $transaction)`);
      this.#warnedBatch = true;
      return result;
    }
    for (const row of asRows(Array.isArray(result) ? result : [result])) writes.push(this.#pending(model, action, row, args.data));
    return result;
  }
}

/** How the bridge writes in a transaction: through its driver transaction when the wrapped adapter recorded one. */
function connection(key: object, trx: PrismaClient, slot?: DriverSlot): HostConnection {
  const driver = () => (slot?.kind === 'interactive' ? slot.transaction : undefined);
  return {
    key,
    execute: (sql, parameters) => {
      const transaction = driver();
      return transaction ? executeOn(transaction, sql, parameters) : trx.$executeRawUnsafe(sql, ...parameters);
    },
    executeSync: () => syncExecutorOn(driver()),
  };
}

/** `prisma.book.create`: the client property of a model is its name with a lower-case first letter. */
function delegate(client: PrismaClient, model: string, operation: string): Operation {
  const models = client as unknown as Record<string, Record<string, Operation> | undefined>;
  const found = models[model.charAt(0).toLowerCase() + model.slice(1)];
  const run = found?.[operation];
  if (!found || typeof run !== 'function') throw new TypeError(`resthooks/prisma: the client has no ${model}.${operation}()`);
  return (args) => run.call(found, args);
}

function asRows(value: unknown): object[] {
  return Array.isArray(value) ? value.filter((row): row is object => row !== null && typeof row === 'object') : [];
}

function isArgs(value: unknown): value is Args {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
