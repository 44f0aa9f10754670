/**
 * resthooks/kysely on real databases: the ORM conformance suite on SQLite (Kysely's SqliteDialect over
 * better-sqlite3) and PostgreSQL (PostgresDialect over a pg pool), the resthooks store in the app's
 * database; then what is Kysely's own: `changes` from the SET columns, controlled transactions and
 * savepoints, a refused outbox row, table names and the `models` map, and queries the helper refuses.
 */
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Generated } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { kyselyHooks, type KyselyHooks, type KyselyHooksOptions } from '../../src/adapters/orm/kysely-adapter.js';
import { OutboxWriteError, type Hooks } from '../../src/index.js';
import { BOOK_EVENTS, ormAdapterSuite, type BookWriter, type OrmAdapterHarness } from '../orm-adapter.suite.js';
import { TestDatabase, type Engine } from '../support/database.js';
import { testHooks } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { closedAfterEach, openAll, ROLLBACK, rolledBack, settleDelivery, sleep } from '../support/orm-harness.js';
import { ALL_EVENTS, outboxTable } from '../support/events.js';

interface AppDatabase {
  books: { id: Generated<number>; title: string; pages: number; ownerId: string };
  shelves: { id: Generated<number>; name: string };
  notes: { id: Generated<number>; text: string; ownerId: string };
}

/** The names of every event the store wrote, fresh or fanned out. */
const eventNames = async (db: Kysely<AppDatabase>) => (await sql<{ name: string }>`select name from ${sql.raw(ALL_EVENTS)}`.execute(db)).rows.map((r) => r.name);

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

interface Env {
  db: Kysely<AppDatabase>;
  /** SQLite: the better-sqlite3 connection under `db`. */
  connection?: Database.Database;
  hooks: Hooks<EventName>;
  kh: KyselyHooks;
  receiver: Receiver;
  close(): Promise<void>;
}

/** 'app': the resthooks tables live in the app's database; 'separate': in another SQLite file. */
type StorePlace = 'app' | 'separate';

/** `direct`: the adapter is given `db`'s better-sqlite3 connection as its `sqlite` option. */
async function makeEnv(engine: Engine, options: KyselyHooksOptions = {}, place: StorePlace = 'app', direct = false): Promise<Env> {
  return openAll(async (closers, close) => {
    const database = new TestDatabase(engine);
    await database.init();
    closers.push(() => database.close());
    const connection = engine === 'sqlite' ? new Database(database.url) : undefined;
    const dialect = connection ? new SqliteDialect({ database: connection }) : new PostgresDialect({ pool: database.pool({ max: 5 }) });
    const db = new Kysely<AppDatabase>({ dialect });
    closers.push(() => db.destroy());
    for (const statement of SCHEMA[engine]) await sql.raw(statement).execute(db);
    // A separate store is testHooks' own temp SQLite file.
    const store = place === 'app' ? database.dialect({}, { max: 5 }) : undefined;
    const { hooks, close: closeHooks } = await testHooks({ events: EVENTS, store });
    closers.push(closeHooks);
    const kh = await kyselyHooks(db, hooks, { models: { Book: 'books' }, ...(direct && connection ? { sqlite: connection } : {}), ...options });
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    return { db, ...(connection ? { connection } : {}), hooks, kh, receiver, close };
  });
}

function bookWriter(env: Env, db: Kysely<AppDatabase>): BookWriter {
  return {
    async create(book) {
      const [row] = await env.kh.execute(db, db.insertInto('books').values(book).returningAll());
      return row!;
    },
    async update(id, patch) {
      await env.kh.execute(db, db.updateTable('books').set(patch).where('id', '=', id).returningAll());
    },
    async remove(id) {
      await env.kh.execute(db, db.deleteFrom('books').where('id', '=', id).returningAll());
    },
  };
}

function harness(engine: Engine, place: StorePlace, direct = false) {
  return async (): Promise<OrmAdapterHarness> => {
    const env = await makeEnv(engine, {}, place, direct);
    return {
      hooks: env.hooks,
      receiver: env.receiver,
      engine,
      mode: env.kh.mode,
      async transaction(work, { rollback = false } = {}) {
        await rolledBack(
          env.kh.transaction(env.db, async (trx) => {
            await work(bookWriter(env, trx));
            if (rollback) throw ROLLBACK;
          }),
        );
      },
      outside: bookWriter(env, env.db),
      query: async (text) => (await sql.raw<Record<string, unknown>>(text).execute(env.db)).rows,
      async writeUnmapped({ transaction }) {
        const insert = (db: Kysely<AppDatabase>) => env.kh.execute(db, db.insertInto('shelves').values({ name: 'Sci-fi' }).returningAll());
        if (transaction) await env.kh.transaction(env.db, insert);
        else await insert(env.db);
      },
      close: env.close,
    };
  };
}

