/**
 * resthooks/drizzle on real databases. The ORM conformance suite runs on PostgreSQL (node-postgres)
 * and on SQLite through Drizzle's asynchronous SQLite session (sqlite-proxy over a better-sqlite3
 * file: the path libsql, D1 and other async SQLite drivers take). better-sqlite3's own Drizzle driver
 * cannot run the suite: its transactions are synchronous, and the suite's transaction callback awaits.
 * What that driver does is tested on its own below (the …Sync helpers). The resthooks store is always
 * in the app's database: the helpers write the outbox row in the app's transaction.
 */
import Database from 'better-sqlite3';
import { eq, sql } from 'drizzle-orm';
import { drizzle as drizzleSqlite, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { integer as pgInteger, pgTable, serial, text as pgText } from 'drizzle-orm/pg-core';
import { drizzle as drizzleProxy, type SqliteRemoteDatabase } from 'drizzle-orm/sqlite-proxy';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { afterEach, describe, expect, it } from 'vitest';
import { drizzleHooks, type DrizzleHooks, type DrizzleHooksOptions } from '../../src/adapters/orm/drizzle-adapter.js';
import { OutboxWriteError, sqliteStore, type Hooks } from '../../src/index.js';
import { BOOK_EVENTS, ormAdapterSuite, type BookWriter, type OrmAdapterHarness } from '../orm-adapter.suite.js';
import { TestDatabase, type Engine } from '../support/database.js';
import { testHooks, tempDir } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { closedAfterEach, openAll, ROLLBACK, rolledBack, settleDelivery, sleep } from '../support/orm-harness.js';
import { ALL_EVENTS, outboxTable } from '../support/events.js';

const pgBooks = pgTable('books', {
  id: serial('id').primaryKey(),
  title: pgText('title').notNull(),
  pages: pgInteger('pages').notNull(),
  ownerId: pgText('ownerId').notNull(),
});
const pgShelves = pgTable('shelves', { id: serial('id').primaryKey(), name: pgText('name').notNull() });
const pgNotes = pgTable('notes', { id: serial('id').primaryKey(), text: pgText('text').notNull(), ownerId: pgText('ownerId').notNull() });

const sqliteBooks = sqliteTable('books', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  title: text('title').notNull(),
  pages: integer('pages').notNull(),
  ownerId: text('ownerId').notNull(),
});
const sqliteShelves = sqliteTable('shelves', { id: integer('id').primaryKey({ autoIncrement: true }), name: text('name').notNull() });
const sqliteNotes = sqliteTable('notes', { id: integer('id').primaryKey({ autoIncrement: true }), text: text('text').notNull(), ownerId: text('ownerId').notNull() });

/** `Book` by an explicit name; `notes` by its table name; `shelves` is no model. */
const EVENTS = { ...BOOK_EVENTS, 'note.added': 'notes.created' } as const;
type EventName = keyof typeof EVENTS;

const SCHEMA = {
  sqlite: [
    'create table books (id integer primary key autoincrement, title text not null, pages integer not null, "ownerId" text not null)',
    'create table shelves (id integer primary key autoincrement, name text not null)',
    'create table notes (id integer primary key autoincrement, text text not null, "ownerId" text not null)',
  ],
  postgres: [
    'create table books (id serial primary key, title text not null, pages integer not null, "ownerId" text not null)',
    'create table shelves (id serial primary key, name text not null)',
    'create table notes (id serial primary key, text text not null, "ownerId" text not null)',
  ],
};

/** The app's asynchronous Drizzle database: node-postgres, or sqlite-proxy over its own better-sqlite3 connection. */
type AsyncDb = NodePgDatabase | SqliteRemoteDatabase;

