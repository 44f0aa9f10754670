/**
 * resthooks/prisma on real databases (Prisma 7 with its better-sqlite3 and pg driver adapters): the ORM
 * conformance suite on SQLite and PostgreSQL, with the store in the app's database (outbox written in the
 * app's transaction) and in another one (appended after commit); then what is Prisma's own: upsert, the
 * *AndReturn writes, bulk writes (silent by default, opt-in), nested transactions (savepoints), batch
 * transactions, unmapped models, and an outbox write that fails (the app's write is refused).
 * Clients are generated at run time (test/support/prisma.ts).
 */
import Database from 'better-sqlite3';
import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { resthooksAdapter, withResthooks, type PrismaHooksOptions, type ResthooksPrismaClient } from '../../src/adapters/orm/prisma-adapter.js';
import { OutboxWriteError, type Hooks, type StandardSchemaV1 } from '../../src/index.js';
import { BOOK_EVENTS, ormAdapterSuite, type Book, type BookWriter, type OrmAdapterHarness } from '../orm-adapter.suite.js';
import { TestDatabase, type Engine } from '../support/database.js';
import { testHooks } from '../support/hooks.js';
import { generatePrismaClient, PRISMA_TABLES, type PrismaClientFactory, type TestPrismaClient } from '../support/prisma.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { openAll, ROLLBACK, rolledBack, settleDelivery, sleep } from '../support/orm-harness.js';
import { ALL_EVENTS, outboxTable } from '../support/events.js';

const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];
const generated = {
  sqlite: await generatePrismaClient('sqlite'),
  postgres: await generatePrismaClient('postgresql'),
};
afterAll(() => {
  generated.sqlite.cleanup();
  generated.postgres.cleanup();
});

/** The suite's events, plus a custom action. */
const EVENTS = { ...BOOK_EVENTS, 'book.read': 'Book.read' } as const;
type EventName = keyof typeof EVENTS;

interface Setup {
  app: Engine;
  /** 'app': the resthooks tables live in the app's database; 'separate': in another SQLite file. */
  store: 'app' | 'separate';
  options?: PrismaHooksOptions;
  /** The client's driver adapter wrapped by resthooksAdapter(): outbox rows go through the driver's transactions. */
  wrapped?: boolean;
  /** Extends the client before withResthooks() does. */
  extend?: (client: TestPrismaClient) => TestPrismaClient;
  /** resthooksAdapter's maxWait; long by default, for a loaded test machine. */
  maxWait?: number;
  /** More options for createHooks(). */
  hooks?: { schemas?: Partial<Record<EventName, StandardSchemaV1>> };
  /** Applied to the driver adapter factory before resthooksAdapter() wraps it (with `wrapped`). */
  driver?: <F extends { connect(): Promise<object> }>(factory: F) => F;
}

interface Env {
  database: TestDatabase;
  /** The client without resthooks, for looking at the tables. */
  plain: TestPrismaClient;
  prisma: TestPrismaClient & ResthooksPrismaClient;
  hooks: Hooks<EventName>;
  receiver: Receiver;
  close(): Promise<void>;
}

const book = (title: string) => ({ title, pages: 1, ownerId: 'alice' });
/** The titles of the books in `env`'s tables, in insertion order. */
const bookTitles = async (env: Env) => (await env.plain.book.findMany({ orderBy: { id: 'asc' } })).map((row: Book) => row.title);
/** The titles of the `book.added` events `env`'s hooks recorded, sorted. */
const bookEventTitles = async (env: Env) => (await env.hooks.recentEvents('book.added', { owner: 'alice', limit: 100 })).map((event) => (event.data as { title: string }).title).sort();

async function makeEnv(setup: Setup): Promise<Env> {
  return openAll(async (closers, close) => {
    const database = new TestDatabase(setup.app);
    await database.init();
    closers.push(() => database.close());
    const create: PrismaClientFactory = generated[setup.app].create;
    const plain = create(database.url);
    closers.push(() => plain.$disconnect());
    for (const sql of PRISMA_TABLES[setup.app === 'sqlite' ? 'sqlite' : 'postgresql']) await plain.$executeRawUnsafe(sql);
    const store = setup.store === 'app' ? database.dialect({}, { max: 4 }) : undefined;
    const { hooks, close: closeHooks } = await testHooks({ events: EVENTS, store, ...setup.hooks });
    closers.push(closeHooks);
    const wrap = <F extends { connect(): Promise<object> }>(factory: F) => resthooksAdapter(setup.driver ? setup.driver(factory) : factory, { maxWait: setup.maxWait ?? 30_000 });
    const base = create(database.url, setup.wrapped ? wrap : undefined);
    closers.push(() => base.$disconnect());
    const prisma = await withResthooks(setup.extend ? setup.extend(base) : base, hooks, setup.options);
    expect(prisma.$resthooks.driverAdapter).toBe(setup.wrapped === true);
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    return { database, plain, prisma, hooks, receiver, close };
  });
}

/** The client each writer writes through, so that a savepoint can be opened on a transaction's client. */
const writerClients = new WeakMap<BookWriter, TestPrismaClient>();

function bookWriter(client: TestPrismaClient): BookWriter {
  const writer: BookWriter = {
    create: (book) => client.book.create({ data: book }) as Promise<Book>,
    update: async (id, patch) => void (await client.book.update({ where: { id }, data: patch })),
    remove: async (id) => void (await client.book.delete({ where: { id } })),
  };
  writerClients.set(writer, client);
  return writer;
}