const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];
for (const engine of ENGINES) {
  // savepoints: Kysely's callback transactions do not nest; its savepoints belong to controlled
  // transactions, tested below. commitRace: Kysely commits only after the callback, and resthooks writes inside it.
  ormAdapterSuite(`Kysely on ${engine}, store in the app's database`, harness(engine, 'app'), { mode: 'transaction', savepoints: false, commitRace: false });
  ormAdapterSuite(`Kysely on ${engine}, store in a separate SQLite file`, harness(engine, 'separate'), { mode: 'after-commit', savepoints: false, commitRace: false });
}
ormAdapterSuite("Kysely on sqlite, store in the app's database, outbox statements on the sqlite option's connection", harness('sqlite', 'app', true), {
  mode: 'transaction',
  savepoints: false,
  commitRace: false,
});

describe('resthooks/kysely, the sqlite option', () => {
  const open = closedAfterEach((options?: KyselyHooksOptions) => makeEnv('sqlite', options));
  const book = (title: string) => ({ title, pages: 1, ownerId: 'alice' });
  const outboxInsert = (sql: string) => sql.startsWith('insert into "resthooks_outbox"');
  /** `connection`, with its `prepare` calls counted per SQL text. */
  const counted = (connection: Database.Database) => {
    const prepared = new Map<string, number>();
    const handle = {
      prepared,
      get inTransaction() {
        return connection.inTransaction;
      },
      prepare(text: string) {
        prepared.set(text, (prepared.get(text) ?? 0) + 1);
        return connection.prepare(text);
      },
    };
    return handle;
  };
  const preparedOutboxInserts = (prepared: Map<string, number>) => [...prepared].filter(([text]) => outboxInsert(text)).map(([, times]) => times);
  const titles = async (env: Env) => (await env.db.selectFrom('books').select('title').orderBy('id').execute()).map((r) => r.title);
  const outboxCount = async (env: Env) => (await eventNames(env.db)).length;

  it("runs the outbox INSERT on the connection under the Kysely instance, prepared once, in Kysely's transaction", async () => {
    const env = await open();
    const handle = counted(env.connection!);
    const kh = await kyselyHooks(env.db, env.hooks, { models: { Book: 'books' }, sqlite: handle });
    await kh.execute(env.db, env.db.insertInto('books').values(book('A')).returningAll());
    await kh.transaction(env.db, async (trx) => {
      await kh.execute(trx, trx.insertInto('books').values([book('B'), book('C')]).returningAll());
    });
    await expect(
      kh.transaction(env.db, async (trx) => {
        await kh.execute(trx, trx.insertInto('books').values(book('Rolled back')).returningAll());
        throw ROLLBACK;
      }),
    ).rejects.toBe(ROLLBACK);
    expect(preparedOutboxInserts(handle.prepared)).toEqual([1]);
    expect(await titles(env)).toEqual(['A', 'B', 'C']);
    expect(await outboxCount(env)).toBe(3);
  });

  describe('without it on SQLite, a warning names it, once per hooks', () => {
    const openOn = closedAfterEach((engine: Engine, options: KyselyHooksOptions, direct: boolean) => makeEnv(engine, options, 'app', direct));
    const advice = (messages: readonly string[]) => messages.filter((message) => message.includes('without the `sqlite` option'));
    const recording = () => {
      const warnings: string[] = [];
      return { warnings, logger: { debug() {}, info() {}, warn: (_: object, message: string) => void warnings.push(message), error() {} } };
    };

    it('to the logger, naming the option; not again for the same hooks', async () => {
      const { warnings, logger } = recording();
      const env = await openOn('sqlite', { logger }, false);
      await kyselyHooks(env.db, env.hooks, { models: { Book: 'books' }, logger });
      expect(advice(warnings)).toEqual([expect.stringContaining('sqlite: database')]);
    });

    it('to process.emitWarning without a logger', async () => {
      const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      try {
        const env = await openOn('sqlite', {}, false);
        await kyselyHooks(env.db, env.hooks, { models: { Book: 'books' } });
        expect(advice(emitWarning.mock.calls.map(([message]) => String(message)))).toHaveLength(1);
      } finally {
        emitWarning.mockRestore();
      }
    });

    it('not with the option, not on PostgreSQL, not in after-commit mode', async () => {
      const { warnings, logger } = recording();
      await openOn('sqlite', { logger }, true);
      await openOn('postgres', { logger }, false);
      const separate = await makeEnv('sqlite', { logger }, 'separate');
      await separate.close();
      expect(advice(warnings)).toEqual([]);
    });
  });

  it('a handle that is not the connection under the Kysely instance is ignored, with a warning', async () => {
    const env = await open();
    const other = new Database(env.connection!.name);
    try {
      const warnings: string[] = [];
      const logger = { debug() {}, info() {}, warn: (_: object, message: string) => void warnings.push(message), error() {} };
      const handle = counted(other);
      const kh = await kyselyHooks(env.db, env.hooks, { models: { Book: 'books' }, sqlite: handle, logger });
      await kh.execute(env.db, env.db.insertInto('books').values(book('Through Kysely')).returningAll());
      expect(preparedOutboxInserts(handle.prepared)).toEqual([]);
      expect(await outboxCount(env)).toBe(1);
      expect(warnings).toEqual([expect.stringContaining('the sqlite option is not the connection under this Kysely instance')]);
    } finally {
      other.close();
    }
  });
});

