/**
 * One case of bench/orm-insert.ts, set up and run in a child process of its own: only its ORM is loaded,
 * on fresh files, with its own resthooks instance. A case measured beside the others in one process may pay
 * for them too (their heaps in every garbage collection, the type feedback of the trigger code they share,
 * their events in a shared outbox), and none of that is the adapter's.
 *
 * Protocol (IPC): the child sets up, warms both sides up and sends `ready`; then, for each `round`, runs
 * the plain and the hooked side in the order asked and sends their times; on `finish` it checks that every
 * hooked insert recorded its event, closes, and sends `finished`.
 * Run by the parent only: node --import tsx bench/orm-insert-case.ts <case> <dir> [prisma client module]
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { createHooks, sqliteStore, sqliteTx, type Hooks } from '../src/index.js';

export const ORM_CASES = [
  'raw-tx',
  'raw-tx-preparing',
  'raw-sync',
  'drizzle',
  'kysely',
  'kysely-through',
  'typeorm',
  'mikro-orm',
  'prisma-tx',
  'prisma-standalone',
  'prisma-tx-wrapped',
  'prisma-standalone-wrapped',
  'sequelize',
] as const;
/**
 * Run on request only (`npm run bench:orm 7 prisma-tx-floor,prisma-standalone-floor`), not in the adapter table: Prisma's
 * floor through its public API, with no resthooks on the hooked side. In `$transaction`: a no-op query extension, a client
 * `$transaction` that writes an outbox row through the driver transaction Prisma opened before the callback returns.
 * Standalone: a no-op query extension that runs the write between BEGIN (the driver adapter's `startTransaction`) and
 * COMMIT, with the outbox row. The ratio is what any extension doing the same through Prisma's public API pays.
 */
export const PRISMA_FLOOR_CASES = ['prisma-tx-floor', 'prisma-standalone-floor'] as const;
export type OrmCase = (typeof ORM_CASES)[number] | (typeof PRISMA_FLOOR_CASES)[number];

export type Mode = 'transaction' | 'after-commit';
/** Wall-clock and CPU µs per insert over one side of one round. */
export type SideTime = readonly [wallUs: number, cpuUs: number];

export type ToParent =
  | { readonly type: 'ready'; readonly adapter: string; readonly insert: string; readonly mode: Mode; readonly count: number; readonly otherSetup?: string }
  | { readonly type: 'round'; readonly plain: SideTime; readonly hooked: SideTime }
  | { readonly type: 'finished'; readonly error?: string };
export type ToChild = { readonly type: 'round'; readonly hookedFirst: boolean } | { readonly type: 'finish' };

interface CaseSetup {
  readonly adapter: string;
  /** How the insert is written, both sides. */
  readonly insert: string;
  readonly mode: Mode;
  /**
   * Set when the case is not the setup docs/orms.md gives the adapter: what that setup does instead. Such a
   * case is measured beside the adapter's own and is not what its target judges.
   */
  readonly otherSetup?: string;
  readonly plain: (i: number) => unknown;
  readonly hooked: (i: number) => unknown;
  /** Events recorded so far (fresh ones, and any fanned out). */
  readonly recorded: () => number;
  readonly close: () => Promise<void>;
}

// Per side: long enough that one garbage collection, WAL checkpoint or preemption moves a side by a few
// percent, not tens (at 25 ms the CPU ratio of one unchanged case ranged 1.0–2.2× from run to run, at
// 100 ms 1.2–1.6×), and short enough to interleave finely.
const ROUND_MS = 100;
const row = (i: number) => ({ title: `Book ${i}`, ownerId: 'alice' });
const EVENTS = { 'book.added': 'Book.created' } as const;
const BOOKS_SQL = 'create table books (id integer primary key autoincrement, title text not null, "ownerId" text not null)';

/** A store whose dispatcher never runs while measuring: only the write path is timed. */
async function writePathHooks(file: string): Promise<Hooks> {
  const hooks = createHooks({ events: EVENTS, store: sqliteStore(new Database(file)), delivery: { pollInterval: 3_600_000 }, secretStorage: 'plaintext' });
  await hooks.start();
  await hooks.stop();
  return hooks;
}

