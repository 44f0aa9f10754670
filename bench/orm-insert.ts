/**
 * What the Drizzle, Kysely, MikroORM and Sequelize adapters add to a single-row insert on SQLite (a file, WAL,
 * one transaction per insert), as a ratio against the same insert without resthooks, measured in the same run.
 * For Drizzle, Kysely and MikroORM the store is in the app's file ('transaction' mode: one more row written per
 * insert, in the same transaction). Sequelize (sqlite3) must not share a file with the store (better-sqlite3): its
 * app has a file of its own, the store another ('after-commit' mode: the row is appended after each COMMIT).
 * Run: npx tsx bench/orm-insert.ts [inserts]
 */
import Database from 'better-sqlite3';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { EntitySchema, MikroORM } from '@mikro-orm/core';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { Kysely, SqliteDialect, type Generated } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataTypes, Sequelize } from 'sequelize';
import { drizzleHooks } from '../src/adapters/orm/drizzle-adapter.js';
import { kyselyHooks } from '../src/adapters/orm/kysely-adapter.js';
import { attachSequelize } from '../src/adapters/orm/sequelize-adapter.js';
import { attachMikroOrm } from '../src/adapters/orm/mikro-orm-adapter.js';
import { createHooks, sqliteStore } from '../src/index.js';

const INSERTS = Number(process.argv[2] ?? 3000);
const books = sqliteTable('books', { id: integer('id').primaryKey({ autoIncrement: true }), title: text('title').notNull(), ownerId: text('ownerId').notNull() });
interface AppDatabase {
  books: { id: Generated<number>; title: string; ownerId: string };
}
const BookSchema = new EntitySchema<{ id: number; title: string; ownerId: string }>({
  name: 'Book',
  tableName: 'books',
  properties: { id: { type: 'number', primary: true, autoincrement: true }, title: { type: 'string' }, ownerId: { type: 'string', fieldName: 'ownerId' } },
});

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-orm-bench-'));
  try {
    const file = join(dir, 'app.db');
    const connection = new Database(file);
    connection.pragma('journal_mode = WAL');
    connection.exec('create table books (id integer primary key autoincrement, title text not null, "ownerId" text not null)');
    const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(new Database(file)), delivery: { pollInterval: 3_600_000 } });
    await hooks.start();
    await hooks.stop(); // the write path only: nothing is delivered while measuring
    const db = drizzle(connection);
    const rh = await drizzleHooks(db, hooks, { models: { Book: books } });
    const kysely = new Kysely<AppDatabase>({ dialect: new SqliteDialect({ database: connection }) });
    const kh = await kyselyHooks(kysely, hooks, { models: { Book: 'books' } });
    // Two ORMs on the same file, one without resthooks: a MikroORM subscriber cannot be removed.
    const mikroPlain = await MikroORM.init({ driver: BetterSqliteDriver, dbName: file, entities: [BookSchema], debug: false });
    const mikroHooked = await MikroORM.init({ driver: BetterSqliteDriver, dbName: file, entities: [BookSchema], debug: false });
    await attachMikroOrm(mikroHooked, hooks);
    const mikroInsert = (orm: MikroORM, i: number) => {
      const em = orm.em.fork();
      return em.persistAndFlush(em.create(BookSchema, row(i)));
    };
    const row = (i: number) => ({ title: `Book ${i}`, ownerId: 'alice' });
    const sequelize = new Sequelize({ dialect: 'sqlite', storage: join(dir, 'sequelize-app.db'), logging: false });
    const SequelizeBook = sequelize.define('Book', { title: DataTypes.STRING, ownerId: DataTypes.STRING }, { tableName: 'books', timestamps: false });
    await sequelize.sync();
    await sequelize.query('pragma journal_mode = wal');
    const sequelizeStore = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(new Database(join(dir, 'hooks.db'))), delivery: { pollInterval: 3_600_000 } });
    await sequelizeStore.start();
    await sequelizeStore.stop();
    // Resthooks' hooks are on the instance: the plain case runs with hooks off, as Sequelize allows per call.
    await attachSequelize(sequelize, sequelizeStore);

    /** µs per insert over `count` inserts. */
    const time = async (run: (i: number) => unknown, count: number): Promise<number> => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) await run(i);
      return Number(process.hrtime.bigint() - start) / 1e3 / count;
    };
    // Short alternating rounds, the median of their ratios: a busy machine's drift hits both sides alike.
    const ROUNDS = 15;
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const cases: Array<[string, (i: number) => unknown, (i: number) => unknown]> = [
      ['drizzle (better-sqlite3, sync)', (i) => db.transaction((tx) => tx.insert(books).values(row(i)).returning().all()), (i) => rh.insertSync(db, books, row(i))],
      [
        'kysely (SqliteDialect)',
        (i) => kysely.transaction().execute((trx) => trx.insertInto('books').values(row(i)).returningAll().execute()),
        (i) => kh.execute(kysely, kysely.insertInto('books').values(row(i)).returningAll()),
      ],
      [
        'sequelize (sqlite3, store in its own file)',
        (i) => sequelize.transaction((transaction) => SequelizeBook.create(row(i), { transaction, hooks: false })),
        (i) => sequelize.transaction((transaction) => SequelizeBook.create(row(i), { transaction })),
      ],
      ['mikro-orm (better-sqlite, em.flush)', (i) => mikroInsert(mikroPlain, i), (i) => mikroInsert(mikroHooked, i)],
    ];
    for (const [name, plain, withHooks] of cases) {
      await time(plain, 200); // warm-up
      await time(withHooks, 200);
      const plainUs: number[] = [];
      const hooksUs: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        plainUs.push(await time(plain, Math.ceil(INSERTS / ROUNDS)));
        hooksUs.push(await time(withHooks, Math.ceil(INSERTS / ROUNDS)));
      }
      const ratio = median(hooksUs.map((us, round) => us / plainUs[round]!));
      console.log(`${name}: ${median(plainUs).toFixed(1)} µs plain, ${median(hooksUs).toFixed(1)} µs with resthooks (medians), ratio ${ratio.toFixed(2)}×`);
    }
    await kysely.destroy();
    await mikroPlain.close(true);
    await mikroHooked.close(true);
    await hooks.close();
    await sequelize.close();
    await sequelizeStore.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
