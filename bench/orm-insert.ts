/**
 * What each ORM adapter adds to a single-row insert on SQLite (a file, WAL, one transaction per insert), as a
 * ratio against the same insert without resthooks, measured in the same run: TypeORM, Prisma (in
 * `$transaction` and standalone, each on its driver adapter as given and wrapped by `resthooksAdapter`), Drizzle, Kysely (with and without its `sqlite` option), MikroORM, Sequelize, and the raw `{ tx }` path on
 * better-sqlite3 (async, BEGIN/COMMIT by hand, and `modelSync` in `db.transaction()`; the async one also with an
 * executor that prepares its statement on every call), each as the
 * docs/orms.md and docs/delivery.md recipes write it. The store is in the app's file ('transaction' mode:
 * one more row written per insert, in the same transaction), except for Sequelize, whose driver (sqlite3)
 * must not share a file with the store's (better-sqlite3): the store has a file of its own there
 * ('after-commit' mode: the row is appended after each COMMIT).
 * Rounds are interleaved: each round runs every case, in a rotating order, and within a case the plain and
 * the hooked insert alternate which goes first; each round lasts about the same time for every case.
 * The ratio is the median over rounds of the round's hooked / plain time (drift hits both sides alike).
 * Run alone: npx tsx bench/orm-insert.ts [rounds]
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { createHooks, sqliteStore, sqliteTx, type Hooks } from '../src/index.js';
import { median } from './stats.js';

export interface AdapterCost {
  readonly adapter: string;
  /** How the insert is written, both sides. */
  readonly insert: string;
  /** Where the outbox row goes: in the insert's transaction, or appended after its COMMIT. */
  readonly mode: 'transaction' | 'after-commit';
  readonly inserts: number;
  readonly plainUs: number;
  readonly hookedUs: number;
  /** Median over rounds of hooked / plain. */
  readonly ratio: number;
  /** The same in CPU time of this process, which other processes on a shared machine disturb less. */
  readonly plainCpuUs: number;
  readonly hookedCpuUs: number;
  readonly cpuRatio: number;
}

interface Case {
  readonly adapter: string;
  readonly insert: string;
  readonly mode: AdapterCost['mode'];
  readonly plain: (i: number) => unknown;
  readonly hooked: (i: number) => unknown;
}

const ROUND_MS = 25; // per side and case: long enough to swamp timer noise, short enough to interleave finely
const row = (i: number) => ({ title: `Book ${i}`, ownerId: 'alice' });
const HERE = fileURLToPath(new URL('.', import.meta.url));
const EVENTS = { 'book.added': 'Book.created' } as const;
const BOOKS_SQL = 'create table books (id integer primary key autoincrement, title text not null, "ownerId" text not null)';

/** A store whose dispatcher never runs while measuring: only the write path is timed. */
async function writePathHooks(file: string): Promise<Hooks> {
  const hooks = createHooks({ events: EVENTS, store: sqliteStore(new Database(file)), delivery: { pollInterval: 3_600_000 } });
  await hooks.start();
  await hooks.stop();
  return hooks;
}

/** `prisma generate` offline (no schema engine needed) into `dir`, beside a link to the project's node_modules. */
async function prismaClient(dir: string): Promise<new (options: object) => PrismaLike> {
  symlinkSync(join(HERE, '..', 'node_modules'), join(dir, 'node_modules'), 'dir');
  const output = join(dir, 'generated');
  mkdirSync(output);
  const schema = join(dir, 'schema.prisma');
  writeFileSync(
    schema,
    `generator client {\n  provider = "prisma-client"\n  output = "${output}"\n  moduleFormat = "esm"\n}\n\ndatasource db {\n  provider = "sqlite"\n}\n\n` +
      `model Book {\n  id      Int    @id @default(autoincrement())\n  title   String\n  ownerId String\n  @@map("books")\n}\n`,
  );
  const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
  await promisify(execFile)(process.execPath, [cli, 'generate', '--schema', schema], {
    cwd: dir,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    timeout: 120_000,
  });
  return ((await import(pathToFileURL(join(output, 'client.ts')).href)) as { PrismaClient: new (options: object) => PrismaLike }).PrismaClient;
}
interface PrismaLike {
  book: { create(args: object): Promise<unknown> };
  $transaction<T>(work: (tx: PrismaLike) => Promise<T>): Promise<T>;
  $disconnect(): Promise<void>;
}