function harness(setup: Setup) {
  return async (): Promise<OrmAdapterHarness> => {
    const env = await makeEnv(setup);
    const inTransaction = (client: TestPrismaClient, work: (books: BookWriter) => Promise<void>, rollback = false) =>
      rolledBack(
        client.$transaction(async (tx) => {
          await work(bookWriter(tx));
          if (rollback) throw ROLLBACK;
        }),
      );
    let shelves = 0;
    return {
      hooks: env.hooks,
      receiver: env.receiver,
      engine: setup.app,
      mode: env.prisma.$resthooks.mode,
      transaction: (work, { rollback = false } = {}) => inTransaction(env.prisma, work, rollback),
      // A nested $transaction on a transaction's client is a savepoint in Prisma 7.
      savepoint: (outer, work, { rollback = false } = {}) => inTransaction(writerClients.get(outer)!, work, rollback),
      outside: bookWriter(env.prisma),
      async query(sql) {
        // SQLite's driver refuses to read rows from a statement that returns none (DDL).
        if (/^\s*select\b/i.test(sql)) return env.plain.$queryRawUnsafe(sql);
        await env.plain.$executeRawUnsafe(sql);
        return [];
      },
      async writeUnmapped({ transaction }) {
        const data = { name: `Shelf ${++shelves}` };
        if (transaction) await env.prisma.$transaction((tx) => tx.shelf.create({ data }));
        else await env.prisma.shelf.create({ data });
      },
      close: env.close,
    };
  };
}

for (const app of ENGINES) {
  // No commit race: resthooks writes inside the app's transaction callback, so Prisma commits only after that write.
  ormAdapterSuite(`Prisma on ${app}, store in the app's database (outbox in the transaction)`, harness({ app, store: 'app' }), {
    mode: 'transaction',
    savepoints: true,
    commitRace: false,
  });
  ormAdapterSuite(`Prisma on ${app}, driver adapter wrapped by resthooksAdapter(), store in the app's database`, harness({ app, store: 'app', wrapped: true }), {
    mode: 'transaction',
    savepoints: true,
    commitRace: false,
  });
  ormAdapterSuite(`Prisma on ${app}, store in a separate SQLite file (after commit)`, harness({ app, store: 'separate' }), {
    mode: 'after-commit',
    savepoints: true,
    commitRace: false,
  });
}

