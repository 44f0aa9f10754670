/**
 * `{ tx }` triggers: the app's row and its outbox row(s) commit together or not at all. Each recipe of
 * docs/delivery.md and docs/orms.md (better-sqlite3, pg, postgres.js, Kysely, TypeORM) runs here as written, against real databases: the
 * outbox write failing (no resthooks tables in the app's database) must abort the app's transaction, on
 * SQLite and on PostgreSQL; the normal path commits both and the event is delivered.
 */
import Database from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { DataSource, EntitySchema } from 'typeorm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutboxWriteError, sqliteTx, type HookInfo, type Hooks, type HostExecutor } from '../src/index.js';
import { ALL_EVENTS, outboxTable } from './support/events.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { testHooks } from './support/hooks.js';
import { startReceiver, verify, type Receiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created', 'book.read': 'Book.read', 'user.logged_in': null } as const;
type AppHooks = Hooks<keyof typeof EVENTS>;

interface Book {
  id: number;
  title: string;
  ownerId: string;
}

// ── the recipes, as the docs show them ─────────────────────────────────────────────────────────────

/** better-sqlite3: its `db.transaction()` cannot await, so BEGIN/COMMIT by hand. */
async function addBookBetterSqlite(db: Database.Database, hooks: AppHooks, book: Book) {
  const tx = sqliteTx(db);
  db.exec('BEGIN IMMEDIATE');
  try {
    db.prepare('insert into books (id, title, owner_id) values (?, ?, ?)').run(book.id, book.title, book.ownerId);
    await hooks.model('Book', 'created', book, { tx });
    db.exec('COMMIT');
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/** pg: one client for the whole transaction. */
async function addBookPg(pool: pg.Pool, hooks: AppHooks, book: Book) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('insert into books (id, title, owner_id) values ($1, $2, $3)', [book.id, book.title, book.ownerId]);
    await hooks.model('Book', 'created', book, { tx: (sql, params) => client.query(sql, [...params]) });
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

/** postgres.js: sql.begin() commits when the callback resolves and rolls back when it throws. */
async function addBookPostgresJs(sql: postgres.Sql, hooks: AppHooks, book: Book) {
  await sql.begin(async (tx) => {
    await tx`insert into books (id, title, owner_id) values (${book.id}, ${book.title}, ${book.ownerId})`;
    await hooks.model('Book', 'created', book, { tx: (text, params) => tx.unsafe(text, params as postgres.ParameterOrJSON<never>[]) });
  });
  hooks.notify();
}

interface AppDatabase {
  books: { id: number; title: string; owner_id: string };
}

/** Kysely: the transaction callback rolls back on any throw. */
async function addBookKysely(db: Kysely<AppDatabase>, hooks: AppHooks, book: Book) {
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('books').values({ id: book.id, title: book.title, owner_id: book.ownerId }).execute();
    await hooks.model('Book', 'created', book, { tx: { execute: (q) => trx.executeQuery(CompiledQuery.raw(q.sql, [...q.parameters])) } });
  });
}

const BookEntity = new EntitySchema<Book>({
  name: 'Book',
  tableName: 'books',
  columns: { id: { type: 'integer', primary: true }, title: { type: 'varchar' }, ownerId: { type: 'varchar', name: 'owner_id' } },
});

/** TypeORM (without resthooks/typeorm, which does this by itself): the transaction's manager runs the statements. */
async function addBookTypeorm(dataSource: DataSource, hooks: AppHooks, book: Book) {
  await dataSource.transaction(async (manager) => {
    await manager.insert(BookEntity, book);
    await hooks.model('Book', 'created', book, { tx: (sql, params) => manager.query(sql, [...params]) });
  });
}

// ── an app's database on either engine ─────────────────────────────────────────────────────────────

type AddBook = (hooks: AppHooks, book: Book) => Promise<void>;

interface AppSide {
  /** How many books are committed. */
  books(): Promise<number>;
  /** How many resthooks events are committed in the app's database (0 when it has no resthooks tables). */
  events(): Promise<number>;
  /** Runs a statement outside any transaction (setup). */
  exec(sql: string): Promise<void>;
  recipes: Record<string, AddBook>;
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function typeormOn(db: TestDatabase): Promise<DataSource> {
  const dataSource =
    db.engine === 'sqlite'
      ? new DataSource({ type: 'better-sqlite3', database: db.url, entities: [BookEntity], prepareDatabase: (raw: Database.Database) => void raw.pragma('busy_timeout = 10000') })
      : new DataSource({ type: 'postgres', url: db.url, entities: [BookEntity], poolSize: 2 });
  await dataSource.initialize();
  closers.push(() => dataSource.destroy());
  return dataSource;
}

async function appSide(db: TestDatabase): Promise<AppSide> {
  if (db.engine === 'sqlite') {
    const raw = new Database(db.url);
    raw.pragma('busy_timeout = 10000');
    const kysely = new Kysely<AppDatabase>({ dialect: new SqliteDialect({ database: new Database(db.url) }) });
    closers.push(() => kysely.destroy(), () => void raw.close());
    const count = (table: string) => (raw.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
    const exec = async (sql: string) => void raw.exec(sql);
    await exec('create table if not exists books (id integer primary key, title text not null, owner_id text not null)');
    const typeorm = await typeormOn(db);
    return {
      books: async () => count('books'),
      events: async () => (raw.prepare("select 1 from sqlite_master where name = 'resthooks_events'").get() ? count(ALL_EVENTS) : 0),
      exec,
      recipes: {
        'better-sqlite3': (hooks, book) => addBookBetterSqlite(raw, hooks, book),
        kysely: (hooks, book) => addBookKysely(kysely, hooks, book),
        typeorm: (hooks, book) => addBookTypeorm(typeorm, hooks, book),
      },
    };
  }
  const pool = db.pool();
  const kysely = new Kysely<AppDatabase>({ dialect: new PostgresDialect({ pool: db.pool() }) });
  closers.push(() => kysely.destroy());
  const count = async (table: string) => Number((await pool.query<{ n: string }>(`select count(*) as n from ${table}`)).rows[0]!.n);
  const exec = async (sql: string) => void (await pool.query(sql));
  await exec('create table if not exists books (id integer primary key, title text not null, owner_id text not null)');
  const typeorm = await typeormOn(db);
  const postgresJs = postgres(db.url, { max: 2, onnotice: () => undefined });
  closers.push(() => postgresJs.end({ timeout: 5 }));
  return {
    books: () => count('books'),
    events: async () => ((await pool.query("select to_regclass('resthooks_events') as t")).rows[0].t ? count('resthooks_events') : 0),
    exec,
    recipes: {
      pg: (hooks, book) => addBookPg(pool, hooks, book),
      'postgres.js': (hooks, book) => addBookPostgresJs(postgresJs, hooks, book),
      kysely: (hooks, book) => addBookKysely(kysely, hooks, book),
      typeorm: (hooks, book) => addBookTypeorm(typeorm, hooks, book),
    },
  };
}

describe.each(ENGINES)('{ tx } recipes on %s', (engine) => {
  let storeDb: TestDatabase;
  let receiver: Receiver;
  beforeEach(async () => {
    storeDb = new TestDatabase(engine);
    await storeDb.init();
    receiver = await startReceiver();
    closers.push(() => storeDb.close(), () => receiver.close());
  });

  async function hooksOn(db: TestDatabase, options: Partial<Parameters<typeof testHooks>[0]> = {}) {
    const t = await testHooks({ events: EVENTS, store: db.dialect(), ...options });
    closers.push(() => t.close());
    return t.hooks as AppHooks;
  }

  it('no resthooks tables in the app\'s database: the trigger throws OutboxWriteError inside the transaction, and neither row commits', async () => {
    const appDb = new TestDatabase(engine); // the store lives in another database: the app's has no outbox
    await appDb.init();
    closers.push(() => appDb.close());
    const app = await appSide(appDb);
    const hooks = await hooksOn(storeDb);
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    for (const [name, addBook] of Object.entries(app.recipes)) {
      const attempt = addBook(hooks, { id: 1, title: `lost with ${name}`, ownerId: 'alice' });
      await expect(attempt, name).rejects.toBeInstanceOf(OutboxWriteError);
      const error = (await attempt.catch((e: unknown) => e)) as OutboxWriteError;
      expect(error).toMatchObject({ code: 'outbox_write_failed', event: 'book.added', message: expect.stringMatching(/roll the transaction back/i) });
      expect(String((error.cause as Error).message)).toMatch(outboxTable(engine));
      expect(await app.books(), name).toBe(0);
    }
    hooks.notify();
    await hooks.idle();
    expect(await hooks.recentEvents('book.added', { owner: 'alice' })).toEqual([]);
    expect(receiver.received).toHaveLength(0);
  });

  it('the normal path commits the app\'s row and its event together, and the event is delivered', async () => {
    const app = await appSide(storeDb); // the app's database holds the store's tables
    const hooks = await hooksOn(storeDb);
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    const names = Object.keys(app.recipes);
    for (const [index, addBook] of Object.values(app.recipes).entries()) await addBook(hooks, { id: index + 1, title: names[index]!, ownerId: 'alice' });
    expect(await app.books()).toBe(names.length);
    expect(await app.events()).toBe(names.length);
    hooks.notify();
    const requests = await receiver.waitFor(names.length);
    expect(requests.map((r) => (verify(subscription.secret, r) as { data: Book }).data.title).sort()).toEqual([...names].sort());
  });

  it('a per-hook payload writes its rows in the transaction: all of them, or a throw and none', async () => {
    const app = await appSide(storeDb);
    const hooks = await hooksOn(storeDb);
    for (const path of ['/a', '/b']) await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url + path });
    const perHook = (book: Book) => Object.assign(book, { serializeHook: (hook: HookInfo) => ({ to: hook.target.slice(-2), title: book.title }) });
    for (const addBook of Object.values(app.recipes)) await addBook(hooks, perHook({ id: 1 + (await app.books()), title: 'each', ownerId: 'alice' }));
    hooks.notify();
    const recipes = Object.keys(app.recipes).length;
    await receiver.waitFor(2 * recipes);
    expect(receiver.received.map((r) => r.json.to).sort()).toEqual(Array.from({ length: recipes }, () => ['/a', '/b']).flat().sort());
    await hooks.idle();

    // The event row is written, then a delivery row fails: the trigger throws, and the rollback takes both.
    const appDb = new TestDatabase(engine);
    await appDb.init();
    closers.push(() => appDb.close());
    await appDb.migrated();
    const partial = await appSide(appDb);
    await partial.exec(engine === 'postgres' ? 'drop table resthooks_deliveries cascade' : 'drop table resthooks_attempts; drop table resthooks_deliveries');
    for (const [name, addBook] of Object.entries(partial.recipes)) {
      const failure = await addBook(hooks, perHook({ id: 1, title: 'half', ownerId: 'alice' })).catch((e: unknown) => e);
      expect(failure, name).toBeInstanceOf(OutboxWriteError);
      expect([await partial.books(), await partial.events()], name).toEqual([0, 0]);
    }
  });
});

if (ENGINES.includes('postgres')) describe('{ tx } recipes on postgres: a COMMIT the database refuses', () => {
  it('takes the outbox row with the app\'s row (nothing delivered); the next transaction is delivered once', async () => {
    const db = new TestDatabase('postgres');
    await db.init();
    const receiver = await startReceiver();
    closers.push(() => db.close(), () => receiver.close());
    const app = await appSide(db);
    const t = await testHooks({ events: EVENTS, store: db.dialect() });
    closers.push(() => t.close());
    const hooks = t.hooks as AppHooks;
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    // Checked only at COMMIT, after the recipe has written its outbox row.
    await app.exec(`create function refuse_book() returns trigger language plpgsql as $$
      begin if new.title like 'refused%' then raise exception 'book refused at commit'; end if; return new; end $$`);
    await app.exec('create constraint trigger refuse_at_commit after insert on books deferrable initially deferred for each row execute function refuse_book()');
    const names = Object.keys(app.recipes);
    for (const [index, addBook] of Object.values(app.recipes).entries()) {
      await expect(addBook(hooks, { id: index + 1, title: `refused ${names[index]}`, ownerId: 'alice' }), names[index]).rejects.toThrow(/book refused at commit/);
      expect([await app.books(), await app.events()], names[index]).toEqual([0, 0]);
    }
    for (const [index, addBook] of Object.values(app.recipes).entries()) await addBook(hooks, { id: index + 1, title: names[index]!, ownerId: 'alice' });
    hooks.notify();
    await receiver.waitFor(names.length);
    await hooks.idle();
    expect(receiver.received.map((r) => (r.json.data as Book).title).sort()).toEqual([...names].sort());
  });
});

describe('{ tx }: what throws and what does not (better-sqlite3)', () => {
  let storeDb: TestDatabase;
  let app: AppSide;
  let raw: Database.Database;
  let hooks: AppHooks;
  beforeEach(async () => {
    storeDb = new TestDatabase('sqlite');
    await storeDb.init();
    closers.push(() => storeDb.close());
    const t = await testHooks({ events: EVENTS, store: storeDb.dialect(), delivery: { maxPayloadBytes: 16 * 1024 }, owner: (b) => {
      if ((b as { ownerId?: unknown }).ownerId === 'throws') throw new Error('owner lookup failed');
      return (b as { ownerId?: string }).ownerId;
    } });
    closers.push(() => t.close());
    hooks = t.hooks as AppHooks;
    app = await appSide(storeDb);
    raw = new Database(storeDb.url);
    raw.pragma('busy_timeout = 10000');
    closers.push(() => void raw.close());
  });

  /** Runs `trigger` inside a better-sqlite3 transaction as the recipe does; returns what it threw. */
  async function inTransaction(trigger: (tx: HostExecutor) => Promise<unknown>): Promise<unknown> {
    const tx: HostExecutor = (sql, params) => raw.prepare(sql).run(...params);
    raw.exec('BEGIN IMMEDIATE');
    try {
      raw.prepare('insert into books (id, title, owner_id) values (?, ?, ?)').run(1 + (await app.books()), 't', 'alice');
      const result = await trigger(tx);
      raw.exec('COMMIT');
      return result;
    } catch (error) {
      if (raw.inTransaction) raw.exec('ROLLBACK');
      return error;
    }
  }

  it('an event that cannot be made is thrown, its cause coded: serialization, size, owner, model, extra', async () => {
    const circular: Record<string, unknown> = { ownerId: 'alice' };
    circular.self = circular;
    const cases: Array<[string, (tx: HostExecutor) => Promise<unknown>, string]> = [
      ['circular', (tx) => hooks.model('Book', 'created', circular, { tx }), 'serialization_failed'],
      ['toJSON throws', (tx) => hooks.model('Book', 'created', { ownerId: 'alice', toJSON: () => { throw new Error('no'); } }, { tx }), 'serialization_failed'],
      ['too large', (tx) => hooks.model('Book', 'created', { ownerId: 'alice', blob: 'x'.repeat(20_000) }, { tx }), 'payload_too_large'],
      ['owner throws', (tx) => hooks.model('Book', 'created', { ownerId: 'throws' }, { tx }), 'owner_failed'],
      ['undefined model', (tx) => hooks.model(undefined as unknown as string, 'created', { ownerId: 'alice' }, { tx }), 'invalid_field'],
      ['undefined instance', (tx) => hooks.model('Book', 'created', undefined as unknown as object, { tx }), 'invalid_field'],
      ['plain object action', (tx) => hooks.action({ ownerId: 'alice' }, 'read', { tx }), 'invalid_field'],
      ['extra.hook', (tx) => hooks.model('Book', 'created', { ownerId: 'alice' }, { tx, extra: { hook: 1 } }), 'invalid_field'],
      ['raw circular', (tx) => hooks.raw('user.logged_in', circular, { owner: 'alice', tx }), 'serialization_failed'],
      ['raw too large', (tx) => hooks.raw('user.logged_in', 'x'.repeat(20_000), { owner: 'alice', tx }), 'payload_too_large'],
      ['serializeHook throws', (tx) => hooks.model('Book', 'created', { ownerId: 'alice', serializeHook: () => { throw new Error('no'); } }, { tx }), 'serialization_failed'],
    ];
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: 'http://127.0.0.1:9/never' });
    for (const [name, trigger, code] of cases) {
      const thrown = await inTransaction(trigger);
      expect(thrown, name).toBeInstanceOf(OutboxWriteError);
      expect((thrown as OutboxWriteError).cause, name).toMatchObject({ code });
    }
    expect([await app.books(), await app.events()]).toEqual([0, 0]);
  });

  it("'ignored' and 'undeliverable' do not throw: nothing to record, or recorded in the transaction", async () => {
    expect(await inTransaction((tx) => hooks.model('Book', 'archived', { ownerId: 'alice' }, { tx }))).toEqual({ status: 'ignored' });
    expect(await inTransaction((tx) => hooks.model('Book', 'created', { title: 'no owner' }, { tx }))).toMatchObject({ status: 'undeliverable' });
    expect(await inTransaction((tx) => hooks.raw('user.logged_in', { who: 'nobody' }, { tx }))).toMatchObject({ status: 'undeliverable' });
    expect([await app.books(), await app.events()]).toEqual([3, 2]);
  });

  it('raw() still throws ValidationError for an undeclared event, with or without tx', async () => {
    // @ts-expect-error an undeclared event fails to compile, and is refused at run time too
    const thrown = await inTransaction((tx) => hooks.raw('no.such.event', {}, { tx }));
    expect(thrown).toMatchObject({ name: 'ValidationError', code: 'unknown_event' });
    expect([await app.books(), await app.events()]).toEqual([0, 0]);
  });
});
