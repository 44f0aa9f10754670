/**
 * `resthooks migrate --print-sql` for teams whose own migrations own the database: the printed SQL,
 * run by hand on a fresh database, must give the schema the migrator gives, accepted with `migrate: false`;
 * and a database that lacks a migration must be refused with the missing migration named.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationRequiredError } from '../../src/index.js';
import { MIGRATION_NAMES } from '../../src/store/migrator.js';
import type { TestDatabase } from '../support/database.js';
import { eventually, testHooks } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { runCli } from './cli-process.js';
import { freshDatabases, printedSql } from './print-sql-support.js';

const LATEST = '0008-subscription-history-table';

/** The printed SQL without the sections of `migrations`: a database that stopped before them. */
function withoutSections(script: string, migrations: readonly string[]): string {
  return script
    .split('\n\n')
    .filter((section) => !migrations.some((name) => section.startsWith(`-- Migration ${name}\n`)))
    .join('\n\n');
}

/** Runs a whole SQL script, as a migration tool would, on the test database. */
async function runScript(database: TestDatabase, script: string): Promise<void> {
  if (database.engine === 'sqlite') {
    const db = new Database(database.url);
    try {
      db.exec(script);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(script);
  } finally {
    await client.end();
  }
}

/** The schema as the database describes it: every resthooks table's columns and every index, with their definitions. */
async function describeSchema(database: TestDatabase): Promise<unknown> {
  if (database.engine === 'sqlite') {
    const db = new Database(database.url, { readonly: true });
    try {
      return db.prepare("select type, name, tbl_name, sql from sqlite_master where name like 'resthooks%' order by type, name").all();
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const columns = await client.query(
      `select table_name, column_name, ordinal_position, data_type, character_maximum_length, is_nullable, column_default
       from information_schema.columns where table_schema = 'public' and table_name like 'resthooks%' order by table_name, column_name`,
    );
    const indexes = await client.query("select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' and tablename like 'resthooks%' order by indexname");
    const constraints = await client.query(
      `select conrelid::regclass::text as table_name, conname, pg_get_constraintdef(oid) as definition
       from pg_constraint where conrelid::regclass::text like 'resthooks%' order by conname`,
    );
    return { columns: columns.rows, indexes: indexes.rows, constraints: constraints.rows };
  } finally {
    await client.end();
  }
}

async function recordedMigrations(database: TestDatabase): Promise<string[]> {
  const store = database.store();
  try {
    const rows = (await store.db.selectFrom('resthooks_migration' as never).selectAll().orderBy('name' as never).execute()) as Array<{ name: string; timestamp: string }>;
    // Recorded as the migrator records it: the ISO text of a time.
    for (const row of rows) expect(row.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    return rows.map((row) => row.name);
  } finally {
    await store.destroy();
  }
}

/** What `start()` of hooks on `database` with `migrate: false` rejects with (undefined when it starts); the hooks are closed again. */
async function startFailure(database: TestDatabase): Promise<unknown> {
  const { hooks, close } = await testHooks({ events: { 'book.added': 'Book.created' }, store: database.dialect(), migrate: false }, { start: false });
  try {
    return await hooks.start().then(
      () => undefined,
      (error: unknown) => error,
    );
  } finally {
    await close();
  }
}

describe.each(['sqlite', 'postgres'] as const)('resthooks migrate --print-sql on %s', (engine) => {
  let receiver: Receiver;
  let script: string;
  const { fresh: freshDatabase, closeAll: closeDatabases } = freshDatabases(engine);

  beforeAll(async () => {
    receiver = await startReceiver();
    script = await printedSql(engine);
  });
  afterAll(async () => {
    await receiver?.close();
    await closeDatabases();
  });

  it('prints every migration, each followed by its bookkeeping row', () => {
    expect(script).toMatch(new RegExp(`^-- resthooks schema, version ${LATEST}, for (SQLite|PostgreSQL)\\.\\n`));
    for (const name of MIGRATION_NAMES) {
      expect(script).toContain(`\n-- Migration ${name}\n`);
      // The time the script runs, not the time it was printed: printing again gives the same file.
      expect(script).toMatch(new RegExp(`insert into "resthooks_migration" \\("name", "timestamp"\\) values \\('${name}', (strftime|to_char)\\([^;]+\\)\\);\\n`));
    }
    expect(script).not.toMatch(/\bselect pg_advisory|sqlite_master/);
  });

  it('gives the schema the migrator gives; resthooks starts on it with migrate: false and delivers', async () => {
    const [printed, migrated] = await Promise.all([freshDatabase(), freshDatabase()]);
    await runScript(printed, script);
    await (await migrated.migrated()).destroy();
    expect(await describeSchema(printed)).toEqual(await describeSchema(migrated));
    expect(await recordedMigrations(printed)).toEqual([...MIGRATION_NAMES]);

    const { hooks, close } = await testHooks({ events: { 'book.added': 'Book.created' }, store: printed.dialect(), migrate: false });
    try {
      await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
      const result = await hooks.model('Book', 'created', { id: 7, title: 'Dune', ownerId: 'alice' });
      expect(result.status).toBe('queued');
      await eventually(() => expect(receiver.received.some((request) => request.json?.data?.title === 'Dune' && request.json.hook.event === 'book.added')).toBe(true), 15_000);
    } finally {
      await close();
    }

    // The migrator reads the same bookkeeping: nothing is left for it to run.
    const again = await runCli(['migrate', '--db', printed.url]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already up to date: nothing to run.');
  });

  it('refuses a database that lacks the latest migration, naming it', async () => {
    const database = await freshDatabase();
    await runScript(database, withoutSections(script, [LATEST]));
    const failure = await startFailure(database);
    expect(failure).toBeInstanceOf(MigrationRequiredError);
    expect((failure as MigrationRequiredError).missing).toEqual([LATEST]);
    expect((failure as MigrationRequiredError).message).toContain(`it lacks migration ${LATEST}`);
    expect((failure as MigrationRequiredError).message).toContain(`resthooks migrate --print-sql --dialect ${engine}`);
    expect((failure as MigrationRequiredError).message).toContain(`"${LATEST}"`);
    // Applying the missing section is enough: start() resolves.
    await runScript(database, script.split('\n\n').find((section) => section.startsWith(`-- Migration ${LATEST}\n`))!);
    await (await testHooks({ events: { 'book.added': 'Book.created' }, store: database.dialect(), migrate: false })).close();
  });

  it('names every migration when none has run', async () => {
    const database = await freshDatabase();
    const failure = await startFailure(database);
    expect(failure).toBeInstanceOf(MigrationRequiredError);
    expect((failure as MigrationRequiredError).missing).toEqual([...MIGRATION_NAMES]);
    expect((failure as MigrationRequiredError).message).toContain('none of its migrations have run');
  });
});

describe('resthooks migrate --print-sql: usage', () => {
  it('needs a dialect it knows, and takes it from --db when given', async () => {
    const [none, unknown, alone, fromDb] = await Promise.all([
      runCli(['migrate', '--print-sql'], { DATABASE_URL: '' }),
      runCli(['migrate', '--print-sql', '--dialect', 'mysql']),
      runCli(['migrate', '--dialect', 'sqlite', '--db', 'x.db']),
      runCli(['migrate', '--print-sql', '--db', 'postgres://app:s3cret@127.0.0.1:1/app']),
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--print-sql needs --dialect sqlite or --dialect postgres.');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--dialect: expected sqlite or postgres, got "mysql".');
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('--dialect and --breakpoints go with --print-sql');
    // Prints without connecting (nothing listens on port 1).
    expect(fromDb.code).toBe(0);
    expect(fromDb.stdout).toContain('for PostgreSQL.');
  });
});