/** Sets every ORM up on files in `dir`; returns the cases and what closes them. */
async function setUp(dir: string): Promise<{ cases: Case[]; recorded: () => number; close: () => Promise<void> }> {
  const file = join(dir, 'app.db');
  const connection = new Database(file);
  connection.pragma('journal_mode = WAL');
  connection.exec(BOOKS_SQL);
  const hooks = await writePathHooks(file);
  const closers: Array<() => unknown> = [() => hooks.close(), () => connection.close()];
  const cases: Case[] = [];

  // Raw better-sqlite3, `{ tx }` by hand (docs/delivery.md): a transaction with BEGIN/COMMIT around an awaited trigger.
  const insertBook = connection.prepare('insert into books (title, "ownerId") values (?, ?)');
  const rawCase = (adapter: string, insert: string, tx: (sql: string, params: readonly unknown[]) => unknown): Case => ({
    adapter,
    insert,
    mode: 'transaction',
    plain: async (i) => {
      connection.exec('BEGIN IMMEDIATE');
      insertBook.run(`Book ${i}`, 'alice');
      connection.exec('COMMIT');
    },
    hooked: async (i) => {
      connection.exec('BEGIN IMMEDIATE');
      const { lastInsertRowid } = insertBook.run(`Book ${i}`, 'alice');
      await hooks.model('Book', 'created', { id: Number(lastInsertRowid), ...row(i) }, { tx });
      connection.exec('COMMIT');
    },
  });
  // The recipe's `tx`, statements prepared once per connection; and the executor it replaced, which prepares on every call.
  const tx = sqliteTx(connection);
  const preparingTx = (sql: string, params: readonly unknown[]) => connection.prepare(sql).run(...params);
  cases.push(
    rawCase('raw better-sqlite3, `{ tx }`', 'BEGIN IMMEDIATE; INSERT; `await hooks.model(…, { tx: sqliteTx(db) })`; COMMIT', tx),
    rawCase('raw better-sqlite3, `{ tx }`, prepared on every call', 'the same, with `tx = (sql, params) => db.prepare(sql).run(...params)`', preparingTx),
  );
  const plainTransaction = connection.transaction((i: number) => insertBook.run(`Book ${i}`, 'alice'));
  const hookedTransaction = connection.transaction((i: number) => {
    const { lastInsertRowid } = insertBook.run(`Book ${i}`, 'alice');
    hooks.modelSync('Book', 'created', { id: Number(lastInsertRowid), ...row(i) }, { tx });
  });
  cases.push({
    adapter: 'raw better-sqlite3, `modelSync`',
    insert: '`db.transaction()`: INSERT; `hooks.modelSync(…, { tx: sqliteTx(db) })`',
    mode: 'transaction',
    plain: (i) => plainTransaction(i),
    hooked: (i) => hookedTransaction(i),
  });

  const { drizzle } = await import('drizzle-orm/better-sqlite3');
  const { integer, sqliteTable, text } = await import('drizzle-orm/sqlite-core');
  const { drizzleHooks } = await import('../src/adapters/orm/drizzle-adapter.js');
  const books = sqliteTable('books', { id: integer('id').primaryKey({ autoIncrement: true }), title: text('title').notNull(), ownerId: text('ownerId').notNull() });
  const db = drizzle(connection);
  const rh = await drizzleHooks(db, hooks, { models: { Book: books } });
  cases.push({
    adapter: 'Drizzle',
    insert: '`db.transaction(tx => tx.insert(books).values(…).returning().all())` / `rh.insertSync(db, books, …)`',
    mode: rh.mode,
    plain: (i) => db.transaction((t) => t.insert(books).values(row(i)).returning().all()),
    hooked: (i) => rh.insertSync(db, books, row(i)),
  });

  const { Kysely, SqliteDialect } = await import('kysely');
  const { kyselyHooks } = await import('../src/adapters/orm/kysely-adapter.js');
  interface AppDatabase {
    books: { id: import('kysely').Generated<number>; title: string; ownerId: string };
  }
  const kysely = new Kysely<AppDatabase>({ dialect: new SqliteDialect({ database: connection }) });
  closers.unshift(() => kysely.destroy());
  // `sqlite`: the connection under the dialect, so that the outbox INSERT is prepared once (docs/orms.md); and without it.
  const kh = await kyselyHooks(kysely, hooks, { models: { Book: 'books' }, sqlite: connection });
  const khThroughKysely = await kyselyHooks(kysely, hooks, { models: { Book: 'books' } });
  const kyselyPlain = (i: number) => kysely.transaction().execute((trx) => trx.insertInto('books').values(row(i)).returningAll().execute());
  cases.push(
    {
      adapter: 'Kysely',
      insert: '`db.transaction().execute(trx => trx.insertInto(…).returningAll().execute())` / `kh.execute(db, …)`, `sqlite` option given',
      mode: kh.mode,
      plain: kyselyPlain,
      hooked: (i) => kh.execute(kysely, kysely.insertInto('books').values(row(i)).returningAll()),
    },
    {
      adapter: 'Kysely, without the `sqlite` option',
      insert: 'the same; the outbox INSERT goes through Kysely, which prepares it on every write',
      mode: khThroughKysely.mode,
      plain: kyselyPlain,
      hooked: (i) => khThroughKysely.execute(kysely, kysely.insertInto('books').values(row(i)).returningAll()),
    },
  );

  // TypeORM and MikroORM: two instances on the same file, one without resthooks (a subscriber stays once attached).
  const { DataSource, EntitySchema } = await import('typeorm');
  const { attachTypeorm } = await import('../src/adapters/orm/typeorm-adapter.js');
  const BookEntity = new EntitySchema<{ id: number; title: string; ownerId: string }>({
    name: 'Book',
    tableName: 'books',
    columns: { id: { type: 'integer', primary: true, generated: 'increment' }, title: { type: 'varchar' }, ownerId: { type: 'varchar' } },
  });
  const typeorm = async () => {
    const source = new DataSource({ type: 'better-sqlite3', database: file, entities: [BookEntity], logging: false });
    await source.initialize();
    closers.unshift(() => source.destroy());
    return source;
  };
  const [typeormPlain, typeormHooked] = [await typeorm(), await typeorm()];
  const typeormMode = (await attachTypeorm(typeormHooked, hooks)).mode;
  cases.push({
    adapter: 'TypeORM',
    insert: '`dataSource.transaction(m => m.save(Book, …))`',
    mode: typeormMode,
    plain: (i) => typeormPlain.transaction((m) => m.save(BookEntity, row(i))),
    hooked: (i) => typeormHooked.transaction((m) => m.save(BookEntity, row(i))),
  });

  const { BetterSqliteDriver } = await import('@mikro-orm/better-sqlite');
  const { EntitySchema: MikroSchema, MikroORM } = await import('@mikro-orm/core');
  const { attachMikroOrm } = await import('../src/adapters/orm/mikro-orm-adapter.js');
  const MikroBook = new MikroSchema<{ id: number; title: string; ownerId: string }>({
    name: 'Book',
    tableName: 'books',
    properties: { id: { type: 'number', primary: true, autoincrement: true }, title: { type: 'string' }, ownerId: { type: 'string', fieldName: 'ownerId' } },
  });
  const mikro = async () => {
    const orm = await MikroORM.init({ driver: BetterSqliteDriver, dbName: file, entities: [MikroBook], debug: false });
    closers.unshift(() => orm.close(true));
    return orm;
  };
  const [mikroPlain, mikroHooked] = [await mikro(), await mikro()];
  const mikroMode = (await attachMikroOrm(mikroHooked, hooks)).mode;
  const mikroInsert = (orm: typeof mikroPlain, i: number) => {
    const em = orm.em.fork();
    return em.persistAndFlush(em.create(MikroBook, row(i)));
  };
  cases.push({
    adapter: 'MikroORM',
    insert: '`em.persistAndFlush(em.create(Book, …))` (its own transaction per flush)',
    mode: mikroMode,
    plain: (i) => mikroInsert(mikroPlain, i),
    hooked: (i) => mikroInsert(mikroHooked, i),
  });

  // Prisma: the base client writes without resthooks, the clients withResthooks() returns with it: one on the
  // driver adapter as the app gives it, one on the same adapter wrapped by resthooksAdapter().
  const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
  const { resthooksAdapter, withResthooks } = await import('../src/adapters/orm/prisma-adapter.js');
  const prismaDir = join(dir, 'prisma');
  mkdirSync(prismaDir);
  const PrismaClient = await prismaClient(prismaDir);
  const prismaOn = (adapter: object) => {
    const client = new PrismaClient({ adapter });
    closers.unshift(() => client.$disconnect());
    return client;
  };
  const prisma = prismaOn(new PrismaBetterSqlite3({ url: `file:${file}` }));
  type HookedPrisma = PrismaLike & { $resthooks: { mode: AdapterCost['mode'] } };
  const prismaHooked = (await withResthooks(prismaOn(new PrismaBetterSqlite3({ url: `file:${file}` })) as never, hooks)) as unknown as HookedPrisma;
  const prismaWrapped = (await withResthooks(prismaOn(resthooksAdapter(new PrismaBetterSqlite3({ url: `file:${file}` }))) as never, hooks)) as unknown as HookedPrisma;
  for (const [client, how] of [
    [prismaHooked, ''],
    [prismaWrapped, ', `resthooksAdapter`'],
  ] as const) {
    cases.push({
      adapter: `Prisma, in \`$transaction\`${how}`,
      insert: '`prisma.$transaction(tx => tx.book.create(…))`',
      mode: client.$resthooks.mode,
      plain: (i) => prisma.$transaction((t) => t.book.create({ data: row(i) })),
      hooked: (i) => client.$transaction((t) => t.book.create({ data: row(i) })),
    });
    cases.push({
      adapter: `Prisma, standalone${how}`,
      insert: how ? '`prisma.book.create(…)` (in a driver transaction resthooks holds open for it, with its outbox row)' : '`prisma.book.create(…)` (resthooks runs it in a transaction with its outbox row)',
      mode: client.$resthooks.mode,
      plain: (i) => prisma.book.create({ data: row(i) }),
      hooked: (i) => client.book.create({ data: row(i) }),
    });
  }

  // Sequelize (sqlite3): the app in a file of its own, the store in another ('after-commit').
  const { DataTypes, Sequelize } = await import('sequelize');
  const { attachSequelize } = await import('../src/adapters/orm/sequelize-adapter.js');
  const sequelize = new Sequelize({ dialect: 'sqlite', storage: join(dir, 'sequelize-app.db'), logging: false });
  closers.unshift(() => sequelize.close());
  const SequelizeBook = sequelize.define('Book', { title: DataTypes.STRING, ownerId: DataTypes.STRING }, { tableName: 'books', timestamps: false });
  await sequelize.sync();
  await sequelize.query('pragma journal_mode = wal');
  const sequelizeStore = await writePathHooks(join(dir, 'hooks.db'));
  closers.unshift(() => sequelizeStore.close());
  // Resthooks' hooks are on the instance: the plain side turns them off per call, as Sequelize allows.
  const sequelizeMode = (await attachSequelize(sequelize, sequelizeStore)).mode;
  cases.push({
    adapter: 'Sequelize',
    insert: '`sequelize.transaction(t => Book.create(…, { transaction: t }))`',
    mode: sequelizeMode,
    plain: (i) => sequelize.transaction((transaction) => SequelizeBook.create(row(i), { transaction, hooks: false })),
    hooked: (i) => sequelize.transaction((transaction) => SequelizeBook.create(row(i), { transaction })),
  });

  const stores = [file, join(dir, 'hooks.db')].map((path) => new Database(path, { readonly: true }));
  closers.push(() => stores.forEach((store) => store.close()));
  return {
    cases,
    // Fresh events (the table the trigger writes since migration 0006) and any fanned out.
    recorded: () =>
      stores.reduce((sum, store) => sum + (store.prepare('select (select count(*) from resthooks_outbox) + (select count(*) from resthooks_events) as n').get() as { n: number }).n, 0),
    close: async () => {
      for (const close of closers) await close();
    },
  };
}

