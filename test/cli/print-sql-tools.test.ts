/**
 * The docs' recipes for putting `resthooks migrate --print-sql` into another tool's migrations, run for
 * real: Drizzle's migrator (what `drizzle-kit migrate` runs) and TypeORM's migrations, on SQLite and
 * PostgreSQL. Each must leave a schema resthooks starts on with `migrate: false`, and deliver. Prisma
 * Migrate's schema engine is a binary downloaded at first use from outside the npm registry, so it cannot
 * run here: its recipe's migration folder is checked without it.
 */
import Database from 'better-sqlite3';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { migrate as migrateSqlite } from 'drizzle-orm/better-sqlite3/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../support/database.js';
import { eventually, tempDir, testHooks } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { freshDatabases, printedSql } from './print-sql-support.js';

describe.each(['sqlite', 'postgres'] as const)('the printed SQL in other tools’ migrations, on %s', (engine) => {
  let receiver: Receiver;
  let script: string;
  const dir = tempDir();
  const { fresh: freshDatabase, closeAll: closeDatabases } = freshDatabases(engine);

  beforeAll(async () => {
    receiver = await startReceiver();
    script = await printedSql(engine, '--breakpoints');
  });
  afterAll(async () => {
    await receiver?.close();
    await closeDatabases();
    dir.cleanup();
  });

  async function expectResthooksWorks(database: TestDatabase, title: string): Promise<void> {
    const { hooks, close } = await testHooks({ events: { 'book.added': 'Book.created' }, store: database.dialect(), migrate: false });
    try {
      await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
      expect(await hooks.model('Book', 'created', { id: 1, title, ownerId: 'alice' })).toMatchObject({ status: 'queued' });
      await eventually(() => expect(receiver.received.some((request) => request.json?.data?.title === title)).toBe(true), 15_000);
    } finally {
      await close();
    }
  }

  it('as a custom drizzle-kit migration, run by Drizzle’s migrator', async () => {
    const database = await freshDatabase();
    // What `drizzle-kit generate --custom --name=resthooks` makes: a journal entry and an SQL file, here filled in.
    const folder = join(dir.path, `drizzle-${engine}`);
    mkdirSync(join(folder, 'meta'), { recursive: true });
    const journal = { version: '7', dialect: engine === 'sqlite' ? 'sqlite' : 'postgresql', entries: [{ idx: 0, version: '7', when: 1_765_000_000_000, tag: '0000_resthooks', breakpoints: true }] };
    writeFileSync(join(folder, 'meta', '_journal.json'), JSON.stringify(journal));
    writeFileSync(join(folder, '0000_resthooks.sql'), script);
    if (engine === 'sqlite') {
      const sqlite = new Database(database.url);
      try {
        migrateSqlite(drizzleSqlite(sqlite), { migrationsFolder: folder });
      } finally {
        sqlite.close();
      }
    } else {
      const pool = database.pool();
      await migratePg(drizzlePg(pool), { migrationsFolder: folder });
    }
    await expectResthooksWorks(database, `drizzle on ${engine}`);
  });

  it('as a Prisma Migrate migration: the file is the printed SQL, byte for byte on every print, and applies whole after the app’s own migration', async () => {
    const database = await freshDatabase();
    // Prisma Migrate keeps a checksum of each migration.sql: printing again must give the same bytes.
    const printed = await printedSql(engine);
    expect(await printedSql(engine)).toBe(printed);
    // What `prisma migrate dev --create-only` leaves, with the app's first migration before it, then filled in as the docs say.
    const folder = join(dir.path, `prisma-${engine}`, 'migrations');
    const appTable = engine === 'sqlite' ? 'create table "books" ("id" integer primary key autoincrement, "title" text not null);' : 'create table "books" ("id" serial primary key, "title" text not null);';
    for (const [name, sql] of [['20251206000000_init', appTable], ['20251206000100_resthooks', printed]] as const) {
      mkdirSync(join(folder, name), { recursive: true });
      writeFileSync(join(folder, name, 'migration.sql'), sql);
    }
    // As `prisma migrate deploy` applies a folder: each migration.sql in name order, each as one script.
    const scripts = readdirSync(folder).sort().map((name) => readFileSync(join(folder, name, 'migration.sql'), 'utf8'));
    if (engine === 'sqlite') {
      const sqlite = new Database(database.url);
      try {
        for (const sql of scripts) sqlite.exec(sql);
      } finally {
        sqlite.close();
      }
    } else {
      const pool = database.pool({ max: 1 });
      for (const sql of scripts) await pool.query(sql);
    }
    await expectResthooksWorks(database, `prisma migrate on ${engine}`);
  });

  it('as a TypeORM migration (queryRunner.query, one statement at a time)', async () => {
    const database = await freshDatabase();
    const sql = script;
    class ResthooksSchema1765000000000 implements MigrationInterface {
      async up(queryRunner: QueryRunner): Promise<void> {
        for (const statement of sql.split('--> statement-breakpoint')) await queryRunner.query(statement);
      }
      async down(): Promise<void> {}
    }
    const dataSource =
      engine === 'sqlite'
        ? new DataSource({ type: 'better-sqlite3', database: database.url, migrations: [ResthooksSchema1765000000000] })
        : new DataSource({ type: 'postgres', url: database.url, migrations: [ResthooksSchema1765000000000], poolSize: 2 });
    await dataSource.initialize();
    try {
      const ran = await dataSource.runMigrations();
      expect(ran.map((migration) => migration.name)).toEqual(['ResthooksSchema1765000000000']);
    } finally {
      await dataSource.destroy();
    }
    await expectResthooksWorks(database, `typeorm on ${engine}`);
  });
});
