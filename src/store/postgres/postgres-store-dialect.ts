import { PostgresAdapter, PostgresDialect, sql, type Kysely, type PostgresPool } from 'kysely';
import { ConfigError } from '../../errors.js';
import type { CompiledStatement } from '../host-executor.js';
import type { StatementResult, StoreDialect, StoreStatement } from '../store-dialect.js';
import { plansGenerically } from './set-based-writes.js';

/**
 * The few members of a `pg` `Pool` the store calls. Declared here, structurally, so the core never
 * imports `pg` (the user passes in `new Pool(…)`), as Kysely declares `PostgresPool` for the same reason.
 */
export interface PgPool {
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
  /** pg's Pool emits 'error' when an idle connection is lost (the server restarted); see `guardPool`. */
  on?(event: 'error', listener: (error: Error) => void): unknown;
}
export interface PgPoolClient {
  /** With parameters: one statement (extended protocol). Without: a script, one result per statement. */
  query(sql: string, parameters: readonly unknown[]): Promise<PgQueryResult | PgQueryResult[]>;
  /** A named statement: pg prepares it on the connection the first time, then only binds and executes it. */
  query(config: { readonly name: string; readonly text: string; readonly values: readonly unknown[] }): Promise<PgQueryResult>;
  /** An error (or `true`) makes the pool discard the connection instead of reusing it. */
  release(error?: Error | boolean): void;
  /** True when the pool was made with `new Pool({ pipeline: true })` (pg ≥ 8.20). */
  readonly pipeline?: boolean;
  /** pg's Client emits 'error' when its connection is lost; unheard, Node ends the process. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}
export interface PgQueryResult {
  readonly rows: unknown[];
  readonly rowCount: number | null;
}

export interface PostgresStoreDialectOptions {
  /**
   * Send a batch of several statements as one script, its values inlined as quoted literals, so the
   * whole transaction costs one round trip. Only done when every value and statement allows it (see
   * `inlineParameters`); otherwise, or when false, each statement is sent with bound parameters.
   * A pool made with `pipeline: true` sends the other batches in one round trip with bound parameters. Default true.
   */
  inlineBatches?: boolean;
  /**
   * While events trickle in, how long (ms) a fan-out pass and a small batch of attempt records wait for
   * more, so that one statement and one commit serve several: a delivery's latency grows by up to twice
   * this, and the database commits (and flushes its log) less often per delivery. A waiting record batch
   * is written by the next pass's statement (while passes take them, it waits up to three windows for
   * one). 0: nothing waits. Default 5.
   */
  batchWindowMs?: number;
  /**
   * Run the store's set-based writes (its fan-out passes and attempt records) with their generic plans
   * from their first execution on each connection: the connection's `plan_cache_mode` is set to
   * `force_generic_plan` while they run, and reset before anything else is sent on that connection —
   * the store's other queries, and the app's own when the app shares the pool with the store. A pooler in
   * transaction mode (PgBouncer) would hand the session setting on to its other clients between
   * transactions: set this to false behind one. Default true.
   */
  genericPlans?: boolean;
}

// A delivery waits at most this long in each of the two places (fan-out, record). A pass is a statement of
// up to a dozen CTEs and a commit: at 2 ms, events saved one by one (each save a commit of its own) shared
// a pass by two or three, and the passes were about a third of the server's CPU per delivery.
const BATCH_WINDOW_MS = 5;
// A window is for sharing commits, not for delaying deliveries: ten seconds is already a mistake.
const MAX_BATCH_WINDOW_MS = 10_000;

// Kysely's PostgresAdapter takes one advisory lock key shared by every Kysely Migrator. An app that
// runs `hooks.migrate()` from one of its own Kysely migrations would then wait on itself (its migrator
// holds the session lock on another connection), so resthooks takes its own key: "resthook" in ASCII.
const MIGRATION_LOCK_KEY = BigInt('0x72657374686f6f6b');

class ResthooksPostgresAdapter extends PostgresAdapter {
  override async acquireMigrationLock(db: Kysely<any>): Promise<void> {
    // A session lock, held across the migration transaction by the Migrator's single connection; a
    // second process waits here, then finds nothing left to run. lock_timeout bounds the wait (as Kysely does).
    await sql`select set_config('lock_timeout', '600000', true), pg_advisory_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(db);
  }
  override async releaseMigrationLock(db: Kysely<any>): Promise<void> {
    await sql`select pg_advisory_unlock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(db);
  }
}