for (const app of ENGINES) for (const wrapped of [false, true]) {
  const driver = wrapped ? ', driver adapter wrapped by resthooksAdapter()' : '';
  describe(`resthooks/prisma on ${app}${driver}: Prisma's own writes and transactions`, () => {
    let env: Env;
    const open = async (options?: PrismaHooksOptions) => {
      env = await makeEnv({ app, store: 'app', options, wrapped });
      for (const event of Object.keys(EVENTS) as EventName[]) {
        await env.hooks.subscriptions.create({ owner: 'alice', event, target: `${env.receiver.url}/alice` });
      }
      return env;
    };
    afterEach(async () => {
      await env?.close();
    });
    /** What arrived, in a stable order: "event title". */
    const received = () => env.receiver.received.map((r) => `${r.json.hook.event as string} ${r.json.data.title as string}`).sort();
    const settle = () => settleDelivery(env.hooks, 50);
    const titles = () => bookTitles(env);

    it('upsert fires created for a new row, and updated with the fields it set for an existing one', async () => {
      await open();
      const created = await env.prisma.book.upsert({ where: { id: 1000 }, create: { id: 1000, ...book('New') }, update: { title: 'Unused' } });
      await env.prisma.$transaction((tx) => tx.book.upsert({ where: { id: created.id }, create: book('Unused'), update: { title: 'Renamed' } }));
      const requests = await env.receiver.waitFor(2);
      await settle();
      expect(received()).toEqual(['book.added New', 'book.changed Renamed']);
      expect(requests.find((r) => r.json.hook.event === 'book.changed')!.json.changes).toEqual(['title']);
    });

    it('the data is the row as the write returned it, even if the app changes that object before COMMIT', async () => {
      await open();
      await env.prisma.$transaction(async (tx) => {
        const created = await tx.book.create({ data: book('As written') });
        created.title = 'Changed in memory';
      });
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json.data.title).toBe('As written');
    });

    it('update sends the fields it set as changes', async () => {
      await open();
      const { id } = await env.prisma.book.create({ data: book('Dune') });
      await env.prisma.book.update({ where: { id }, data: { title: 'Dune Messiah', pages: 256 } });
      await env.receiver.waitFor(2);
      const changed = env.receiver.received.find((r) => r.json.hook.event === 'book.changed')!;
      expect(changed.json).toMatchObject({ data: { id, title: 'Dune Messiah', pages: 256 }, changes: ['title', 'pages'] });
    });

    it('with changes: false, updated payloads carry no changes', async () => {
      await open({ changes: false });
      const { id } = await env.prisma.book.create({ data: book('Dune') });
      await env.prisma.book.update({ where: { id }, data: { title: 'Dune Messiah' } });
      await env.receiver.waitFor(2);
      const changed = env.receiver.received.find((r) => r.json.hook.event === 'book.changed')!;
      expect(changed.json).not.toHaveProperty('changes');
      expect(changed.json.data.title).toBe('Dune Messiah');
    });

    it('createManyAndReturn and updateManyAndReturn fire once per row', async () => {
      await open();
      await env.prisma.book.createManyAndReturn({ data: [book('A'), book('B')] });
      await env.prisma.$transaction((tx) => tx.book.updateManyAndReturn({ where: { title: 'A' }, data: { pages: 9 } }));
      await env.receiver.waitFor(3);
      await settle();
      expect(received()).toEqual(['book.added A', 'book.added B', 'book.changed A']);
    });

    it('createMany, updateMany and deleteMany fire nothing by default (they return no rows)', async () => {
      await open();
      expect(await env.prisma.book.createMany({ data: [book('A'), book('B')] })).toEqual({ count: 2 });
      expect(await env.prisma.book.updateMany({ where: {}, data: { pages: 2 } })).toEqual({ count: 2 });
      expect(await env.prisma.book.deleteMany({ where: { title: 'A' } })).toEqual({ count: 1 });
      await settle();
      expect(await env.hooks.recentEvents('book.added', { owner: 'alice' })).toEqual([]);
      expect(env.receiver.received).toEqual([]);
      expect(await titles()).toEqual(['B']);
    });

    it('with bulk: true, createMany, updateMany and deleteMany fire once per row and return their counts', async () => {
      await open({ bulk: true });
      expect(await env.prisma.book.createMany({ data: [book('A'), book('B')] })).toEqual({ count: 2 });
      expect(await env.prisma.$transaction((tx) => tx.book.updateMany({ where: { title: 'B' }, data: { title: 'B2' } }))).toEqual({ count: 1 });
      expect(await env.prisma.book.deleteMany({ where: { title: 'A' } })).toEqual({ count: 1 });
      await env.receiver.waitFor(4);
      await settle();
      expect(received()).toEqual(['book.added A', 'book.added B', 'book.changed B2', 'book.removed A']);
      expect(await titles()).toEqual(['B2']);
    });

    it("another resthooks client's write inside this client's $transaction is its own: it keeps its event when that transaction rolls back", async () => {
      await open();
      const other = generated[app].create(env.database.url, wrapped ? (factory) => resthooksAdapter(factory, { maxWait: 30_000 }) : undefined);
      try {
        const second = await withResthooks(other, env.hooks);
        await rolledBack(
          env.prisma.$transaction(async (tx) => {
            await second.book.create({ data: book('Second client') });
            await tx.book.create({ data: book('Rolled back') });
            throw ROLLBACK;
          }),
        );
        await env.receiver.waitFor(1);
        await settle();
        expect(received()).toEqual(['book.added Second client']);
        expect(await titles()).toEqual(['Second client']);
      } finally {
        await other.$disconnect();
      }
    });

    it("a nested transaction's rollback (a savepoint) drops only its own events", async () => {
      await open();
      await env.prisma.$transaction(async (tx) => {
        await tx.book.create({ data: book('Outer') });
        await rolledBack(
          tx.$transaction(async (inner) => {
            await inner.book.create({ data: book('Inner, rolled back') });
            throw ROLLBACK;
          }),
        );
        await tx.$transaction((inner) => inner.book.create({ data: book('Inner, kept') }));
      });
      await env.receiver.waitFor(2);
      await settle();
      expect(received()).toEqual(['book.added Inner, kept', 'book.added Outer']);
      expect(await titles()).toEqual(['Outer', 'Inner, kept']);
      // The whole transaction rolled back: its released savepoint's events go too.
      await rolledBack(
        env.prisma.$transaction(async (tx) => {
          await tx.$transaction((inner) => inner.book.create({ data: book('Released, then rolled back') }));
          throw ROLLBACK;
        }),
      );
      await settle();
      expect(env.receiver.received).toHaveLength(2);
    });

    it('a batch $transaction([...]) fires once it has committed, and nothing when it fails', async () => {
      await open();
      await env.prisma.$transaction([env.prisma.book.create({ data: book('A') }), env.prisma.book.create({ data: book('B') })]);
      const failing = env.prisma.$transaction([env.prisma.book.create({ data: book('Never') }), env.prisma.shelf.create({ data: { name: 'x' } }), env.prisma.shelf.create({ data: { name: 'x' } })]);
      await expect(failing).rejects.toThrow();
      await env.receiver.waitFor(2);
      await settle();
      expect(received()).toEqual(['book.added A', 'book.added B']);
      expect(await titles()).toEqual(['A', 'B']);
    });

    it('concurrent transactions keep their own events: one rolls back, the other commits', async () => {
      await open();
      await Promise.all([
        env.prisma.$transaction(async (tx) => {
          await tx.book.create({ data: book('Committed') });
          await sleep(30);
        }),
        rolledBack(
          env.prisma.$transaction(async (tx) => {
            await tx.book.create({ data: book('Rolled back') });
            await sleep(30);
            throw ROLLBACK;
          }),
        ),
      ]);
      await env.receiver.waitFor(1);
      await settle();
      expect(received()).toEqual(['book.added Committed']);
      expect(await titles()).toEqual(['Committed']);
    });

    it('a batch inside an interactive transaction is part of it: its events (upsert too) go with its commit or rollback', async () => {
      await open();
      await rolledBack(
        env.prisma.$transaction(async (tx) => {
          await tx.$transaction([tx.book.create({ data: book('In batch') })]);
          throw ROLLBACK;
        }),
      );
      await env.prisma.$transaction(async (tx) => {
        await tx.$transaction([tx.book.create({ data: book('Batch, committed') }), tx.book.upsert({ where: { id: 999 }, create: { id: 999, ...book('Batch upsert') }, update: {} })]);
      });
      await env.receiver.waitFor(2);
      await settle();
      expect(received()).toEqual(['book.added Batch upsert', 'book.added Batch, committed']);
      expect(await titles()).toEqual(['Batch, committed', 'Batch upsert']);
    });

    // PostgreSQL only: SQLite has one connection, so a second transaction opened inside the first would wait for it to end.
    if (app === 'postgres') it('a transaction opened on the root client inside another is its own: it commits with its events while the other rolls back', async () => {
      await open();
      await rolledBack(
        env.prisma.$transaction(async (tx) => {
          await tx.book.create({ data: book('Outer, rolled back') });
          await env.prisma.$transaction((other) => other.book.create({ data: book('Independent') }));
          throw ROLLBACK;
        }),
      );
      await env.receiver.waitFor(1);
      await settle();
      expect(received()).toEqual(['book.added Independent']);
      expect(await titles()).toEqual(['Independent']);
    });

    it("a custom action: hooks.action() with the model's name and the transaction's client as tx", async () => {
      await open();
      const { id } = await env.prisma.book.create({ data: book('Read me') });
      await rolledBack(
        env.prisma.$transaction(async (tx) => {
          const row = await tx.book.findUnique({ where: { id } });
          await env.hooks.action(row, 'read', { model: 'Book', tx: (sql, parameters) => tx.$executeRawUnsafe(sql, ...parameters) });
          throw ROLLBACK;
        }),
      );
      await env.prisma.$transaction(async (tx) => {
        const row = await tx.book.findUnique({ where: { id } });
        await env.hooks.action(row, 'read', { model: 'Book', tx: (sql, parameters) => tx.$executeRawUnsafe(sql, ...parameters) });
      });
      env.hooks.notify();
      await env.receiver.waitFor(2);
      await settle();
      expect(received()).toEqual(['book.added Read me', 'book.read Read me']);
    });

    it('a model in no event fires nothing and writes no outbox row', async () => {
      await open();
      await env.prisma.shelf.create({ data: { name: 'Fiction' } });
      await env.prisma.$transaction((tx) => tx.shelf.update({ where: { name: 'Fiction' }, data: { name: 'Sci-fi' } }));
      const [{ count }] = (await env.plain.$queryRawUnsafe(`select count(*) as count from ${ALL_EVENTS}`)) as [{ count: unknown }];
      expect(Number(count)).toBe(0);
    });

    it("standalone: 'after-write' lets a write outside a transaction run once through every query extension, then appends its event", async () => {
      await open({ standalone: 'after-write' });
      let calls = 0;
      const counting = (env.prisma.$extends as (extension: object) => TestPrismaClient)({
        query: { book: { create: ({ args, query }: { args: object; query: (args: object) => Promise<unknown> }) => (calls++, query(args)) } },
      });
      const created = await counting.book.create({ data: book('Once') });
      const [stored] = await env.hooks.recentEvents('book.added', { owner: 'alice', limit: 1 });
      expect(stored?.data).toMatchObject({ id: created.id, title: 'Once' });
      expect(calls).toBe(1);
      await env.receiver.waitFor(1);
    });

    describe('an outbox write that fails', () => {
      /** The store refuses every `book.added` row (a database trigger), as a full disk or a broken schema would. */
      const refuseBookAdded = async () => {
        if (app === 'sqlite') {
          await env.plain.$executeRawUnsafe(
            `create trigger refuse_book_added before insert on ${outboxTable('sqlite')} when new.name = 'book.added' begin select raise(abort, 'outbox refused'); end`,
          );
        } else {
          await env.plain.$executeRawUnsafe(
            "create function refuse_book_added() returns trigger language plpgsql as $$ begin if new.name = 'book.added' then raise exception 'outbox refused'; end if; return new; end $$",
          );
          await env.plain.$executeRawUnsafe('create trigger refuse_book_added before insert on resthooks_events for each row execute function refuse_book_added()');
        }
      };

      it('refuses a write outside a transaction: the row is not kept and the caller gets OutboxWriteError', async () => {
        await open();
        await refuseBookAdded();
        const error: unknown = await env.prisma.book.create({ data: book('Unrecorded') }).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(OutboxWriteError);
        expect((error as OutboxWriteError).code).toBe('outbox_write_failed');
        expect(await titles()).toEqual([]);
      });

      it("with standalone: 'after-write', keeps a write outside a transaction and loses only its event", async () => {
        await open({ standalone: 'after-write' });
        await refuseBookAdded();
        await env.prisma.book.create({ data: book('Kept') });
        expect(await titles()).toEqual(['Kept']);
        await settle();
        expect(env.receiver.received).toEqual([]);
      });

      it('rolls back the whole interactive transaction, and later writes work', async () => {
        await open();
        const { id } = await env.prisma.book.create({ data: book('Before') });
        await refuseBookAdded();
        const failing = env.prisma.$transaction(async (tx) => {
          await tx.book.update({ where: { id }, data: { title: 'Renamed' } });
          await tx.book.create({ data: book('Unrecorded') });
        });
        await expect(failing).rejects.toBeInstanceOf(OutboxWriteError);
        expect(await titles()).toEqual(['Before']);
        await env.prisma.book.update({ where: { id }, data: { title: 'After' } });
        await env.receiver.waitFor(2);
        await settle();
        expect(received()).toEqual(['book.added Before', 'book.changed After']);
      });
    });
  });
}

