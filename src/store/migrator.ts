import {
  DummyDriver,
  Kysely,
  Migrator,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type CompiledQuery,
  type Migration,
  type MigrationResultSet,
} from 'kysely';
import { initial } from './migrations/0001-initial.js';
import { attemptsKeyedByDelivery } from './migrations/0002-attempts-keyed-by-delivery.js';
import { eventFanOutRetries } from './migrations/0003-event-fanout-retries.js';
import { eventNamesIndexedAtFanOut } from './migrations/0004-event-names-indexed-at-fanout.js';
import { subscriptionMaxPerSecond } from './migrations/0005-subscription-max-per-second.js';
import { freshEventsTable } from './migrations/0006-fresh-events-table.js';
import { firstAttemptInDeliveryRow } from './migrations/0007-first-attempt-in-delivery-row.js';
import { subscriptionHistoryTable } from './migrations/0008-subscription-history-table.js';

const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001-initial': initial,
  '0002-attempts-keyed-by-delivery': attemptsKeyedByDelivery,
  '0003-event-fanout-retries': eventFanOutRetries,
  '0004-event-names-indexed-at-fanout': eventNamesIndexedAtFanOut,
  '0005-subscription-max-per-second': subscriptionMaxPerSecond,
  '0006-fresh-events-table': freshEventsTable,
  '0007-first-attempt-in-delivery-row': firstAttemptInDeliveryRow,
  '0008-subscription-history-table': subscriptionHistoryTable,
};

/** Every migration's name, in the order they run; the last one is the current schema version. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS);

/** Where Kysely's migrator records which migrations ran (one row each, `name` and `timestamp`). */
export const MIGRATION_TABLE = 'resthooks_migration';
const MIGRATION_LOCK_TABLE = 'resthooks_migration_lock';

function migrator(db: Kysely<any>, migrations: Readonly<Record<string, Migration>> = MIGRATIONS): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
}

/** Brings the resthooks tables up to date. Returns Kysely's `{ error, results }` rather than throwing. */
export function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  return migrator(db).migrateToLatest();
}

/**
 * Moves the resthooks tables up or down to migration `name`, as the shipped migrations make it (a database
 * as an older version left it, or a migration undone).
 */
export function migrateTo(db: Kysely<any>, name: string): Promise<MigrationResultSet> {
  return migrator(db).migrateTo(name);
}

/** The migrations this version of resthooks needs that the database has not recorded as run, in order. */
export async function missingMigrations(db: Kysely<any>): Promise<string[]> {
  const migrations = await migrator(db).getMigrations();
  return migrations.filter((migration) => migration.executedAt === undefined).map((migration) => migration.name);
}

export type SchemaDialect = 'sqlite' | 'postgres';

/** What `ready()` says when migrations are missing: which ones, and every way to apply them. */
export function missingMigrationsMessage(missing: readonly string[], dialect: SchemaDialect): string {
  const which = missing.length === MIGRATION_NAMES.length ? 'none of its migrations have run (the resthooks tables do not exist yet, or were not made by its migrations)' : `it lacks ${missing.length === 1 ? 'migration' : 'migrations'} ${missing.join(', ')}`;
  const command = `\`resthooks migrate --print-sql --dialect ${dialect}\``;
  const printed = missing.length === MIGRATION_NAMES.length ? `the output of ${command}` : `the sections of ${command} named ${missing.map((name) => `"${name}"`).join(', ')}`;
  return (
    `The resthooks schema is not up to date: ${which}; ${MIGRATION_TABLE} has a row for each migration that ran. ` +
    `Apply ${missing.length === 1 ? 'it' : 'them'} with \`resthooks migrate\` or \`migrate(store)\`, add ${printed} to your own migrations, ` +
    `or leave \`migrate\` on (the default) so \`hooks.start()\` applies them.`
  );
}

/** One migration's statements, as the migrator runs them, its bookkeeping row last. */
export interface MigrationScript {
  readonly name: string;
  readonly statements: readonly string[];
}

/** The schema as SQL: what `migrateToLatest` runs on an empty database, split where each migration begins. */
export interface SchemaScript {
  /** The bookkeeping tables (and the lock row) the migrator creates before any migration. */
  readonly bookkeeping: readonly string[];
  readonly migrations: readonly MigrationScript[];
}

/**
 * The SQL `migrateToLatest` would run on an empty database of `dialect`, without a database: the real
 * migrator runs on Kysely's `DummyDriver` (every query returns no rows, so every migration is pending)
 * and each statement it sends is kept. Its reads (introspection, lock checks) only decide what to run
 * and are left out; parameters are written in as literals, so each statement runs as it is.
 */
export async function schemaScript(dialect: SchemaDialect): Promise<SchemaScript> {
  const bookkeeping: string[] = [];
  const migrations: Array<{ name: string; statements: string[] }> = [];
  const db = new Kysely<any>({
    dialect: {
      createDriver: () => new DummyDriver(),
      createAdapter: () => (dialect === 'sqlite' ? new SqliteAdapter() : new PostgresAdapter()),
      createQueryCompiler: () => (dialect === 'sqlite' ? new SqliteQueryCompiler() : new PostgresQueryCompiler()),
      createIntrospector: (kysely) => (dialect === 'sqlite' ? new SqliteIntrospector(kysely) : new PostgresIntrospector(kysely)),
    },
    log: (event) => {
      if (event.level !== 'query' || isRead(event.query)) return;
      (migrations.at(-1)?.statements ?? bookkeeping).push(inlineParameters(event.query, dialect));
    },
  });
  // Each migration announces itself before running, so its statements (and its bookkeeping row, written
  // right after it) are filed under its name.
  const announced = Object.fromEntries(
    Object.entries(MIGRATIONS).map(([name, migration]): [string, Migration] => [
      name,
      {
        up: async (trx) => {
          migrations.push({ name, statements: [] });
          await migration.up(trx);
        },
      },
    ]),
  );
  try {
    const { error } = await migrator(db, announced).migrateToLatest();
    if (error) throw error;
  } finally {
    await db.destroy();
  }
  return { bookkeeping, migrations };
}

// Introspection and lock queries: a `select`, or a `with … select`. No migration statement starts either way.
function isRead(query: CompiledQuery): boolean {
  return /^\s*(select|with)\b/i.test(query.sql);
}

/**
 * The time a statement runs, as the ISO text the migrator records in a bookkeeping row. Written as a literal it
 * would be the time of printing: wrong, and different each time the schema is printed, where migration tools
 * keep a checksum of each migration file (Prisma Migrate) and want it printed again byte for byte.
 */
const RUN_TIME: Record<SchemaDialect, string> = {
  sqlite: `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
  postgres: `to_char(current_timestamp at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
};

/** The statement with its parameters written as SQL literals (the migrator binds only names, times and the lock row). */
function inlineParameters(query: CompiledQuery, dialect: SchemaDialect): string {
  const bookkeepingRow = query.sql.startsWith(`insert into "${MIGRATION_TABLE}" ("name", "timestamp") values`);
  let index = -1;
  const literal = (value: unknown): string => {
    index += 1;
    if (bookkeepingRow && index === 1) return RUN_TIME[dialect];
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`;
    throw new Error(`Cannot write the parameter ${String(value)} of "${query.sql}" as SQL.`);
  };
  // Parameters in order: PostgreSQL's $n, like SQLite's ?, appear in the order of their values here.
  if (dialect === 'postgres') return query.sql.replace(/\$(\d+)/g, (_, position: string) => literal(query.parameters[Number(position) - 1]));
  let next = 0;
  return query.sql.replace(/\?/g, () => literal(query.parameters[next++]));
}