function toStatementResult(result: PgQueryResult): StatementResult {
  return { rows: result.rows as Record<string, unknown>[], changes: result.rowCount ?? 0 };
}
const asList = (result: PgQueryResult | PgQueryResult[]) => (Array.isArray(result) ? result : [result]);

// ── one-round-trip scripts ──────────────────────────────────────────────────────────────────────

// pg sends every parameter as text with type "unknown" (OID 0) and lets the server infer its type from
// the context. A quoted literal is exactly that to the parser, so it is inlined only for values whose
// text pg would send verbatim; anything pg converts specially (Date, Buffer, arrays, objects) is not.
function toLiteral(value: unknown): string | undefined {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? `'true'` : `'false'`;
  if (typeof value === 'number' || typeof value === 'bigint') return `'${value.toString()}'`;
  if (typeof value !== 'string' || value.includes('\0')) return undefined; // NUL would end the protocol's C string
  const quoted = value.replaceAll("'", "''");
  // E'' reads backslashes as escapes whatever standard_conforming_strings says, so doubling them is exact.
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

const isIdentifierChar = (c: string) => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) > 127;

/**
 * Replaces `$n` placeholders with quoted literals, or returns undefined when that is not provably
 * the same statement: a value pg would convert specially, or SQL the scanner does not fully understand
 * (comments, dollar quotes, backslashes, `;`, a `$` glued to an identifier). Kysely's compiled SQL
 * only has `"identifiers"`, `'literals'` and `$n`, so every store statement qualifies.
 */
export function inlineParameters(text: string, parameters: readonly unknown[]): string | undefined {
  const literals = parameters.map(toLiteral);
  let out = '';
  let copied = 0;
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === "'" || c === '"') {
      // A quoted literal or identifier; a doubled quote inside is an escaped quote.
      let j = i + 1;
      for (;;) {
        j = text.indexOf(c, j);
        if (j < 0) return undefined;
        if (text[j + 1] !== c) break;
        j += 2;
      }
      i = j + 1;
    } else if (c === '$') {
      if (i > 0 && isIdentifierChar(text[i - 1]!)) return undefined;
      let j = i + 1;
      while (j < text.length && text[j]! >= '0' && text[j]! <= '9') j++;
      const literal = j > i + 1 ? literals[Number(text.slice(i + 1, j)) - 1] : undefined;
      if (literal === undefined) return undefined;
      // The leading space keeps a literal from fusing with what precedes it (`u&'…'`, `E'…'`).
      out += `${text.slice(copied, i)} ${literal}`;
      copied = i = j;
    } else if (c === ';' || c === '\\' || (c === '-' && text[i + 1] === '-') || (c === '/' && text[i + 1] === '*')) {
      return undefined;
    } else {
      i++;
    }
  }
  return out + text.slice(copied);
}

/** The batch as one `begin; …; commit` script, or undefined when a statement cannot be inlined. */
export function inlineBatch(queries: readonly CompiledStatement[]): string | undefined {
  const statements: string[] = [];
  for (const query of queries) {
    const statement = inlineParameters(query.sql, query.parameters);
    if (statement === undefined) return undefined;
    statements.push(statement);
  }
  return `begin;\n${statements.join(';\n')};\ncommit`;
}

// ── connections that survive a server restart ──────────────────────────────────────────────────

/**
 * The pool as the store uses it: every client it hands out has an 'error' listener for as long as
 * the store holds it. pg-pool listens only to idle clients and removes its listener at checkout, so a
 * connection lost mid-query (a PostgreSQL restart, a failover, a killed backend) emits 'error' with no
 * listener, and Node ends the process. Here the lost connection only fails the operation that was
 * using it (its query rejects); the client is released with that error so the pool discards it, and
 * the next operation connects afresh. Kysely's driver and `executeBatch` both connect through this.
 */