interface Env {
  engine: Engine;
  db: AsyncDb;
  books: typeof pgBooks | typeof sqliteBooks;
  shelves: typeof pgShelves | typeof sqliteShelves;
  notes: typeof pgNotes | typeof sqliteNotes;
  hooks: Hooks<EventName>;
  rh: DrizzleHooks;
  receiver: Receiver;
  /** A statement on the app's database, outside any transaction. */
  query(text: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** 'app': the resthooks tables live in the app's database; 'separate': in another SQLite file. */
type StorePlace = 'app' | 'separate';

async function makeEnv(engine: Engine, options: DrizzleHooksOptions = {}, place: StorePlace = 'app'): Promise<Env> {
  return openAll(async (closers, close) => {
    const database = new TestDatabase(engine);
    await database.init();
    closers.push(() => database.close());
    let db: AsyncDb;
    let query: Env['query'];
    if (engine === 'postgres') {
      const pool = database.pool({ max: 5 });
      db = drizzlePg(pool);
      query = async (text) => (await pool.query(text)).rows as Array<Record<string, unknown>>;
    } else {
      const connection = new Database(database.url);
      closers.push(() => void connection.close());
      db = drizzleProxy(async (text, params, method) => {
        const statement = connection.prepare(text);
        if (!statement.reader) {
          statement.run(...params);
          return { rows: [] };
        }
        const rows = statement.raw().all(...params) as unknown[];
        return { rows: method === 'get' ? (rows[0] as unknown[]) : rows };
      });
      query = async (text) => {
        const statement = connection.prepare(text);
        if (statement.reader) return statement.all() as Array<Record<string, unknown>>;
        statement.run();
        return [];
      };
    }
    for (const statement of SCHEMA[engine]) await query(statement);
    // A separate store is testHooks' own temp SQLite file.
    const store = place === 'app' ? database.dialect({}, { max: 5 }) : undefined;
    const { hooks, close: closeHooks } = await testHooks({ events: EVENTS, store });
    closers.push(closeHooks);
    const books = engine === 'postgres' ? pgBooks : sqliteBooks;
    const rh = await drizzleHooks(db, hooks, { models: { Book: books }, ...options });
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    const shelves = engine === 'postgres' ? pgShelves : sqliteShelves;
    const notes = engine === 'postgres' ? pgNotes : sqliteNotes;
    return { engine, db, books, shelves, notes, hooks, rh, receiver, query, close };
  });
}

// The helpers take either dialect's table; the tests write through whichever the engine has.
type AnyDb = Parameters<DrizzleHooks['insert']>[0];

/** The transaction (or database) each writer writes through, for the harness's savepoints. */
const writerDb = new WeakMap<BookWriter, AnyDb>();

function bookWriter(env: Env, db: AnyDb): BookWriter {
  const books = env.books as typeof sqliteBooks;
  const writer: BookWriter = {
    async create(book) {
      const [row] = await env.rh.insert(db, books, book);
      return row!;
    },
    async update(id, patch) {
      await env.rh.update(db, books, patch, eq(books.id, id));
    },
    async remove(id) {
      await env.rh.delete(db, books, eq(books.id, id));
    },
  };
  writerDb.set(writer, db);
  return writer;
}

/** `work` in `rh.transaction(db)`: a transaction, or a savepoint when `db` is one; rolled back when asked. */
async function inTransaction(env: Env, db: AnyDb, work: (books: BookWriter) => Promise<void>, rollback: boolean): Promise<void> {
  await rolledBack(
    env.rh.transaction(db as SqliteRemoteDatabase, async (tx) => {
      await work(bookWriter(env, tx));
      if (rollback) throw ROLLBACK;
    }),
  );
}

function harness(engine: Engine, place: StorePlace) {
  return async (): Promise<OrmAdapterHarness> => {
    const env = await makeEnv(engine, {}, place);
    return {
      hooks: env.hooks,
      receiver: env.receiver,
      engine,
      mode: env.rh.mode,
      transaction: (work, { rollback = false } = {}) => inTransaction(env, env.db, work, rollback),
      outside: bookWriter(env, env.db),
      query: env.query,
      async writeUnmapped({ transaction }) {
        const shelves = env.shelves as typeof sqliteShelves;
        if (transaction) await env.rh.transaction(env.db as SqliteRemoteDatabase, (tx) => env.rh.insert(tx, shelves, { name: 'Sci-fi' }));
        else await env.rh.insert(env.db, shelves, { name: 'Sci-fi' });
      },
      savepoint: (outer, work, { rollback = false } = {}) => inTransaction(env, writerDb.get(outer)!, work, rollback),
      close: env.close,
    };
  };
}

const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];
for (const engine of ENGINES) {
  // Drizzle commits only after the transaction callback returns, and resthooks writes inside it: no commit race.
  ormAdapterSuite(`Drizzle on ${engine}, store in the app's database`, harness(engine, 'app'), { mode: 'transaction', savepoints: true, commitRace: false });
  ormAdapterSuite(`Drizzle on ${engine}, store in a separate SQLite file`, harness(engine, 'separate'), { mode: 'after-commit', savepoints: true, commitRace: false });
}

for (const engine of ENGINES) {
  describe(`resthooks/drizzle on ${engine}`, () => {
    const open = closedAfterEach((options?: DrizzleHooksOptions, place?: StorePlace) => makeEnv(engine, options, place));
    const subscribe = (env: Env, event: EventName, owner = 'alice') => env.hooks.subscriptions.create({ owner, event, target: `${env.receiver.url}/${owner}` });
    const outboxNames = async (env: Env) => (await env.query(`select name from ${ALL_EVENTS} order by created_at, id`)).map((r) => r.name);
    const titles = async (env: Env) => (await env.query('select title from books order by id')).map((r) => r.title);
    /** Waits until nothing is left to deliver, then a little more for a late, wrong delivery. */
    const settle = (env: Env) => settleDelivery(env.hooks);

    it("outbox 'auto' picks 'transaction' when the store is the app's database, 'after-commit' otherwise; the probe leaves no row", async () => {
      const env = await open();
      expect(env.rh.mode).toBe('transaction');
      expect((await open({}, 'separate')).rh.mode).toBe('after-commit');
      expect((await open({ outbox: 'after-commit' })).rh.mode).toBe('after-commit');
      expect(await outboxNames(env)).toEqual([]);
    });

    it("'after-commit': a write in a transaction resthooks did not open is refused before it runs (its commit would go unseen)", async () => {
      const env = await open({}, 'separate');
      await subscribe(env, 'book.added');
      const books = env.books as typeof sqliteBooks;
      const db = env.db as SqliteRemoteDatabase;
      await expect(db.transaction((tx) => env.rh.insert(tx, books, { title: 'Unseen', pages: 1, ownerId: 'alice' }))).rejects.toThrow(/open the transaction with its transaction\(\) helper/);
      expect(await titles(env)).toEqual([]);
      // Opened through the helper, it fires after the commit.
      await env.rh.transaction(db, (tx) => env.rh.insert(tx, books, { title: 'Seen', pages: 1, ownerId: 'alice' }));
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json.data.title).toBe('Seen');
    });

    it("the outbox row is written in the app's transaction: visible inside it, gone with its rollback", async () => {
      const env = await open();
      await subscribe(env, 'book.added');
      const books = env.books as typeof sqliteBooks;
      const db = env.db as SqliteRemoteDatabase;
      await expect(
        env.rh.transaction(db, async (tx) => {
          await env.rh.insert(tx, books, { title: 'Dune', pages: 1, ownerId: 'alice' });
          const select = sql.raw(`select name from ${ALL_EVENTS}`);
          // sqlite-proxy hands raw rows back as the callback returns them: arrays of values.
          const inside =
            engine === 'sqlite'
              ? (await tx.all<[string]>(select)).map((r) => r[0])
              : (await (tx as unknown as Pick<NodePgDatabase, 'execute'>).execute<{ name: string }>(select)).rows.map((r) => r.name);
          expect(inside).toEqual(['book.added']);
          throw ROLLBACK;
        }),
      ).rejects.toBe(ROLLBACK);
      expect(await outboxNames(env)).toEqual([]);
      expect(await titles(env)).toEqual([]);
    });

    it('updated carries the keys of `set` as changes; changes: false leaves the plain envelope', async () => {
      for (const changes of [true, false]) {
        const env = await open({ changes });
        await subscribe(env, 'book.changed');
        const books = env.books as typeof sqliteBooks;
        const db = env.db as SqliteRemoteDatabase;
        const [book] = await env.rh.insert(db, books, { title: 'Dune', pages: 412, ownerId: 'alice' });
        // An undefined value is no change (Drizzle leaves that column out of the SET).
        await env.rh.update(db, books, { title: 'Dune Messiah', pages: sql`${books.pages} - 156`, ownerId: undefined }, eq(books.id, book!.id));
        const [request] = await env.receiver.waitFor(1);
        expect(request!.json.data).toEqual({ id: book!.id, title: 'Dune Messiah', pages: 256, ownerId: 'alice' });
        if (changes) expect(request!.json.changes).toEqual(['title', 'pages']);
        else expect(Object.keys(request!.json)).toEqual(['hook', 'data']);
      }
    });

    it('one event per row written: a multi-row insert, an update and a delete of several rows', async () => {
      const env = await open();
      for (const event of ['book.added', 'book.changed', 'book.removed'] as const) await subscribe(env, event);
      const books = env.books as typeof sqliteBooks;
      const db = env.db as SqliteRemoteDatabase;
      await env.rh.transaction(db, async (tx) => {
        const rows = await env.rh.insert(tx, books, [
          { title: 'A', pages: 1, ownerId: 'alice' },
          { title: 'B', pages: 2, ownerId: 'alice' },
        ]);
        expect(rows.map((r) => r.title)).toEqual(['A', 'B']);
        await env.rh.update(tx, books, { pages: 10 }, eq(books.ownerId, 'alice'));
        expect(await env.rh.delete(tx, books, undefined)).toHaveLength(2);
      });
      await env.receiver.waitFor(6);
      await settle(env);
      expect(env.receiver.received.map((r) => `${r.json.hook.event} ${r.json.data.title} ${r.json.data.pages}`).sort()).toEqual([
        'book.added A 1',
        'book.added B 2',
        'book.changed A 10',
        'book.changed B 10',
        'book.removed A 10',
        'book.removed B 10',
      ]);
    });

    it('a rolled-back savepoint (nested transaction) drops only its own events; the outer transaction still fires', async () => {
      const env = await open();
      await subscribe(env, 'book.added');
      const books = env.books as typeof sqliteBooks;
      await env.rh.transaction(env.db as SqliteRemoteDatabase, async (tx) => {
        await env.rh.insert(tx, books, { title: 'Outer', pages: 1, ownerId: 'alice' });
        await expect(
          tx.transaction(async (savepoint) => {
            await env.rh.insert(savepoint, books, { title: 'Inner, rolled back', pages: 2, ownerId: 'alice' });
            throw ROLLBACK;
          }),
        ).rejects.toBe(ROLLBACK);
        await tx.transaction(async (savepoint) => void (await env.rh.insert(savepoint, books, { title: 'Inner, released', pages: 3, ownerId: 'alice' })));
      });
      await env.receiver.waitFor(2);
      await settle(env);
      expect(env.receiver.received.map((r) => r.json.data.title).sort()).toEqual(['Inner, released', 'Outer']);
      expect(await titles(env)).toEqual(['Outer', 'Inner, released']);
    });

    it('an outbox row the database refuses fails the helper with OutboxWriteError and the transaction keeps nothing', async () => {
      const env = await open();
      await subscribe(env, 'book.added');
      if (engine === 'sqlite') {
        await env.query(`create trigger refuse_outbox before insert on ${outboxTable('sqlite')} when new.data like '%Poison%' begin select raise(abort, 'outbox refused'); end`);
      } else {
        await env.query(`create function refuse_outbox() returns trigger language plpgsql as $$ begin if new.data like '%Poison%' then raise exception 'outbox refused'; end if; return new; end $$`);
        await env.query('create trigger refuse_outbox before insert on resthooks_events for each row execute function refuse_outbox()');
      }
      const books = env.books as typeof sqliteBooks;
      const db = env.db as SqliteRemoteDatabase;
      const inTransaction = env.rh.transaction(db, async (tx) => {
        await env.rh.insert(tx, books, { title: 'Fine', pages: 1, ownerId: 'alice' });
        await env.rh.insert(tx, books, { title: 'Poison', pages: 2, ownerId: 'alice' });
      });
      await expect(inTransaction).rejects.toBeInstanceOf(OutboxWriteError);
      await expect(inTransaction).rejects.toMatchObject({ code: 'outbox_write_failed', message: expect.stringContaining('outbox refused') });
      // Alone, the helper opens its own transaction: refused the same way.
      await expect(env.rh.insert(db, books, { title: 'Poison, alone', pages: 3, ownerId: 'alice' })).rejects.toBeInstanceOf(OutboxWriteError);
      expect(await titles(env)).toEqual([]);
      expect(await outboxNames(env)).toEqual([]);
      await env.rh.insert(db, books, { title: 'Next', pages: 4, ownerId: 'alice' });
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json.data.title).toBe('Next');
    });

    it('a table is known by its table name unless models names it; a table no event names fires nothing and is reported once', async () => {
      const warnings: string[] = [];
      const logger = { debug() {}, info() {}, warn: (_: object, message: string) => void warnings.push(message), error() {} };
      const env = await open({ logger });
      await subscribe(env, 'note.added');
      const db = env.db as SqliteRemoteDatabase;
      const notes = env.notes as typeof sqliteNotes;
      const shelves = env.shelves as typeof sqliteShelves;
      const [note] = await env.rh.insert(db, notes, { text: 'hi', ownerId: 'alice' });
      await env.rh.insert(db, shelves, { name: 'Sci-fi' });
      await env.rh.insert(db, shelves, { name: 'Poetry' });
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json).toMatchObject({ hook: { event: 'note.added' }, data: { id: note!.id, text: 'hi' } });
      await settle(env);
      expect(env.receiver.received).toHaveLength(1);
      expect(await outboxNames(env)).toEqual(['note.added']);
      expect((await env.query('select name from shelves order by id')).map((r) => r.name)).toEqual(['Sci-fi', 'Poetry']);
      expect(warnings).toEqual([expect.stringContaining('"shelves" is no model of the events map')]);
    });
  });
}