function countEvents(file: string): () => number {
  const store = new Database(file, { readonly: true });
  const count = store.prepare('select (select count(*) from resthooks_outbox) + (select count(*) from resthooks_events) as n');
  return () => (count.get() as { n: number }).n;
}

/** The app's file (WAL, a `books` table) and a store on the same file ('transaction' mode). */
async function appFile(dir: string): Promise<{ file: string; connection: Database.Database; hooks: Hooks; closers: Array<() => unknown> }> {
  const file = join(dir, 'app.db');
  const connection = new Database(file);
  connection.pragma('journal_mode = WAL');
  connection.exec(BOOKS_SQL);
  const hooks = await writePathHooks(file);
  return { file, connection, hooks, closers: [() => hooks.close(), () => connection.close()] };
}

function finish(closers: ReadonlyArray<() => unknown>): () => Promise<void> {
  return async () => {
    for (const close of closers) await close();
  };
}

/** Raw better-sqlite3, `{ tx }` by hand (docs/delivery.md), or `modelSync` in `db.transaction()`. */
async function raw(dir: string, which: 'raw-tx' | 'raw-tx-preparing' | 'raw-sync'): Promise<CaseSetup> {
  const { file, connection, hooks, closers } = await appFile(dir);
  const insertBook = connection.prepare('insert into books (title, "ownerId") values (?, ?)');
  const common = { mode: 'transaction' as const, recorded: countEvents(file), close: finish(closers) };
  const tx = sqliteTx(connection);
  if (which === 'raw-sync') {
    const plainTransaction = connection.transaction((i: number) => insertBook.run(`Book ${i}`, 'alice'));
    const hookedTransaction = connection.transaction((i: number) => {
      const { lastInsertRowid } = insertBook.run(`Book ${i}`, 'alice');
      hooks.modelSync('Book', 'created', { id: Number(lastInsertRowid), ...row(i) }, { tx });
    });
    return {
      adapter: 'raw better-sqlite3, `modelSync`',
      insert: '`db.transaction()`: INSERT; `hooks.modelSync(…, { tx: sqliteTx(db) })`',
      plain: (i) => plainTransaction(i),
      hooked: (i) => hookedTransaction(i),
      ...common,
    };
  }
  // The recipe's `tx`, statements prepared once per connection; and the executor it replaced, which prepares on every call.
  const executor = which === 'raw-tx' ? tx : (sql: string, params: readonly unknown[]) => connection.prepare(sql).run(...params);
  return {
    adapter: which === 'raw-tx' ? 'raw better-sqlite3, `{ tx }`' : 'raw better-sqlite3, `{ tx }`, prepared on every call',
    insert: which === 'raw-tx' ? 'BEGIN IMMEDIATE; INSERT; `await hooks.model(…, { tx: sqliteTx(db) })`; COMMIT' : 'the same, with `tx = (sql, params) => db.prepare(sql).run(...params)`',
    plain: async (i) => {
      connection.exec('BEGIN IMMEDIATE');
      insertBook.run(`Book ${i}`, 'alice');
      connection.exec('COMMIT');
    },
    hooked: async (i) => {
      connection.exec('BEGIN IMMEDIATE');
      const { lastInsertRowid } = insertBook.run(`Book ${i}`, 'alice');
      await hooks.model('Book', 'created', { id: Number(lastInsertRowid), ...row(i) }, { tx: executor });
      connection.exec('COMMIT');
    },
    ...common,
  };
}

async function drizzleCase(dir: string): Promise<CaseSetup> {
  const { file, connection, hooks, closers } = await appFile(dir);
  const { drizzle } = await import('drizzle-orm/better-sqlite3');
  const { integer, sqliteTable, text } = await import('drizzle-orm/sqlite-core');
  const { drizzleHooks } = await import('../src/adapters/orm/drizzle-adapter.js');
  const books = sqliteTable('books', { id: integer('id').primaryKey({ autoIncrement: true }), title: text('title').notNull(), ownerId: text('ownerId').notNull() });
  const db = drizzle(connection);
  const rh = await drizzleHooks(db, hooks, { models: { Book: books } });
  return {
    adapter: 'Drizzle',
    insert: '`db.transaction(tx => tx.insert(books).values(…).returning().all())` / `rh.insertSync(db, books, …)`',
    mode: rh.mode,
    plain: (i) => db.transaction((t) => t.insert(books).values(row(i)).returning().all()),
    hooked: (i) => rh.insertSync(db, books, row(i)),
    recorded: countEvents(file),
    close: finish(closers),
  };
}