/** Measures every adapter's cost in interleaved rounds (see the module comment). */
export async function adapterCosts(rounds = 21, log: (line: string) => void = () => undefined): Promise<AdapterCost[]> {
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-orm-bench-'));
  try {
    const { cases, recorded, close } = await setUp(dir);
    try {
      let next = 0;
      let hookedInserts = 0;
      /** µs per insert over `count` inserts: wall clock and CPU time. */
      const time = async (run: (i: number) => unknown, count: number): Promise<[number, number]> => {
        const cpu = process.cpuUsage();
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) await run(next++);
        const used = process.cpuUsage(cpu);
        if (cases.some((c) => c.hooked === run)) hookedInserts += count;
        return [Number(process.hrtime.bigint() - start) / 1e3 / count, (used.user + used.system) / count];
      };
      // Warm-up, and as many inserts per round as fill ROUND_MS on the hooked side.
      const counts: number[] = [];
      for (const c of cases) {
        await time(c.plain, 200);
        const [us] = await time(c.hooked, 200);
        counts.push(Math.max(20, Math.min(2_000, Math.round((ROUND_MS * 1000) / us))));
      }
      const plain: Array<Array<[number, number]>> = cases.map(() => []);
      const hooked: Array<Array<[number, number]>> = cases.map(() => []);
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < cases.length; k++) {
          const index = (k + round) % cases.length;
          const c = cases[index]!;
          const count = counts[index]!;
          if (round % 2 === 0) {
            plain[index]!.push(await time(c.plain, count));
            hooked[index]!.push(await time(c.hooked, count));
          } else {
            hooked[index]!.push(await time(c.hooked, count));
            plain[index]!.push(await time(c.plain, count));
          }
        }
        log(`  adapters: round ${round + 1} of ${rounds}`);
      }
      // Every hooked insert must have recorded its event, or its ratio means nothing (an after-commit append may lag).
      for (let waited = 0; recorded() !== hookedInserts; waited += 50) {
        if (waited > 10_000) throw new Error(`adapters: ${recorded()} events recorded for ${hookedInserts} inserts with resthooks`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return cases.map((c, index) => {
        const [p, h] = [plain[index]!, hooked[index]!];
        const side = (times: ReadonlyArray<[number, number]>, which: 0 | 1) => median(times.map((t) => t[which]));
        const ratio = (which: 0 | 1) => median(h.map((t, round) => t[which] / p[round]![which]));
        return {
          adapter: c.adapter,
          insert: c.insert,
          mode: c.mode,
          inserts: counts[index]! * rounds,
          plainUs: side(p, 0),
          hookedUs: side(h, 0),
          ratio: ratio(0),
          plainCpuUs: side(p, 1),
          hookedCpuUs: side(h, 1),
          cpuRatio: ratio(1),
        };
      });
    } finally {
      await close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await adapterCosts(Number(process.argv[2] ?? 21), (line) => console.log(line));
  for (const r of rows) {
    console.log(`${r.adapter} (${r.mode}): ${r.plainUs.toFixed(1)} µs plain, ${r.hookedUs.toFixed(1)} µs with resthooks (medians), ratio ${r.ratio.toFixed(2)}× (CPU ${r.cpuRatio.toFixed(2)}×)`);
  }
}