export function guardPool(pool: PgPool): PgPool {
  // An idle client lost with the server is the pool's to discard (it does); an 'error' event with no
  // listener on the pool would end the process instead. The operations that need a connection report
  // their own failures.
  pool.on?.('error', ignoreIdleClientError);
  return {
    async connect() {
      const client = await pool.connect();
      let lost: Error | undefined;
      const onError = (error: Error) => {
        lost ??= error;
      };
      client.on('error', onError);
      // pg-pool gives each checkout its own `release`; wrapping it per checkout keeps the client's identity
      // (Kysely keys its connections by client object).
      const release = client.release;
      client.release = (error?: Error | boolean) => {
        client.removeListener('error', onError);
        client.release = release;
        release.call(client, error === undefined || error === false ? lost : error);
      };
      return client;
    },
    end: () => pool.end(),
  };
}

function ignoreIdleClientError(): void {}

// ── plans ───────────────────────────────────────────────────────────────────────────────────────

// PostgreSQL plans a named statement with its parameters' values for its first five executions on each
// connection, then settles on a generic plan (made once, without them) if it costs no more. The set-based
// statements (`plansGenerically`) are written for their generic plans, and a plan of one costs about as
// much as an execution: with the pool's connections each planning each statement six times, planning was
// 7% of the server's CPU over a run of a thousand events. So a connection runs them under
// `plan_cache_mode = force_generic_plan`, set when one of them is the first of the store's statements on
// it. The setting must not reach anything else sent on that connection: the store's other statements and
// Kysely's queries, and the app's queries when the app shares the pool. Resetting it before each release
// would cost a round trip per batch; instead the connection keeps the mode while it sits in the pool,
// and its `query` method resets it in front of the next query of anyone else (pg sends a connection's
// queries in order), or gives way to the next set-based batch, which needs no SET then.
const genericPlansOf = new WeakMap<PgPoolClient, PgPoolClient['query']>();

/**
 * Before a batch: a batch of set-based statements gets the generic mode (set, or kept from the connection's
 * last batch), with the client's own `query`. Any other batch finds the connection as the last one left it:
 * its first query resets the mode if need be.
 */
async function useGenericPlans(client: PgPoolClient): Promise<void> {
  const query = genericPlansOf.get(client);
  if (query !== undefined) {
    client.query = query;
    return;
  }
  await client.query('set plan_cache_mode = force_generic_plan', []);
  genericPlansOf.set(client, client.query);
}

/** After a batch that left the connection in the generic mode: whoever sends the next query on it resets the mode first. */
function resumeDefaultPlansOnNextQuery(client: PgPoolClient): void {
  const query = genericPlansOf.get(client);
  if (query === undefined) return;
  const send = query as (...args: unknown[]) => ReturnType<PgPoolClient['query']>;
  client.query = function queryInDefaultPlans(...args: unknown[]) {
    client.query = query;
    genericPlansOf.delete(client);
    // The reset's failure is the next query's too (same connection), and that one is the caller's to see.
    send.call(client, 'reset plan_cache_mode', []).catch(() => {});
    return send.apply(client, args);
  } as PgPoolClient['query'];
}

// ── unavailable or refused ──────────────────────────────────────────────────────────────────────

// SQLSTATE classes and codes for a server that cannot run the statement now (connection lost, shutting
// down or starting, out of connections, disk or memory; a deadlock, serialization failure or lock
// timeout, which succeed when run again), as opposed to one that refuses its rows (22xxx, 23xxx, …).
const UNAVAILABLE_SQLSTATE = /^(08|53|57P|58)|^(40001|40P01|55P03|57014)$/;
// Socket errors, and pg's own for a connection that died or could not be had (they carry no SQLSTATE).
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGES = /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Client was closed|Cannot use a pool after calling end/i;

export function isPostgresUnavailable(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code))) return true;
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message);
}

// ── executeBatch ────────────────────────────────────────────────────────────────────────────────

function send(client: PgPoolClient, query: StoreStatement): Promise<PgQueryResult | PgQueryResult[]> {
  return query.name === undefined ? client.query(query.sql, query.parameters) : client.query({ name: query.name, text: query.sql, values: query.parameters });
}