for (const app of ENGINES) {
  describe(`resthooks/prisma on ${app}: the driver adapter wrapped by resthooksAdapter()`, () => {
    let env: Env | undefined;
    afterEach(async () => {
      await env?.close();
      env = undefined;
    });
    const titles = () => bookTitles(env!);
    const eventTitles = () => bookEventTitles(env!);
    /** Another request's transaction: it writes a book titled `title`, then stays open until `end()` (which resolves once it has committed). */
    const openTransaction = async (prisma: TestPrismaClient, title: string) => {
      let opened!: () => void;
      let release!: () => void;
      const open = new Promise<void>((resolve) => (opened = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      const done = prisma.$transaction(async (tx: TestPrismaClient) => {
        await tx.book.create({ data: book(title) });
        opened();
        await released;
      });
      await open;
      return { end: () => (release(), done) };
    };
    /** Counts the raw statements that pass through Prisma's query executor (`$executeRawUnsafe`), on any client derived from the base one. */
    const counting = () => {
      const calls = { raw: 0 };
      const extend = (client: TestPrismaClient) =>
        (client.$extends as (extension: object) => TestPrismaClient)({
          query: { $executeRawUnsafe: ({ args, query }: { args: unknown; query: (args: unknown) => Promise<unknown> }) => (calls.raw++, query(args)) },
        });
      return { calls, extend };
    };

    it("writes outbox rows through the driver's transaction, not through Prisma's raw-statement path", async () => {
      const { calls, extend } = counting();
      env = await makeEnv({ app, store: 'app', wrapped: true, extend });
      const before = calls.raw; // the probe at attach time
      await env.prisma.$transaction((tx) => tx.book.create({ data: book('In a transaction') }));
      await env.prisma.book.create({ data: book('Alone') });
      expect(calls.raw - before).toBe(0);
      expect(await eventTitles()).toEqual(['Alone', 'In a transaction']);
    });

    it("without the wrapper, outbox rows take Prisma's raw-statement path, as before", async () => {
      const { calls, extend } = counting();
      env = await makeEnv({ app, store: 'app', extend });
      const before = calls.raw;
      await env.prisma.$transaction((tx) => tx.book.create({ data: book('In a transaction') }));
      await env.prisma.book.create({ data: book('Alone') });
      expect(calls.raw - before).toBe(2);
      expect(await eventTitles()).toEqual(['Alone', 'In a transaction']);
    });

    it('concurrent interactive transactions each write their own outbox row; the rolled-back ones none', async () => {
      env = await makeEnv({ app, store: 'app', wrapped: true });
      const prisma = env.prisma;
      // More transactions than the pool has connections (4) on PostgreSQL; one at a time on SQLite's one connection.
      await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          rolledBack(
            prisma.$transaction(async (tx) => {
              await tx.book.create({ data: book(`T${i}`) });
              await sleep(5);
              await tx.book.create({ data: book(`T${i} again`) });
              if (i % 2 === 1) throw ROLLBACK;
            }),
          ),
        ),
      );
      const committed = [0, 2, 4, 6].flatMap((i) => [`T${i}`, `T${i} again`]).sort();
      expect((await titles()).sort()).toEqual(committed);
      expect(await eventTitles()).toEqual(committed);
      // Each event's row is the row its own transaction wrote.
      const rows = await env.plain.book.findMany({});
      const events = await env.hooks.recentEvents('book.added', { owner: 'alice', limit: 100 });
      for (const event of events) expect(rows).toContainEqual(event.data);
    });

    it('a write outside a transaction that fails leaves no event, and the writes after it work', async () => {
      env = await makeEnv({ app, store: 'app', wrapped: true });
      const { id } = await env.prisma.book.create({ data: book('First') });
      await expect(env.prisma.book.create({ data: { id, ...book('Same id') } })).rejects.toThrow();
      await env.prisma.book.create({ data: book('Second') });
      await env.prisma.book.upsert({ where: { id: 999 }, create: { id: 999, ...book('Upserted') }, update: {} });
      expect(await titles()).toEqual(['First', 'Second', 'Upserted']);
      expect(await eventTitles()).toEqual(['First', 'Second', 'Upserted']);
    });

    // SQLite only: its one connection is held by the open transaction, so the write's own transaction cannot start.
    if (app === 'sqlite') it('a write outside a transaction that cannot get one gives up after maxWait instead of waiting for ever', async () => {
      env = await makeEnv({ app, store: 'app', wrapped: true, maxWait: 200 });
      const prisma = env.prisma;
      // Another request's transaction, open until the write below has settled.
      const other = await openTransaction(prisma, 'Other');
      const waiting = await prisma.book.create({ data: book('Waiting') }).catch((error: unknown) => error);
      await other.end();
      expect(waiting).toBeInstanceOf(Error);
      expect((waiting as Error).message).toMatch(/within 200 ms/);
      await prisma.book.create({ data: book('After') });
      expect(await titles()).toEqual(['Other', 'After']);
      expect(await eventTitles()).toEqual(['After', 'Other']);
    });

    // The timer that watches for maxWait was armed by an earlier write: the waiting write is still given its own maxWait.
    if (app === 'sqlite') it('a write that waits after earlier writes outside a transaction gives up at its own maxWait, not theirs', async () => {
      const maxWait = 600;
      env = await makeEnv({ app, store: 'app', wrapped: true, maxWait });
      const prisma = env.prisma;
      await prisma.book.create({ data: book('Earlier') });
      await sleep(maxWait / 2);
      const other = await openTransaction(prisma, 'Other');
      const asked = Date.now();
      const waiting = await prisma.book.create({ data: book('Waiting') }).catch((error: unknown) => error);
      const waited = Date.now() - asked;
      await other.end();
      expect((waiting as Error).message).toMatch(/within 600 ms/);
      // A lower bound only: a loaded machine makes the wait longer, never shorter.
      expect(waited).toBeGreaterThanOrEqual(maxWait);
      await prisma.book.create({ data: book('After') });
      expect(await eventTitles()).toEqual(['After', 'Earlier', 'Other']);
    });

    it('wakes the dispatcher once per committed write, in a transaction and outside one, and not for a rolled-back one', async () => {
      env = await makeEnv({ app, store: 'app', wrapped: true });
      const notify = vi.spyOn(env.hooks, 'notify');
      try {
        await env.prisma.book.create({ data: book('Alone') });
        await env.prisma.$transaction((tx) => tx.book.create({ data: book('In a transaction') }));
        await rolledBack(
          env.prisma.$transaction(async (tx) => {
            await tx.book.create({ data: book('Rolled back') });
            throw ROLLBACK;
          }),
        );
        expect(notify).toHaveBeenCalledTimes(2);
      } finally {
        notify.mockRestore();
      }
    });

    it('writes outside a transaction share one maxWait timer instead of setting one each', async () => {
      // A maxWait no other timer of the process uses, so that only this watch's timers are counted.
      const maxWait = 29_999;
      env = await makeEnv({ app, store: 'app', wrapped: true, maxWait });
      const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
      try {
        for (let i = 0; i < 10; i++) await env.prisma.book.create({ data: book(`Book ${i}`) });
        // On SQLite none: with its one connection free, each held transaction begins at once, with nothing to wait for.
        expect(setTimeoutSpy.mock.calls.filter(([, delay]) => delay === maxWait)).toHaveLength(app === 'sqlite' ? 0 : 1);
      } finally {
        setTimeoutSpy.mockRestore();
      }
      expect((await eventTitles()).length).toBe(10);
    });

    it('a rolled-back transaction takes its outbox rows with it', async () => {
      env = await makeEnv({ app, store: 'app', wrapped: true });
      await env.prisma.book.create({ data: book('Kept') });
      await rolledBack(
        env.prisma.$transaction(async (tx) => {
          await tx.book.create({ data: book('Rolled back') });
          await tx.book.create({ data: book('Rolled back too') });
          throw ROLLBACK;
        }),
      );
      expect(await titles()).toEqual(['Kept']);
      expect(await eventTitles()).toEqual(['Kept']);
    });
  });
}