async function kyselyCase(dir: string, direct: boolean): Promise<CaseSetup> {
  const { file, connection, hooks, closers } = await appFile(dir);
  const { Kysely, SqliteDialect } = await import('kysely');
  const { kyselyHooks } = await import('../src/adapters/orm/kysely-adapter.js');
  interface AppDatabase {
    books: { id: import('kysely').Generated<number>; title: string; ownerId: string };
  }
  const kysely = new Kysely<AppDatabase>({ dialect: new SqliteDialect({ database: connection }) });
  closers.unshift(() => kysely.destroy());
  // `sqlite`: the connection under the dialect, so that the outbox INSERT is prepared once (docs/orms.md); and without it.
  const kh = await kyselyHooks(kysely, hooks, direct ? { models: { Book: 'books' }, sqlite: connection } : { models: { Book: 'books' } });
  return {
    adapter: direct ? 'Kysely' : 'Kysely, without the `sqlite` option',
    insert: direct
      ? '`db.transaction().execute(trx => trx.insertInto(…).returningAll().execute())` / `kh.execute(db, …)`, `sqlite` option given'
      : 'the same; the outbox INSERT goes through Kysely, which prepares it on every write',
    ...(direct ? {} : { otherSetup: 'docs/orms.md gives `kyselyHooks` the `sqlite` option on SQLite, and a warning asks for it where it is missing; with it the outbox INSERT is prepared once per connection' }),
    mode: kh.mode,
    plain: (i) => kysely.transaction().execute((trx) => trx.insertInto('books').values(row(i)).returningAll().execute()),
    hooked: (i) => kh.execute(kysely, kysely.insertInto('books').values(row(i)).returningAll()),
    recorded: countEvents(file),
    close: finish(closers),
  };
}

/** TypeORM: two data sources on the same file, one without resthooks (a subscriber stays once attached). */
async function typeormCase(dir: string): Promise<CaseSetup> {
  const { file, hooks, closers } = await appFile(dir);
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
  const [plain, hooked] = [await typeorm(), await typeorm()];
  const mode = (await attachTypeorm(hooked, hooks)).mode;
  return {
    adapter: 'TypeORM',
    insert: '`dataSource.transaction(m => m.save(Book, …))`',
    mode,
    plain: (i) => plain.transaction((m) => m.save(BookEntity, row(i))),
    hooked: (i) => hooked.transaction((m) => m.save(BookEntity, row(i))),
    recorded: countEvents(file),
    close: finish(closers),
  };
}

async function mikroOrmCase(dir: string): Promise<CaseSetup> {
  const { file, hooks, closers } = await appFile(dir);
  const { BetterSqliteDriver } = await import('@mikro-orm/better-sqlite');
  const { EntitySchema, MikroORM } = await import('@mikro-orm/core');
  const { attachMikroOrm } = await import('../src/adapters/orm/mikro-orm-adapter.js');
  const MikroBook = new EntitySchema<{ id: number; title: string; ownerId: string }>({
    name: 'Book',
    tableName: 'books',
    properties: { id: { type: 'number', primary: true, autoincrement: true }, title: { type: 'string' }, ownerId: { type: 'string', fieldName: 'ownerId' } },
  });
  const mikro = async () => {
    const orm = await MikroORM.init({ driver: BetterSqliteDriver, dbName: file, entities: [MikroBook], debug: false });
    closers.unshift(() => orm.close(true));
    return orm;
  };
  const [plain, hooked] = [await mikro(), await mikro()];
  const mode = (await attachMikroOrm(hooked, hooks)).mode;
  const insert = (orm: typeof plain, i: number) => {
    const em = orm.em.fork();
    return em.persistAndFlush(em.create(MikroBook, row(i)));
  };
  return {
    adapter: 'MikroORM',
    insert: '`em.persistAndFlush(em.create(Book, …))` (its own transaction per flush)',
    mode,
    plain: (i) => insert(plain, i),
    hooked: (i) => insert(hooked, i),
    recorded: countEvents(file),
    close: finish(closers),
  };
}

