import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { CliError, UsageError } from '../../src/cli/command.js';
import { describeError, importDriver, isMissingModule, parseDatabaseTarget, redact } from '../../src/cli/migrate.js';
import { tempDir } from '../support/hooks.js';
import { createTestDatabase } from '../support/postgres.js';
import { runCli } from './cli-process.js';

const TABLES = ['resthooks_attempts', 'resthooks_deliveries', 'resthooks_events', 'resthooks_outbox', 'resthooks_subscriptions'];

describe('migrate: pure parts', () => {
  it('tells a postgres URL from a SQLite file', () => {
    expect(parseDatabaseTarget('postgres://u:p@127.0.0.1:5432/app')).toEqual({ engine: 'postgres', url: 'postgres://u:p@127.0.0.1:5432/app' });
    expect(parseDatabaseTarget('postgresql://127.0.0.1/app')).toEqual({ engine: 'postgres', url: 'postgresql://127.0.0.1/app' });
    expect(parseDatabaseTarget('./.data/hooks.db')).toEqual({ engine: 'sqlite', file: './.data/hooks.db' });
    expect(parseDatabaseTarget('C:\\data\\hooks.db')).toEqual({ engine: 'sqlite', file: 'C:\\data\\hooks.db' });
    expect(() => parseDatabaseTarget('mysql://root:pw@127.0.0.1/app')).toThrow(UsageError);
    expect(() => parseDatabaseTarget('mysql://root:pw@127.0.0.1/app')).toThrow('"mysql://root:***@127.0.0.1/app"');
  });

  it('never prints a password', () => {
    expect(redact('postgres://app:s3cret@127.0.0.1:5432/app')).toBe('postgres://app:***@127.0.0.1:5432/app');
    expect(redact('postgres://127.0.0.1/app')).toBe('postgres://127.0.0.1/app');
    expect(redact('postgres://app:s3cret@[bad')).toBe('postgres://app:***@[bad');
  });

  it('says "npm install <driver>" when the driver package is missing, and only then', async () => {
    const name = 'resthooks-test-no-such-driver';
    const error = await import(name).catch((e: unknown) => e);
    expect(isMissingModule(error, name)).toBe(true);
    expect(isMissingModule(error, 'pg')).toBe(false);
    const failure = importDriver(name, () => import(name), 'a postgres:// database');
    await expect(failure).rejects.toThrow(CliError);
    await expect(failure).rejects.toThrow(`The "${name}" package is not installed; a postgres:// database needs it. Install it: npm install ${name}`);
    await expect(importDriver('pg', () => Promise.reject(new Error('boom')), 'x')).rejects.toThrow('boom');
  });

  it('describes errors whose message is empty (pg connection AggregateError)', () => {
    const refused = Object.assign(new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], ''), { code: 'ECONNREFUSED' });
    expect(describeError(refused)).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
    expect(describeError(Object.assign(new Error(''), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    expect(describeError('text')).toBe('text');
  });
});

describe('resthooks migrate', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('creates the tables in a new SQLite file (and its directory), then reports nothing to do', async () => {
    const file = join(dir.path, 'nested', 'hooks.db');
    const first = await runCli(['migrate', '--db', file]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`Migrating SQLite ${file}\n  ✓ 0001-initial\n  ✓ 0002-attempts-keyed-by-delivery\n  ✓ 0003-event-fanout-retries\n  ✓ 0004-event-names-indexed-at-fanout\n  ✓ 0005-subscription-max-per-second\n  ✓ 0006-fresh-events-table\n  ✓ 0007-first-attempt-in-delivery-row\n  ✓ 0008-subscription-history-table\nDone: 8 migrations applied.\n`);

    const database = new Database(file, { readonly: true });
    const tables = database.prepare("select name from sqlite_master where type = 'table' and name like 'resthooks%' order by name").pluck().all();
    database.close();
    expect(tables).toEqual(expect.arrayContaining(TABLES));

    const second = await runCli(['migrate', '--db', file]);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`Migrating SQLite ${file}\nAlready up to date: nothing to run.\n`);
  });

  it('takes DATABASE_URL when --db is missing, and exits 2 when neither is given', async () => {
    const file = join(dir.path, 'from-env.db');
    const [fromEnv, neither] = await Promise.all([runCli(['migrate'], { DATABASE_URL: file }), runCli(['migrate'], { DATABASE_URL: '' })]);
    expect(fromEnv.code).toBe(0);
    expect(existsSync(file)).toBe(true);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('Missing --db <file | postgres://url> (or set DATABASE_URL).');
  });

  it('creates the tables in a real PostgreSQL database, then reports nothing to do', async () => {
    const database = await createTestDatabase(inject('postgresUrl'));
    try {
      const first = await runCli(['migrate', '--db', database.url]);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toBe(`Migrating PostgreSQL ${database.url}\n  ✓ 0001-initial\n  ✓ 0002-attempts-keyed-by-delivery\n  ✓ 0003-event-fanout-retries\n  ✓ 0004-event-names-indexed-at-fanout\n  ✓ 0005-subscription-max-per-second\n  ✓ 0006-fresh-events-table\n  ✓ 0007-first-attempt-in-delivery-row\n  ✓ 0008-subscription-history-table\nDone: 8 migrations applied.\n`);
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const { rows } = await client.query<{ name: string }>("select tablename as name from pg_tables where tablename like 'resthooks%' order by 1");
      await client.end();
      expect(rows.map((row) => row.name)).toEqual(expect.arrayContaining(TABLES));
      const second = await runCli(['migrate', '--db', database.url]);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('Already up to date: nothing to run.');
    } finally {
      await database.drop();
    }
  });

  it('exits 1 with one clear line (and no password) when PostgreSQL is unreachable', async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const { code, stdout, stderr } = await runCli(['migrate', '--db', 'postgres://app:s3cret@127.0.0.1:1/app']);
    expect(code).toBe(1);
    expect(stdout).toBe('Migrating PostgreSQL postgres://app:***@127.0.0.1:1/app\n');
    expect(stderr).toMatch(/^resthooks migrate: .*postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/app: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
    expect(stderr).not.toContain('s3cret');
  });

  it('exits 1 with the reason when the SQLite file cannot be opened', async () => {
    const { code, stderr } = await runCli(['migrate', '--db', dir.path]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^resthooks migrate: Cannot migrate SQLite .+: .+\n$/);
  });
});