/** Forwards every member of `target` (methods bound to it: driver adapters keep state in private fields), with some replaced. */
function forwarding<T extends object>(target: T, members: Record<string, unknown>): T {
  return new Proxy(target, {
    get(object, key) {
      if (typeof key === 'string' && Object.hasOwn(members, key)) return members[key];
      const value: unknown = Reflect.get(object, key, object);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
  });
}

interface WatchedTransaction {
  readonly client?: unknown;
  executeRaw(query: { readonly sql: string }): Promise<number>;
}

/**
 * A driver adapter factory whose transactions record the SQL of each statement run through their `executeRaw` (the
 * public path); the adapter and its transactions carry as `client` what `client(adapterOrTransaction)` returns (by
 * default their own). `calls.starts` counts the adapter's own `startTransaction` calls.
 */
function watchedDriver(client: (transaction: WatchedTransaction) => unknown = (transaction) => transaction.client) {
  const publicStatements: string[] = [];
  const calls = { starts: 0 };
  const wrap = <F extends { connect(): Promise<object> }>(factory: F): F =>
    forwarding(factory, {
      connect: async () => {
        const adapter = (await factory.connect()) as WatchedTransaction & { startTransaction(isolationLevel?: string): Promise<WatchedTransaction> };
        return forwarding(adapter, {
          client: client(adapter),
          startTransaction: async (isolationLevel?: string) => {
            calls.starts++;
            const transaction = await adapter.startTransaction(isolationLevel);
            return forwarding(transaction, {
              client: client(transaction),
              executeRaw: (query: { readonly sql: string }) => {
                publicStatements.push(query.sql);
                return transaction.executeRaw(query);
              },
            });
          },
        });
      },
    });
  return { wrap, publicStatements, calls };
}

describe("resthooks/prisma, resthooksAdapter(): outbox statements on the transaction's better-sqlite3 Database (SQLite), the public path otherwise", () => {
  let env: Env | undefined;
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });
  const titles = () => bookTitles(env!);
  const eventTitles = () => bookEventTitles(env!);
  const outboxStatements = (statements: readonly string[]) => statements.filter((sql) => sql.includes(outboxTable('sqlite'))).length;
  const commits = (statements: readonly string[]) => statements.filter((sql) => sql === 'COMMIT').length;
  /** Two writes in `$transaction`, two outside one (in a held transaction), one rolled back, then the rows and events that must result. */
  const writeFive = async () => {
    const prisma = env!.prisma;
    for (const n of [1, 2]) {
      await prisma.$transaction((tx) => tx.book.create({ data: book(`In a transaction ${n}`) }));
      await prisma.book.create({ data: book(`Alone ${n}`) });
    }
    await rolledBack(
      prisma.$transaction(async (tx) => {
        await tx.book.create({ data: book('Rolled back') });
        throw ROLLBACK;
      }),
    );
    const kept = ['In a transaction 1', 'Alone 1', 'In a transaction 2', 'Alone 2'];
    expect(await titles()).toEqual(kept);
    expect(await eventTitles()).toEqual([...kept].sort());
  };

  it("runs the outbox INSERT, and a held transaction's COMMIT, on the transaction's client, the INSERT prepared once", async () => {
    const prepared: string[] = [];
    // One watcher per Database, as the adapter has one: statements are cached per Database object.
    const watchers = new WeakMap<object, object>();
    const watch = (database: { prepare(sql: string): unknown }) =>
      forwarding(database, {
        prepare: (sql: string) => {
          prepared.push(sql);
          return database.prepare(sql);
        },
      });
    const driver = watchedDriver((transaction) => {
      const database = transaction.client as { prepare(sql: string): unknown };
      let watcher = watchers.get(database);
      if (!watcher) watchers.set(database, (watcher = watch(database)));
      return watcher;
    });
    env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true, driver: driver.wrap });
    // Synchronous statements: the events are recorded with modelSync, without model()'s awaits.
    const modelSync = vi.spyOn(env.hooks, 'modelSync');
    await writeFive();
    expect(modelSync).toHaveBeenCalledTimes(4);
    expect(outboxStatements(driver.publicStatements)).toBe(0);
    // Prisma's own COMMITs of the two committed interactive transactions; the held transactions' went to the client.
    expect(commits(driver.publicStatements)).toBe(2);
    expect(prepared.filter((sql) => sql.includes(outboxTable('sqlite')))).toHaveLength(1);
    expect(prepared.filter((sql) => sql === 'COMMIT')).toHaveLength(1);
  });

  // A driver adapter other than @prisma/adapter-better-sqlite3 7.x may have no `client`, or something else under that name.
  for (const [what, client] of [
    ['has no client', () => undefined],
    ['has a client that is no better-sqlite3 Database', () => ({ prepare: 'not a function', inTransaction: true })],
    ['has a better-sqlite3 Database with no transaction open on it', () => new Database(':memory:')],
  ] as const) {
    it(`takes Prisma's public path when the driver transaction ${what}`, async () => {
      const driver = watchedDriver(client);
      env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true, driver: driver.wrap });
      await writeFive();
      // One outbox INSERT per committed write, and each held transaction's COMMIT, through executeRaw.
      expect(outboxStatements(driver.publicStatements)).toBe(4);
      expect(commits(driver.publicStatements)).toBe(4);
    });
  }

  it('takes the public path on PostgreSQL, whose driver transactions hold a pg client', async () => {
    const driver = watchedDriver();
    env = await makeEnv({ app: 'postgres', store: 'app', wrapped: true, driver: driver.wrap });
    await writeFive();
    expect(driver.publicStatements.filter((sql) => sql.includes(outboxTable('postgres')))).toHaveLength(4);
    expect(commits(driver.publicStatements)).toBe(4);
  });

  it("begins a write's held transaction on the adapter's connection at once, not through the adapter's startTransaction", async () => {
    const driver = watchedDriver();
    env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true, driver: driver.wrap });
    const before = driver.calls.starts;
    for (let i = 0; i < 3; i++) await env.prisma.book.create({ data: book(`Alone ${i}`) });
    await env.prisma.book.upsert({ where: { id: 100 }, create: { id: 100, ...book('Upserted') }, update: {} });
    expect(driver.calls.starts - before).toBe(0);
    // Prisma's own transactions still start through the adapter.
    await env.prisma.$transaction((tx) => tx.book.create({ data: book('In a transaction') }));
    expect(driver.calls.starts - before).toBe(1);
    expect(await eventTitles()).toEqual(['Alone 0', 'Alone 1', 'Alone 2', 'In a transaction', 'Upserted']);
  });

  describe("keeps Prisma's transactions and held ones apart on the one connection", () => {
    // Prisma runs a query once it is awaited (`then`): these run when called.
    const alone = (title: string) => Promise.resolve(env!.prisma.book.create({ data: book(title) }));
    const inTransaction = (title: string) => Promise.resolve(env!.prisma.$transaction((tx) => tx.book.create({ data: book(title) })));
    const rolledBackTransaction = (title: string) =>
      rolledBack(
        env!.prisma.$transaction(async (tx) => {
          await tx.book.create({ data: book(title) });
          throw ROLLBACK;
        }),
      );
    const settled = async (writes: ReadonlyArray<Promise<unknown>>, kept: readonly string[]) => {
      const outcomes = await Promise.allSettled(writes);
      expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
      expect((await titles()).sort()).toEqual([...kept].sort());
      expect(await eventTitles()).toEqual([...kept].sort());
    };

    it('a transaction asked for while a held one is open waits for it to end', async () => {
      // The book titled 'Slow' stays in its held transaction, after its INSERT, until `release()`: its event's
      // schema validates asynchronously, and the event is recorded before COMMIT.
      let holding!: () => void;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      const slowToCheck: StandardSchemaV1 = {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: async (value) => {
            if ((value as { title: string }).title === 'Slow') holding(), await released;
            return { value };
          },
        },
      };
      env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true, hooks: { schemas: { 'book.added': slowToCheck } } });
      const slow = alone('Slow');
      await held;
      const during = [inTransaction('In a transaction'), rolledBackTransaction('Rolled back'), alone('Alone')];
      await sleep(50);
      release();
      await settled([slow, ...during], ['Slow', 'In a transaction', 'Alone']);
    });

    it('a held transaction does not begin while a transaction is starting, nor the reverse', async () => {
      env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true });
      // Started in one tick: a $transaction whose start is under way when writes outside one come, and the reverse.
      const writes = Array.from({ length: 12 }, (_, i) => (i % 3 === 1 ? inTransaction(`T${i}`) : i % 3 === 2 ? rolledBackTransaction(`R${i}`) : alone(`A${i}`)));
      await settled(writes, [...[0, 3, 6, 9].map((i) => `A${i}`), ...[1, 4, 7, 10].map((i) => `T${i}`)]);
    });
  });

  it("surfaces the database's error for an outbox row it refuses, and keeps neither the write nor the row", async () => {
    const driver = watchedDriver();
    env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true, driver: driver.wrap });
    await env.plain.$executeRawUnsafe(
      `create trigger refuse_book_added before insert on ${outboxTable('sqlite')} when json_extract(new.data, '$.title') like 'Refused%' begin select raise(abort, 'outbox refused'); end`,
    );
    const inTransaction = await env.prisma.$transaction((tx) => tx.book.create({ data: book('Refused in a transaction') })).catch((error: unknown) => error);
    const alone = await env.prisma.book.create({ data: book('Refused alone') }).catch((error: unknown) => error);
    for (const error of [inTransaction, alone]) {
      expect(error).toBeInstanceOf(OutboxWriteError);
      expect(String((error as Error).cause)).toMatch(/outbox refused/);
    }
    await env.prisma.book.create({ data: book('Kept') });
    expect(await titles()).toEqual(['Kept']);
    expect(await eventTitles()).toEqual(['Kept']);
    expect(outboxStatements(driver.publicStatements)).toBe(0);
  });

  it("records an event whose schema validates asynchronously, which only hooks.model() can wait for", async () => {
    const checked: StandardSchemaV1 = { '~standard': { version: 1, vendor: 'test', validate: async (value) => ({ value: { ...(value as object), checked: true } }) } };
    env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true, hooks: { schemas: { 'book.added': checked } } });
    await env.prisma.$transaction((tx) => tx.book.create({ data: book('In a transaction') }));
    await env.prisma.book.create({ data: book('Alone') });
    const events = await env.hooks.recentEvents('book.added', { owner: 'alice', limit: 10 });
    expect(events.map((event) => event.data).sort((a, b) => (a as { id: number }).id - (b as { id: number }).id)).toEqual([
      { id: 1, ...book('In a transaction'), checked: true },
      { id: 2, ...book('Alone'), checked: true },
    ]);
  });

  it('rolls back a held transaction whose COMMIT fails, and the writes after it work', async () => {
    env = await makeEnv({ app: 'sqlite', store: 'app', wrapped: true });
    // A deferred foreign key is checked at COMMIT: a book titled 'Breaks the commit' makes the COMMIT fail.
    await env.plain.$executeRawUnsafe('create table dangling (shelf integer references shelves(id) deferrable initially deferred)');
    await env.plain.$executeRawUnsafe("create trigger break_commit after insert on books when new.title = 'Breaks the commit' begin insert into dangling (shelf) values (999); end");
    await env.prisma.$executeRawUnsafe('pragma foreign_keys = on');
    const error = await env.prisma.book.create({ data: book('Breaks the commit') }).catch((caught: unknown) => caught);
    // better-sqlite3's words on the client, the driver adapter's on its public path.
    expect(String(error)).toMatch(/FOREIGN KEY constraint failed|ForeignKeyConstraintViolation/);
    await env.prisma.book.create({ data: book('After') });
    await env.prisma.$transaction((tx) => tx.book.create({ data: book('After, in a transaction') }));
    expect(await titles()).toEqual(['After', 'After, in a transaction']);
    expect(await eventTitles()).toEqual(['After', 'After, in a transaction']);
  });
});