interface PrismaLike {
  book: { create(args: object): Promise<unknown> };
  $transaction<T>(work: (tx: PrismaLike) => Promise<T>): Promise<T>;
  $disconnect(): Promise<void>;
}

/**
 * Prisma: the base client writes without resthooks, the client withResthooks() returns with it, on the
 * driver adapter as the app gives it or wrapped by resthooksAdapter(). `client`: the generated client's module.
 */
async function prismaCase(dir: string, which: 'prisma-tx' | 'prisma-standalone' | 'prisma-tx-wrapped' | 'prisma-standalone-wrapped', client: string): Promise<CaseSetup> {
  const { file, hooks, closers } = await appFile(dir);
  const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
  const { resthooksAdapter, withResthooks } = await import('../src/adapters/orm/prisma-adapter.js');
  const { PrismaClient } = (await import(pathToFileURL(client).href)) as { PrismaClient: new (options: object) => PrismaLike };
  const prismaOn = (adapter: object) => {
    const prisma = new PrismaClient({ adapter });
    closers.unshift(() => prisma.$disconnect());
    return prisma;
  };
  const wrapped = which.endsWith('-wrapped');
  const plain = prismaOn(new PrismaBetterSqlite3({ url: `file:${file}` }));
  const driver = new PrismaBetterSqlite3({ url: `file:${file}` });
  const hooked = (await withResthooks(prismaOn(wrapped ? resthooksAdapter(driver) : driver) as never, hooks)) as unknown as PrismaLike & { $resthooks: { mode: Mode } };
  const how = wrapped ? ', `resthooksAdapter`' : '';
  const common = {
    mode: hooked.$resthooks.mode,
    recorded: countEvents(file),
    close: finish(closers),
    ...(wrapped ? {} : { otherSetup: 'docs/orms.md wraps the driver adapter with `resthooksAdapter()`; without it the outbox row goes through `$executeRawUnsafe`, and a standalone write through an interactive `$transaction`, whose own costs are measured below' }),
  };
  if (which.startsWith('prisma-tx')) {
    return {
      adapter: `Prisma, in \`$transaction\`${how}`,
      insert: '`prisma.$transaction(tx => tx.book.create(…))`',
      plain: (i) => plain.$transaction((t) => t.book.create({ data: row(i) })),
      hooked: (i) => hooked.$transaction((t) => t.book.create({ data: row(i) })),
      ...common,
    };
  }
  return {
    adapter: `Prisma, standalone${how}`,
    insert: wrapped ? '`prisma.book.create(…)` (in a driver transaction resthooks holds open for it, with its outbox row)' : '`prisma.book.create(…)` (resthooks runs it in a transaction with its outbox row)',
    plain: (i) => plain.book.create({ data: row(i) }),
    hooked: (i) => hooked.book.create({ data: row(i) }),
    ...common,
  };
}