async function runBatch(client: PgPoolClient, queries: readonly StoreStatement[], inline: boolean): Promise<StatementResult[]> {
  if (queries.length === 1) {
    // One statement is atomic on its own (autocommit): no BEGIN/COMMIT round trips.
    const [query] = queries as [StoreStatement];
    return asList(await send(client, query)).map(toStatementResult);
  }
  // Fastest (measured on loopback: about 4x bound statements, 2x a pg pipeline), so tried first.
  const script = inline ? inlineBatch(queries) : undefined;
  if (script !== undefined) {
    // No parameters: pg uses the simple protocol, which runs a multi-statement script and stops at
    // the first error (leaving the transaction aborted, for the caller's ROLLBACK). One result per
    // statement: inlineParameters refuses any `;` outside quotes.
    return asList(await client.query(script, [])).slice(1, -1).map(toStatementResult);
  }
  if (client.pipeline === true) {
    // pg writes every query before reading any answer. After a failure the server rejects the rest
    // (the transaction is aborted) and answers COMMIT with ROLLBACK, so nothing is half-applied.
    const sent = [client.query('begin', []), ...queries.map((q) => send(client, q)), client.query('commit', [])];
    const settled = await Promise.allSettled(sent);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.slice(1, -1).map((s) => toStatementResult(asList((s as PromiseFulfilledResult<PgQueryResult | PgQueryResult[]>).value)[0]!));
  }
  await client.query('begin', []);
  const results: StatementResult[] = [];
  for (const query of queries) results.push(toStatementResult(asList(await send(client, query))[0]!));
  await client.query('commit', []);
  return results;
}

async function executeBatch(pool: PgPool, queries: readonly StoreStatement[], inline: boolean, genericPlans: boolean): Promise<StatementResult[]> {
  if (queries.length === 0) return [];
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // Outside the batch's transaction: a SET in one that rolls back would be undone with it.
    if (genericPlans && queries.every(plansGenerically)) await useGenericPlans(client);
    return await runBatch(client, queries, inline);
  } catch (error) {
    if (queries.length > 1) {
      // Harmless when no transaction is open (a notice); a failure means the connection is unusable.
      await client.query('rollback', []).catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
    }
    throw error;
  } finally {
    resumeDefaultPlansOnNextQuery(client);
    client.release(broken);
  }
}

/**
 * The production engine: PostgreSQL through a `pg` pool. Many processes can share the database:
 * deliveries are claimed with `FOR UPDATE SKIP LOCKED`, and migrations take an advisory lock.
 * The store ends the pool when the hooks are closed; give it its own pool or don't call `close()`.
 * @example
 * import pg from 'pg';
 * import { createHooks, postgresStore } from 'resthooks';
 *
 * const hooks = createHooks({
 *   events: { 'book.added': 'Book.created' },
 *   store: postgresStore(new pg.Pool({ connectionString: process.env.DATABASE_URL })),
 * });
 */
export function postgresStoreDialect(pool: PgPool, options: PostgresStoreDialectOptions = {}): StoreDialect {
  const inline = options.inlineBatches !== false;
  const genericPlans = options.genericPlans !== false;
  const batchWindowMs = options.batchWindowMs ?? BATCH_WINDOW_MS;
  if (!Number.isFinite(batchWindowMs) || batchWindowMs < 0 || batchWindowMs > MAX_BATCH_WINDOW_MS) {
    throw new ConfigError(`postgresStore: batchWindowMs must be a number of milliseconds from 0 to ${MAX_BATCH_WINDOW_MS} (got ${batchWindowMs}).`);
  }
  const guarded = guardPool(pool);
  // Kysely's driver only calls `query(sql, parameters)` and `release()` (cursors are never used here),
  // which PgPool declares; its type also lists the cursor overload, hence the cast.
  const base = new PostgresDialect({ pool: guarded as unknown as PostgresPool });
  return {
    name: 'postgres',
    capabilities: { supportsSkipLocked: true, supportsArrayParameters: true, appendsFreshEvents: false, fansOutInOneStatement: true, batchWindowMs },
    kysely: {
      createAdapter: () => new ResthooksPostgresAdapter(),
      createDriver: () => base.createDriver(),
      createIntrospector: (db: Kysely<any>) => base.createIntrospector(db),
      createQueryCompiler: () => base.createQueryCompiler(),
    },
    executeBatch: (queries) => executeBatch(guarded, queries, inline, genericPlans),
    isUnavailable: isPostgresUnavailable,
  };
}