describe('resthooks/prisma in a minified bundle', () => {
  it('fires: model names come from the generated client, not from class names', async () => {
    // A Next.js server build or esbuild --minify renames every class; the app, its generated client, resthooks' core
    // and the adapter are bundled and minified together here, the packages left to node_modules.
    const dir = generated.sqlite.dir;
    const project = fileURLToPath(new URL('../../', import.meta.url));
    const app = join(dir, 'minified-app.ts');
    writeFileSync(
      app,
      `import Database from 'better-sqlite3';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from './generated/client.ts';
import { createHooks, sqliteStore } from ${JSON.stringify(join(project, 'src/index.ts'))};
import { withResthooks } from ${JSON.stringify(join(project, 'src/adapters/orm/prisma-adapter.ts'))};
const file = process.argv[2];
const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(new Database(file)) });
await hooks.migrate();
const prisma = await withResthooks(new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: 'file:' + file }) }), hooks);
await prisma.$transaction((tx) => tx.book.create({ data: { title: 'Minified', pages: 1, ownerId: 'alice' } }));
const events = await hooks.recentEvents('book.added', { owner: 'alice' });
console.log(JSON.stringify({ mode: prisma.$resthooks.mode, titles: events.map((event) => event.data.title) }));
await prisma.$disconnect();
await hooks.close();
`,
    );
    const bundle = join(dir, 'minified-app.mjs');
    await build({ entryPoints: [app], outfile: bundle, bundle: true, minify: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
    expect(readFileSync(bundle, 'utf8')).not.toContain('PrismaAdapter'); // the adapter's own class was renamed too
    const database = join(dir, 'minified.db');
    const setup = new Database(database);
    for (const sql of PRISMA_TABLES.sqlite) setup.exec(sql);
    setup.close();
    const { stdout } = await promisify(execFile)(process.execPath, [bundle, database], { cwd: dir, timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({ mode: 'transaction', titles: ['Minified'] });
  });
});