/** See PRISMA_FLOOR_CASES. The outbox row is the one `hooks.model()` writes for this insert, in the store's own table. */
async function prismaFloorCase(dir: string, which: 'prisma-tx-floor' | 'prisma-standalone-floor', client: string): Promise<CaseSetup> {
  const { file, closers } = await appFile(dir);
  const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
  type Query = { args: object; query(args: object): Promise<object> };
  type DriverQuery = { sql: string; args: unknown[]; argTypes: Array<{ scalarType: string; arity: 'scalar' }> };
  type DriverTransaction = { executeRaw(query: DriverQuery): Promise<number>; commit(): Promise<void> };
  type DriverAdapter = { startTransaction(): Promise<DriverTransaction> };
  type Extendable = PrismaLike & { $extends(extension: object): Extendable; $queryRawUnsafe(sql: string): Promise<unknown> };
  const { PrismaClient } = (await import(pathToFileURL(client).href)) as { PrismaClient: new (options: object) => Extendable };
  // The driver adapter Prisma connects, and the transaction it opens last (one insert at a time here).
  let adapter: DriverAdapter | undefined;
  let opened: DriverTransaction | undefined;
  const factory = new PrismaBetterSqlite3({ url: `file:${file}` });
  const watched = {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => {
      const connected = (await factory.connect()) as unknown as DriverAdapter;
      adapter = connected;
      return new Proxy(connected, {
        get(target, key) {
          if (key === 'startTransaction') return async () => (opened = await target.startTransaction());
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  };
  const base = new PrismaClient({ adapter: watched });
  closers.unshift(() => base.$disconnect());
  await base.$queryRawUnsafe('SELECT 1');
  const plain = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) });
  closers.unshift(() => plain.$disconnect());
  let next = 0;
  const outboxRow = (row: object): DriverQuery => {
    const args = [`evt_floor_${next++}`, 'book.added', 'Book', 'created', 'alice', 0, JSON.stringify(row), null, Date.now()];
    const sql = 'insert into "resthooks_outbox" ("id", "name", "model", "action", "owner", "all_owners", "data", "body", "created_at") values (?, ?, ?, ?, ?, ?, ?, ?, ?)';
    return { sql, args, argTypes: args.map(() => ({ scalarType: 'unknown', arity: 'scalar' as const })) };
  };
  const common = { mode: 'transaction' as const, recorded: countEvents(file), close: finish(closers) };
  if (which === 'prisma-tx-floor') {
    const original = base.$transaction;
    const hooked = base
      .$extends({
        client: {
          $transaction(this: PrismaLike, work: (tx: PrismaLike) => Promise<object>) {
            return original.call(this, async (tx: PrismaLike) => {
              const row = await work(tx);
              await opened!.executeRaw(outboxRow(row));
              return row;
            });
          },
        },
      })
      .$extends({ query: { $allModels: { $allOperations: ({ args, query }: Query) => query(args) } } });
    return {
      adapter: "Prisma's floor, in `$transaction`",
      insert: 'no resthooks: a no-op query extension, and a client `$transaction` that writes the outbox row through the driver transaction',
      plain: (i) => plain.$transaction((t) => t.book.create({ data: row(i) })),
      hooked: (i) => hooked.$transaction((t) => t.book.create({ data: row(i) })),
      ...common,
    };
  }
  const hooked = base.$extends({
    query: {
      $allModels: {
        async $allOperations({ args, query }: Query) {
          // SQLite: the driver adapter's one connection runs the write inside the BEGIN it has just sent.
          const transaction = await adapter!.startTransaction();
          const written = await query(args);
          await transaction.executeRaw(outboxRow(written));
          await transaction.executeRaw({ sql: 'COMMIT', args: [], argTypes: [] });
          await transaction.commit();
          return written;
        },
      },
    },
  });
  return {
    adapter: "Prisma's floor, standalone",
    insert: 'no resthooks: a no-op query extension runs the create between BEGIN and COMMIT with the outbox row, on the driver adapter',
    plain: (i) => plain.book.create({ data: row(i) }),
    hooked: (i) => hooked.book.create({ data: row(i) }),
    ...common,
  };
}

/** Sequelize (sqlite3): the app in a file of its own, the store in another ('after-commit'). */
async function sequelizeCase(dir: string): Promise<CaseSetup> {
  const { DataTypes, Sequelize } = await import('sequelize');
  const { attachSequelize } = await import('../src/adapters/orm/sequelize-adapter.js');
  const sequelize = new Sequelize({ dialect: 'sqlite', storage: join(dir, 'sequelize-app.db'), logging: false });
  const Book = sequelize.define('Book', { title: DataTypes.STRING, ownerId: DataTypes.STRING }, { tableName: 'books', timestamps: false });
  await sequelize.sync();
  await sequelize.query('pragma journal_mode = wal');
  const storeFile = join(dir, 'hooks.db');
  const hooks = await writePathHooks(storeFile);
  // Resthooks' hooks are on the instance: the plain side turns them off per call, as Sequelize allows.
  const mode = (await attachSequelize(sequelize, hooks)).mode;
  return {
    adapter: 'Sequelize',
    insert: '`sequelize.transaction(t => Book.create(…, { transaction: t }))`',
    mode,
    plain: (i) => sequelize.transaction((transaction) => Book.create(row(i), { transaction, hooks: false })),
    hooked: (i) => sequelize.transaction((transaction) => Book.create(row(i), { transaction })),
    recorded: countEvents(storeFile),
    close: finish([() => sequelize.close(), () => hooks.close()]),
  };
}

export async function setUpCase(name: OrmCase, dir: string, prismaClientModule?: string): Promise<CaseSetup> {
  mkdirSync(dir, { recursive: true });
  switch (name) {
    case 'raw-tx':
    case 'raw-tx-preparing':
    case 'raw-sync':
      return raw(dir, name);
    case 'drizzle':
      return drizzleCase(dir);
    case 'kysely':
    case 'kysely-through':
      return kyselyCase(dir, name === 'kysely');
    case 'typeorm':
      return typeormCase(dir);
    case 'mikro-orm':
      return mikroOrmCase(dir);
    case 'prisma-tx':
    case 'prisma-standalone':
    case 'prisma-tx-wrapped':
    case 'prisma-standalone-wrapped':
      if (!prismaClientModule) throw new Error(`${name} needs the generated Prisma client`);
      return prismaCase(dir, name, prismaClientModule);
    case 'prisma-tx-floor':
    case 'prisma-standalone-floor':
      if (!prismaClientModule) throw new Error(`${name} needs the generated Prisma client`);
      return prismaFloorCase(dir, name, prismaClientModule);
    case 'sequelize':
      return sequelizeCase(dir);
  }
  throw new Error(`No bench case ${String(name)}; the cases: ${ORM_CASES.join(', ')}`);
}

/** Runs one case under the parent's orders (see the module comment). */
async function serve(name: OrmCase, dir: string, prismaClientModule: string | undefined): Promise<void> {
  const send = (message: ToParent) => new Promise<void>((resolve, reject) => process.send!(message, (error: Error | null) => (error ? reject(error) : resolve())));
  const setup = await setUpCase(name, dir, prismaClientModule);
  let next = 0;
  let hookedInserts = 0;
  const time = async (run: (i: number) => unknown, count: number): Promise<SideTime> => {
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await run(next++);
    const used = process.cpuUsage(cpu);
    return [Number(process.hrtime.bigint() - start) / 1e3 / count, (used.user + used.system) / count];
  };
  const hooked = async (count: number) => {
    hookedInserts += count;
    return time(setup.hooked, count);
  };
  // Warm-up, and as many inserts per round as fill ROUND_MS on the hooked side.
  await time(setup.plain, 200);
  const [warmUs] = await hooked(200);
  const count = Math.max(20, Math.min(10_000, Math.round((ROUND_MS * 1000) / warmUs)));
  process.on('message', (message: ToChild) => {
    void (async () => {
      if (message.type === 'round') {
        if (message.hookedFirst) {
          const h = await hooked(count);
          await send({ type: 'round', plain: await time(setup.plain, count), hooked: h });
        } else {
          const p = await time(setup.plain, count);
          await send({ type: 'round', plain: p, hooked: await hooked(count) });
        }
        return;
      }
      let error: string | undefined;
      // Every hooked insert must have recorded its event, or its ratio means nothing (an after-commit append may lag).
      for (let waited = 0; setup.recorded() !== hookedInserts; waited += 50) {
        if (waited > 10_000) {
          error = `${setup.adapter}: ${setup.recorded()} events recorded for ${hookedInserts} inserts with resthooks`;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await setup.close();
      await send(error === undefined ? { type: 'finished' } : { type: 'finished', error });
      process.disconnect();
    })().catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
  await send({ type: 'ready', adapter: setup.adapter, insert: setup.insert, mode: setup.mode, count, ...(setup.otherSetup === undefined ? {} : { otherSetup: setup.otherSetup }) });
}

if (process.send && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [name, dir, prismaClientModule] = process.argv.slice(2) as [OrmCase, string, string | undefined];
  await serve(name, dir, prismaClientModule).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