for (const engine of ENGINES) {
  describe(`resthooks/kysely on ${engine}`, () => {
    const open = closedAfterEach((options?: KyselyHooksOptions, place?: StorePlace) => makeEnv(engine, options, place));
    const subscribe = (env: Env, event: EventName, owner = 'alice') => env.hooks.subscriptions.create({ owner, event, target: `${env.receiver.url}/${owner}` });
    const outboxNames = async (env: Env) => eventNames(env.db);
    const titles = async (env: Env) => (await env.db.selectFrom('books').select('title').orderBy('id').execute()).map((r) => r.title);
    const settle = (env: Env) => settleDelivery(env.hooks);
    const book = (title: string, pages = 1) => ({ title, pages, ownerId: 'alice' });

    it("outbox 'auto' picks 'transaction' when the store is the app's database, 'after-commit' otherwise; the probe leaves no row", async () => {
      const env = await open();
      expect(env.kh.mode).toBe('transaction');
      expect((await open({}, 'separate')).kh.mode).toBe('after-commit');
      expect((await open({ outbox: 'after-commit' })).kh.mode).toBe('after-commit');
      expect(await outboxNames(env)).toEqual([]);
    });

    it("'after-commit': a write in a transaction resthooks did not open (a controlled one) is refused before it runs", async () => {
      const env = await open({}, 'separate');
      await subscribe(env, 'book.added');
      const trx = await env.db.startTransaction().execute();
      await expect(env.kh.execute(trx, trx.insertInto('books').values(book('Unseen')).returningAll())).rejects.toThrow(/open the transaction with its transaction\(\) helper/);
      await trx.commit().execute();
      expect(await titles(env)).toEqual([]);
      await env.kh.transaction(env.db, (t) => env.kh.execute(t, t.insertInto('books').values(book('Seen')).returningAll()));
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json.data.title).toBe('Seen');
    });

    it("the outbox row is written in the app's transaction: visible inside it, gone with its rollback", async () => {
      const env = await open();
      await subscribe(env, 'book.added');
      await expect(
        env.kh.transaction(env.db, async (trx) => {
          await env.kh.execute(trx, trx.insertInto('books').values(book('Dune')).returningAll());
          expect(await eventNames(trx)).toEqual(['book.added']);
          throw ROLLBACK;
        }),
      ).rejects.toBe(ROLLBACK);
      expect(await outboxNames(env)).toEqual([]);
      expect(await titles(env)).toEqual([]);
    });

    it('updated carries the SET columns as changes; changes: false leaves the plain envelope', async () => {
      for (const changes of [true, false]) {
        const env = await open({ changes });
        await subscribe(env, 'book.changed');
        const [created] = await env.kh.execute(env.db, env.db.insertInto('books').values(book('Dune', 412)).returningAll());
        await env.kh.execute(env.db, env.db.updateTable('books').set({ title: 'Dune Messiah', pages: sql<number>`pages - 156` }).where('id', '=', created!.id).returningAll());
        const [request] = await env.receiver.waitFor(1);
        expect(request!.json.data).toEqual({ id: created!.id, title: 'Dune Messiah', pages: 256, ownerId: 'alice' });
        if (changes) expect(request!.json.changes).toEqual(['title', 'pages']);
        else expect(Object.keys(request!.json)).toEqual(['hook', 'data']);
      }
    });

    it('a controlled transaction: a rollback to a savepoint drops only the events written after it; commit fires the rest', async () => {
      const env = await open();
      await subscribe(env, 'book.added');
      const trx = await env.db.startTransaction().execute();
      await env.kh.execute(trx, trx.insertInto('books').values(book('Outer')).returningAll());
      const savepoint = await trx.savepoint('inner').execute();
      await env.kh.execute(savepoint, savepoint.insertInto('books').values(book('Inner, rolled back')).returningAll());
      const back = await savepoint.rollbackToSavepoint('inner').execute();
      await env.kh.execute(back, back.insertInto('books').values(book('After the savepoint')).returningAll());
      await sleep(100);
      expect(env.receiver.received).toHaveLength(0);
      await back.commit().execute();
      env.hooks.notify();
      await env.receiver.waitFor(2);
      await settle(env);
      expect(env.receiver.received.map((r) => r.json.data.title).sort()).toEqual(['After the savepoint', 'Outer']);
      expect(await titles(env)).toEqual(['Outer', 'After the savepoint']);
    });

    it('a multi-row insert fires one event per row; a query built on the instance still runs in the given transaction', async () => {
      const env = await open();
      await subscribe(env, 'book.added');
      await expect(
        env.kh.transaction(env.db, async (trx) => {
          // Built on env.db, run through trx: the write is rolled back with the transaction.
          const rows = await env.kh.execute(trx, env.db.insertInto('books').values([book('A'), book('B')]).returningAll());
          expect(rows.map((r) => r.title)).toEqual(['A', 'B']);
          throw ROLLBACK;
        }),
      ).rejects.toBe(ROLLBACK);
      expect(await titles(env)).toEqual([]);
      await env.kh.transaction(env.db, async (trx) => void (await env.kh.execute(trx, trx.insertInto('books').values([book('C'), book('D')]).returningAll())));
      await env.receiver.waitFor(2);
      await settle(env);
      expect(env.receiver.received.map((r) => r.json.data.title).sort()).toEqual(['C', 'D']);
    });

    it('an outbox row the database refuses fails execute() with OutboxWriteError and the transaction keeps nothing', async () => {
      const env = await open();
      await subscribe(env, 'book.added');
      if (engine === 'sqlite') {
        await sql.raw(`create trigger refuse_outbox before insert on ${outboxTable('sqlite')} when new.data like '%Poison%' begin select raise(abort, 'outbox refused'); end`).execute(env.db);
      } else {
        await sql.raw(`create function refuse_outbox() returns trigger language plpgsql as $$ begin if new.data like '%Poison%' then raise exception 'outbox refused'; end if; return new; end $$`).execute(env.db);
        await sql.raw('create trigger refuse_outbox before insert on resthooks_events for each row execute function refuse_outbox()').execute(env.db);
      }
      const inTransaction = env.kh.transaction(env.db, async (trx) => {
        await env.kh.execute(trx, trx.insertInto('books').values(book('Fine')).returningAll());
        await env.kh.execute(trx, trx.insertInto('books').values(book('Poison')).returningAll());
      });
      await expect(inTransaction).rejects.toBeInstanceOf(OutboxWriteError);
      await expect(inTransaction).rejects.toMatchObject({ code: 'outbox_write_failed', message: expect.stringContaining('outbox refused') });
      await expect(env.kh.execute(env.db, env.db.insertInto('books').values(book('Poison, alone')).returningAll())).rejects.toBeInstanceOf(OutboxWriteError);
      expect(await titles(env)).toEqual([]);
      expect(await outboxNames(env)).toEqual([]);
      await env.kh.execute(env.db, env.db.insertInto('books').values(book('Next')).returningAll());
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json.data.title).toBe('Next');
    });

    it('a table is known by its table name unless models names it; a table no event names fires nothing and is reported once', async () => {
      const warnings: string[] = [];
      const logger = { debug() {}, info() {}, warn: (_: object, message: string) => void warnings.push(message), error() {} };
      const env = await open({ logger });
      await subscribe(env, 'note.added');
      const [note] = await env.kh.execute(env.db, env.db.insertInto('notes').values({ text: 'hi', ownerId: 'alice' }).returningAll());
      for (const name of ['Sci-fi', 'Poetry']) await env.kh.execute(env.db, env.db.insertInto('shelves').values({ name }).returningAll());
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json).toMatchObject({ hook: { event: 'note.added' }, data: { id: note!.id, text: 'hi' } });
      await settle(env);
      expect(env.receiver.received).toHaveLength(1);
      expect(await outboxNames(env)).toEqual(['note.added']);
      expect((await env.db.selectFrom('shelves').select('name').orderBy('id').execute()).map((r) => r.name)).toEqual(['Sci-fi', 'Poetry']);
      // On SQLite, also the advice to pass the `sqlite` option (tested with the option).
      expect(warnings.filter((message) => !message.includes('without the `sqlite` option'))).toEqual([expect.stringContaining('"shelves" is no model of the events map')]);
    });

    it('refuses, before running it, a write without returning and a query that writes nothing', async () => {
      const env = await open();
      const noReturning = env.db.insertInto('books').values(book('Unseen'));
      await expect(env.kh.execute(env.db, noReturning as never)).rejects.toThrow(/returningAll/);
      await expect(env.kh.execute(env.db, env.db.selectFrom('books').selectAll() as never)).rejects.toThrow(/insert, update or delete/);
      expect(await titles(env)).toEqual([]);
    });
  });
}
