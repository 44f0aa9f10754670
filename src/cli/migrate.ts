/**
 * `resthooks migrate`: creates or updates the resthooks tables in a SQLite file or a PostgreSQL
 * database, with the same migrations `hooks.start()` runs. The drivers are optional peers, so they
 * are imported only here, only for the engine asked for.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { MigrationResultSet } from 'kysely';
import { migrate as migrateStore, postgresStore, sqliteStore, type StoreDialect } from '../index.js';
import { MIGRATION_NAMES, MIGRATION_TABLE, schemaScript, type SchemaDialect } from '../store/migrator.js';
import { CliError, UsageError, usageErrors, type Command } from './command.js';

const help = `Usage: resthooks migrate --db <file | postgres://url>
       resthooks migrate --print-sql --dialect <sqlite | postgres>

Creates the resthooks tables, or brings them up to date. Safe to run again:
migrations already applied are skipped. Needs the driver of the engine:
better-sqlite3 for a SQLite file, pg for PostgreSQL.

With --print-sql, connects to nothing and prints the SQL instead: every
statement the migrations run on an empty database, with the rows that record
them in resthooks_migration, for a schema your own migrations own.

Options:
  --db <target>        a SQLite file path (created if missing), or a postgres:// URL
                       (default: $DATABASE_URL)
  --print-sql          print the schema's SQL to stdout instead of migrating
  --dialect <dialect>  with --print-sql: sqlite or postgres (default: the engine of
                       --db or $DATABASE_URL, when given)
  --breakpoints        with --print-sql: a "--> statement-breakpoint" line between
                       statements, for drizzle-kit (and tools that run one at a time)
  -h, --help           show this help

Examples:
  resthooks migrate --db ./.data/hooks.db
  resthooks migrate --db postgres://app:secret@127.0.0.1:5432/app
  DATABASE_URL=postgres://127.0.0.1/app resthooks migrate
  resthooks migrate --print-sql --dialect postgres > migration.sql
`;

export type DatabaseTarget = { readonly engine: 'sqlite'; readonly file: string } | { readonly engine: 'postgres'; readonly url: string };

/** `--db` → engine and location. Pure. */
export function parseDatabaseTarget(db: string): DatabaseTarget {
  if (/^postgres(ql)?:\/\//i.test(db)) return { engine: 'postgres', url: db };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(db)) throw new UsageError(`--db: unsupported URL scheme in "${redact(db)}"; give a SQLite file path or a postgres:// URL.`);
  return { engine: 'sqlite', file: db };
}

/** A database URL fit for printing: the password replaced by `***`. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/** Whether `error` is Node's "package not installed" for `name` (not a failure inside it). */
export function isMissingModule(error: unknown, name: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && typeof message === 'string' && message.includes(`'${name}'`);
}

/** Imports an optional driver; when it is not installed, says which package to install. */
export async function importDriver<T>(name: string, load: () => Promise<T>, why: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isMissingModule(error, name)) throw new CliError(`The "${name}" package is not installed; ${why} needs it. Install it: npm install ${name}`);
    throw error;
  }
}

/** The message of an error, including pg's `AggregateError` (one per address tried), whose own message is empty. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const inner = error instanceof AggregateError ? error.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ') : '';
  const code = (error as { code?: unknown }).code;
  return error.message || inner || (typeof code === 'string' ? code : error.name);
}

/** The database as messages name it: the SQLite file's full path, or the URL without its password. */
export function describeTarget(target: DatabaseTarget): string {
  return target.engine === 'sqlite' ? `SQLite ${resolve(target.file)}` : `PostgreSQL ${redact(target.url)}`;
}

export interface OpenStoreOptions {
  /** PostgreSQL connections at most (pg's default: 10). */
  readonly poolSize?: number;
  /** Create the SQLite file's directory when missing (better-sqlite3 creates only the file). */
  readonly createDirectory?: boolean;
}

/** The store on `target`, through its driver (imported only now); `close` ends the driver's connections. */
export async function openStore(target: DatabaseTarget, options: OpenStoreOptions = {}): Promise<{ store: StoreDialect; close(): Promise<void> }> {
  if (target.engine === 'sqlite') {
    const { default: Database } = await importDriver('better-sqlite3', () => import('better-sqlite3'), 'a SQLite database');
    if (options.createDirectory) mkdirSync(dirname(resolve(target.file)), { recursive: true });
    const database = new Database(target.file);
    return { store: sqliteStore(database), close: async () => void database.close() };
  }
  const { default: pg } = await importDriver('pg', () => import('pg'), 'a postgres:// database');
  const pool = new pg.Pool({ connectionString: target.url, max: options.poolSize, connectionTimeoutMillis: 10_000 });
  // An idle client's error (the server restarting) must not crash the process with an unhandled event.
  pool.on('error', () => {});
  return { store: postgresStore(pool), close: () => pool.end() };
}