/** better-sqlite3's own Drizzle driver: synchronous transactions, the …Sync helpers. */
describe('resthooks/drizzle on better-sqlite3 (synchronous transactions)', () => {
  interface SyncEnv {
    db: BetterSQLite3Database;
    connection: Database.Database;
    hooks: Hooks<EventName>;
    rh: DrizzleHooks;
    receiver: Receiver;
  }
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  const open = async (): Promise<SyncEnv> => {
    const dir = tempDir();
    closers.push(() => dir.cleanup());
    const file = `${dir.path}/app.db`;
    const connection = new Database(file);
    closers.push(() => void connection.close());
    for (const statement of SCHEMA.sqlite) connection.exec(statement);
    const { hooks, close } = await testHooks({ events: EVENTS, store: sqliteStore(new Database(file)) });
    closers.push(close);
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    const db = drizzleSqlite(connection);
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/alice` });
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.changed', target: `${receiver.url}/alice` });
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.removed', target: `${receiver.url}/alice` });
    return { db, connection, hooks, rh: await drizzleHooks(db, hooks, { models: { Book: sqliteBooks } }), receiver };
  };
  const book = (title: string) => ({ title, pages: 1, ownerId: 'alice' });
  const outbox = (env: SyncEnv) => (env.connection.prepare(`select name from ${ALL_EVENTS} order by created_at, id`).all() as Array<{ name: string }>).map((r) => r.name);

  it('create, update and delete in one synchronous transaction fire after COMMIT, with changes', async () => {
    const env = await open();
    const id = env.rh.transactionSync(env.db, (tx) => {
      const [created] = env.rh.insertSync(tx, sqliteBooks, book('Dune'));
      env.rh.updateSync(tx, sqliteBooks, { title: 'Dune Messiah' }, eq(sqliteBooks.id, created!.id));
      env.rh.insertSync(tx, sqliteBooks, book('Gone'));
      env.rh.deleteSync(tx, sqliteBooks, eq(sqliteBooks.title, 'Gone'));
      // Written in the transaction, before COMMIT.
      expect(outbox(env)).toEqual(['book.added', 'book.changed', 'book.added', 'book.removed']);
      return created!.id;
    });
    const requests = await env.receiver.waitFor(4);
    expect(requests.map((r) => `${r.json.hook.event} ${r.json.data.title}`).sort()).toEqual(['book.added Dune', 'book.added Gone', 'book.changed Dune Messiah', 'book.removed Gone']);
    expect(requests.find((r) => r.json.hook.event === 'book.changed')!.json).toMatchObject({ data: { id }, changes: ['title'] });
  });

  it('a synchronous transaction that throws, or a savepoint rolled back inside one, keeps none of their events', async () => {
    const env = await open();
    expect(() =>
      env.rh.transactionSync(env.db, () => {
        env.rh.insertSync(env.db, sqliteBooks, book('Never'));
        throw ROLLBACK;
      }),
    ).toThrow(ROLLBACK);
    env.rh.transactionSync(env.db, (tx) => {
      env.rh.insertSync(tx, sqliteBooks, book('Outer'));
      expect(() =>
        tx.transaction((savepoint) => {
          env.rh.insertSync(savepoint, sqliteBooks, book('Inner, rolled back'));
          savepoint.rollback();
        }),
      ).toThrow(/rollback/i);
    });
    const [request] = await env.receiver.waitFor(1);
    expect(request!.json.data.title).toBe('Outer');
    await env.hooks.idle();
    await sleep(100);
    expect(env.receiver.received).toHaveLength(1);
    expect(outbox(env)).toEqual(['book.added']);
  });

  it('outside a transaction a …Sync helper opens its own; an async helper on better-sqlite3 is refused before it writes', async () => {
    const env = await open();
    const [row] = env.rh.insertSync(env.db, sqliteBooks, book('Alone'));
    const [request] = await env.receiver.waitFor(1);
    expect(request!.json.data).toEqual({ id: row!.id, title: 'Alone', pages: 1, ownerId: 'alice' });
    await expect(env.rh.insert(env.db, sqliteBooks, book('Awaited'))).rejects.toThrow(/synchronous SQLite database/);
    await expect(env.rh.transaction(env.db, async () => undefined)).rejects.toThrow(/transactionSync/);
    expect(env.connection.prepare('select count(*) as n from books').get()).toEqual({ n: 1 });
  });

  it("a transaction of another connection than the helpers' database still gets its outbox rows (rolled back with it, committed with it)", async () => {
    const env = await open();
    const other = new Database(env.connection.name);
    closers.push(() => void other.close());
    const otherDb = drizzleSqlite(other);
    expect(() =>
      env.rh.transactionSync(otherDb, (tx) => {
        env.rh.insertSync(tx, sqliteBooks, book('Never'));
        throw ROLLBACK;
      }),
    ).toThrow(ROLLBACK);
    expect(outbox(env)).toEqual([]);
    env.rh.transactionSync(otherDb, (tx) => void env.rh.insertSync(tx, sqliteBooks, book('Through the other connection')));
    expect(outbox(env)).toEqual(['book.added']);
    const [request] = await env.receiver.waitFor(1);
    expect(request!.json.data.title).toBe('Through the other connection');
  });

  it("'after-commit' (the store in another file): appended after the outermost commit; a rolled-back nested transactionSync drops its writes", async () => {
    const dir = tempDir();
    closers.push(() => dir.cleanup());
    const connection = new Database(`${dir.path}/app.db`);
    closers.push(() => void connection.close());
    for (const statement of SCHEMA.sqlite) connection.exec(statement);
    const { hooks, close } = await testHooks({ events: EVENTS });
    closers.push(close);
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/alice` });
    const db = drizzleSqlite(connection);
    const rh = await drizzleHooks(db, hooks, { models: { Book: sqliteBooks } });
    expect(rh.mode).toBe('after-commit');
    rh.transactionSync(db, (tx) => {
      rh.insertSync(tx, sqliteBooks, book('Outer'));
      expect(() =>
        rh.transactionSync(tx, (savepoint) => {
          rh.insertSync(savepoint, sqliteBooks, book('Inner, rolled back'));
          throw ROLLBACK;
        }),
      ).toThrow(ROLLBACK);
      rh.transactionSync(tx, (savepoint) => void rh.insertSync(savepoint, sqliteBooks, book('Inner, released')));
    });
    expect(() => rh.transactionSync(db, (tx) => void (rh.insertSync(tx, sqliteBooks, book('Rolled back')), tx.rollback()))).toThrow(/rollback/i);
    rh.insertSync(db, sqliteBooks, book('Alone'));
    await receiver.waitFor(3);
    await hooks.idle();
    await sleep(100);
    expect(receiver.received.map((r) => r.json.data.title).sort()).toEqual(['Alone', 'Inner, released', 'Outer']);
  });
});