async function runMigrations(target: DatabaseTarget): Promise<MigrationResultSet> {
  // The demo's default file is under ./.data/, which may not exist yet.
  const { store, close } = await openStore(target, { poolSize: 2, createDirectory: true });
  try {
    return await migrateStore(store);
  } finally {
    await close();
  }
}

const DIALECTS: readonly SchemaDialect[] = ['sqlite', 'postgres'];

/** `--dialect`, or the engine of the database named, for `--print-sql`. */
function printDialect(dialect: string | undefined, db: string | undefined): SchemaDialect {
  if (dialect !== undefined) {
    if (!(DIALECTS as readonly string[]).includes(dialect)) throw new UsageError(`--dialect: expected sqlite or postgres, got "${dialect}".`);
    return dialect as SchemaDialect;
  }
  if (db) return parseDatabaseTarget(db).engine;
  throw new UsageError('--print-sql needs --dialect sqlite or --dialect postgres.');
}

/**
 * The schema's SQL for `dialect`, as a file a migration tool can run: what the migrator runs on an empty
 * database (its bookkeeping included, so `resthooks migrate` and the start-up check agree with it), one
 * section per migration so that an upgrade can take only the sections the database lacks.
 */
export async function printSql(dialect: SchemaDialect, { breakpoints = false }: { breakpoints?: boolean } = {}): Promise<string> {
  const { bookkeeping, migrations } = await schemaScript(dialect);
  const engine = dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL';
  // Drizzle's migrator runs one statement at a time, cut at these markers (a SQL comment to anything else);
  // none after the last statement, where it would leave an empty one.
  const separator = breakpoints ? '\n--> statement-breakpoint\n' : '\n';
  const statements = (list: readonly string[]) => list.map((statement) => `${statement};`).join(separator);
  const header = [
    `-- resthooks schema, version ${MIGRATION_NAMES.at(-1)}, for ${engine}.`,
    `-- Printed by \`resthooks migrate --print-sql --dialect ${dialect}\`: the statements \`resthooks migrate\` runs on an empty database.`,
    `-- Each migration ends with its row in ${MIGRATION_TABLE}: with \`migrate: false\`, resthooks checks at start-up that`,
    '-- every migration it needs has its row there, and names the ones that do not. Keep the rows: without them',
    '-- `resthooks migrate` (or `migrate: true`) would run the migrations again on the existing tables.',
    '-- On an upgrade, apply only the sections of the migrations your database lacks.',
  ];
  const sections = [
    `-- Bookkeeping: the tables where resthooks records its migrations\n${statements(bookkeeping)}`,
    ...migrations.map((migration) => `-- Migration ${migration.name}\n${statements(migration.statements)}`),
  ];
  return `${header.join('\n')}\n\n${sections.join(`${breakpoints ? separator : '\n'}\n`)}\n`;
}

export const migrate: Command = {
  name: 'migrate',
  summary: 'create or update the resthooks tables (SQLite file or PostgreSQL), or print their SQL',
  help,
  async run(args) {
    const { values } = usageErrors(() =>
      parseArgs({
        args,
        strict: true,
        options: { db: { type: 'string' }, 'print-sql': { type: 'boolean' }, dialect: { type: 'string' }, breakpoints: { type: 'boolean' } },
      }),
    );
    if (values['print-sql']) {
      process.stdout.write(await printSql(printDialect(values.dialect, values.db ?? process.env.DATABASE_URL), { breakpoints: values.breakpoints }));
      return 0;
    }
    if (values.dialect !== undefined || values.breakpoints) throw new UsageError('--dialect and --breakpoints go with --print-sql; to migrate a database, give --db.');
    const db = values.db ?? process.env.DATABASE_URL;
    if (!db) throw new UsageError('Missing --db <file | postgres://url> (or set DATABASE_URL).');
    const target = parseDatabaseTarget(db);
    const where = describeTarget(target);
    process.stdout.write(`Migrating ${where}\n`);
    let result: MigrationResultSet;
    try {
      result = await runMigrations(target);
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`Cannot migrate ${where}: ${describeError(error)}`);
    }
    for (const step of result.results ?? []) {
      const mark = step.status === 'Success' ? '✓' : step.status === 'Error' ? '✗' : '-';
      const note = step.status === 'NotExecuted' ? ' (not run: an earlier migration failed)' : step.status === 'Error' ? ' failed' : '';
      process.stdout.write(`  ${mark} ${step.migrationName}${note}\n`);
    }
    if (result.error !== undefined) throw new CliError(`Migration failed on ${where}: ${describeError(result.error)}`);
    const applied = (result.results ?? []).filter((step) => step.status === 'Success').length;
    process.stdout.write(applied === 0 ? 'Already up to date: nothing to run.\n' : `Done: ${applied} migration${applied === 1 ? '' : 's'} applied.\n`);
    return 0;
  },
};
