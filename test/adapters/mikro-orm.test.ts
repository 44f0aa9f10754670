/**
 * resthooks/mikro-orm on real databases: the ORM conformance suite on SQLite (better-sqlite3) and on
 * PostgreSQL, each with the store in the app's database (outbox written in the app's transaction) and
 * in another one (appended after commit); then what is MikroORM's own: several flushes in one
 * `em.transactional()`, a plain `em.flush()`, `nativeUpdate` / `nativeDelete` (no events), and model
 * names taken from the table name. Entities are `EntitySchema`s with `name` and `tableName`.
 */
import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EntitySchema, MikroORM as BaseMikroORM, type EntityManager, type EventSubscriber } from '@mikro-orm/core';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import type { EntityManager as SqlEntityManager } from '@mikro-orm/knex';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachMikroOrm, mikroOrmTx, type MikroOrmHooks, type MikroOrmHooksOptions } from '../../src/adapters/orm/mikro-orm-adapter.js';
import type { Hooks } from '../../src/index.js';
import { BOOK_EVENTS, ormAdapterSuite, type Book, type BookWriter, type OrmAdapterHarness } from '../orm-adapter.suite.js';
import { TestDatabase, type Engine } from '../support/database.js';
import { eventually, tempDir, testHooks } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { openAll, ROLLBACK, rolledBack, settleDelivery, sleep } from '../support/orm-harness.js';

const BookEntity = new EntitySchema<Book>({
  name: 'Book',
  tableName: 'books',
  properties: {
    id: { type: 'number', primary: true, autoincrement: true },
    title: { type: 'text' },
    pages: { type: 'number' },
    ownerId: { type: 'string', fieldName: 'owner_id' },
  },
});

/** Not in the events map: writing it must cost nothing. */
const ShelfEntity = new EntitySchema<{ id: number; name: string }>({
  name: 'Shelf',
  tableName: 'shelves',
  properties: { id: { type: 'number', primary: true, autoincrement: true }, name: { type: 'string' } },
});

/** Named in the events map by its table (`magazines`), as a minified app whose class names are mangled would. */
interface Magazine {
  id: number;
  title: string;
  ownerId: string;
  /** `hidden`: MikroORM's serialization leaves it out, and so must the payload. */
  editorNotes?: string;
}
const MagazineEntity = new EntitySchema<Magazine>({
  name: 'MagazineRecord',
  tableName: 'magazines',
  properties: {
    id: { type: 'number', primary: true, autoincrement: true },
    title: { type: 'string' },
    ownerId: { type: 'string', fieldName: 'owner_id' },
    editorNotes: { type: 'string', nullable: true, hidden: true },
  },
});

const EVENTS = { ...BOOK_EVENTS, 'magazine.added': 'magazines.created' } as const;
type EventName = keyof typeof EVENTS;

interface Setup {
  app: Engine;
  /** 'app': the resthooks tables live in the app's database; 'separate': in another SQLite file. */
  store: 'app' | 'separate';
  options?: MikroOrmHooksOptions;
  /** MikroORM's `implicitTransactions` (default true: a plain flush runs in a transaction of its own). */
  implicitTransactions?: boolean;
}

interface Env {
  orm: BaseMikroORM;
  hooks: Hooks<EventName>;
  mikro: MikroOrmHooks;
  receiver: Receiver;
  /** Set to make the next COMMITs fail in another subscriber's `beforeTransactionCommit`. */
  refuse: { when: 'at once' | 'after the outbox write' | undefined };
  close(): Promise<void>;
}

async function makeEnv(setup: Setup): Promise<Env> {
  return openAll(async (closers, close) => {
    const database = new TestDatabase(setup.app);
    await database.init();
    closers.push(() => database.close()); // last: the ORM and the store's pool end first
    const entities = [BookEntity, ShelfEntity, MagazineEntity];
    const orm =
      setup.app === 'sqlite'
        ? await BaseMikroORM.init({ driver: BetterSqliteDriver, dbName: database.url, entities, debug: false, implicitTransactions: setup.implicitTransactions })
        : await BaseMikroORM.init({ driver: PostgreSqlDriver, clientUrl: database.url, entities, debug: false, implicitTransactions: setup.implicitTransactions, pool: { min: 0, max: 5 } });
    closers.push(() => orm.close(true));
    // The app's tables first: the store then adds its own beside them.
    await orm.schema.createSchema();

    // A separate store is testHooks' own temp SQLite file.
    const store = setup.store === 'app' ? database.dialect({}, { max: 5 }) : undefined;
    const { hooks, close: closeHooks } = await testHooks({ events: EVENTS, store });
    closers.push(closeHooks);
    const mikro = await attachMikroOrm(orm, hooks, setup.options);
    closers.push(() => mikro.detach());
    // Registered after resthooks' subscriber: MikroORM runs them in turn, so this one refuses a COMMIT
    // once resthooks has written its outbox rows.
    const refuse: Env['refuse'] = { when: undefined };
    const refusing: EventSubscriber = {
      async beforeTransactionCommit() {
        if (refuse.when === undefined) return;
        if (refuse.when === 'after the outbox write') await sleep(150);
        throw new Error('commit refused');
      },
    };
    orm.em.getEventManager().registerSubscriber(refusing);
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    return { orm, hooks, mikro, receiver, refuse, close };
  });
}

const managers = new WeakMap<BookWriter, EntityManager>();
const managerOf = (books: BookWriter): EntityManager => managers.get(books)!;

/** Writes through `em`; with `fork`, each write on a fresh fork of it (a plain `em.flush()`, no transaction of the app's). */
function bookWriter(em: EntityManager, fork: boolean): BookWriter {
  const on = () => (fork ? em.fork() : em);
  const writer: BookWriter = {
    async create(book) {
      const m = on();
      const entity = m.create(BookEntity, { ...book });
      await m.persistAndFlush(entity);
      return { ...entity };
    },
    async update(id, patch) {
      const m = on();
      const book = await m.findOneOrFail(BookEntity, { id });
      m.assign(book, patch);
      await m.flush();
    },
    async remove(id) {
      const m = on();
      await m.removeAndFlush(await m.findOneOrFail(BookEntity, { id }));
    },
  };
  managers.set(writer, em);
  return writer;
}

/** Runs `work` in `em.transactional()` (a savepoint when `em` is already in a transaction), then rolls it back if asked. */
async function inTransaction(em: EntityManager, work: (books: BookWriter) => Promise<void>, rollback: boolean): Promise<void> {
  await rolledBack(
    em.transactional(async (inner) => {
      await work(bookWriter(inner, false));
      if (rollback) throw ROLLBACK;
    }),
  );
}

async function query(orm: BaseMikroORM, sql: string): Promise<Array<Record<string, unknown>>> {
  return orm.em.getConnection().execute<Array<Record<string, unknown>>>(sql);
}

function harness(setup: Setup) {
  return async (): Promise<OrmAdapterHarness> => {
    const env = await makeEnv(setup);
    return {
      hooks: env.hooks,
      receiver: env.receiver,
      engine: setup.app,
      mode: env.mikro.mode,
      transaction: (work, { rollback = false } = {}) => inTransaction(env.orm.em.fork(), work, rollback),
      outside: bookWriter(env.orm.em, true),
      query: (sql) => query(env.orm, sql),
      async writeUnmapped({ transaction }) {
        const em = env.orm.em.fork();
        if (transaction) await em.transactional((m) => void m.persist(m.create(ShelfEntity, { name: 'Sci-fi' })));
        else await em.persistAndFlush(em.create(ShelfEntity, { name: 'Sci-fi' }));
      },
      savepoint: (outer, work, { rollback = false } = {}) => inTransaction(managerOf(outer), work, rollback),
      async refuseCommit(work, when) {
        env.refuse.when = when;
        try {
          await inTransaction(env.orm.em.fork(), work, false);
          return undefined;
        } catch (error) {
          return error;
        } finally {
          env.refuse.when = undefined;
        }
      },
      close: env.close,
    };
  };
}

const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];

for (const app of ENGINES) {
  const mikro = { savepoints: true, commitRace: true };
  ormAdapterSuite(`MikroORM on ${app}, store in the app's database (outbox in the transaction)`, harness({ app, store: 'app' }), { mode: 'transaction', ...mikro });
  ormAdapterSuite(`MikroORM on ${app}, store in a separate SQLite file (after commit)`, harness({ app, store: 'separate' }), { mode: 'after-commit', ...mikro });
}

for (const app of ENGINES) {
  for (const store of ['app', 'separate'] as const) {
    describe(`resthooks/mikro-orm on ${app}, store ${store === 'app' ? "in the app's database" : 'separate'}`, () => {
      let env: Env;
      beforeEach(async () => {
        env = await makeEnv({ app, store });
      });
      afterEach(async () => {
        await env.close();
      });
      const subscribe = (event: EventName, owner = 'alice') => env.hooks.subscriptions.create({ owner, event, target: `${env.receiver.url}/${owner}` });
      const settle = () => settleDelivery(env.hooks);

      it('em.transactional() with several flushes: each event carries its flush, all arrive after COMMIT', async () => {
        for (const event of ['book.added', 'book.changed', 'book.removed'] as const) await subscribe(event);
        await env.orm.em.fork().transactional(async (em) => {
          const a = em.create(BookEntity, { title: 'A', pages: 1, ownerId: 'alice' });
          const b = em.create(BookEntity, { title: 'B', pages: 2, ownerId: 'alice' });
          await em.persistAndFlush([a, b]);
          a.title = 'A2';
          await em.flush();
          em.remove(b);
          a.pages = 10;
          await em.flush();
          await sleep(150); // flushed, not committed: nothing may be on its way yet
          expect(env.receiver.received).toHaveLength(0);
        });
        await env.receiver.waitFor(5);
        await settle();
        const got = env.receiver.received.map((r) => `${r.json.hook.event} ${r.json.data.title} ${r.json.data.pages} ${JSON.stringify(r.json.changes ?? null)}`);
        expect(got.sort()).toEqual(['book.added A 1 null', 'book.added B 2 null', 'book.changed A2 1 ["title"]', 'book.changed A2 10 ["pages"]', 'book.removed B 2 null']);
      });

      it('savepoints in any order and depth: a released one joins the level around it, a rolled-back one (and all inside it) is dropped', async () => {
        await subscribe('book.added');
        const create = (em: EntityManager, title: string) => em.persistAndFlush(em.create(BookEntity, { title, pages: 1, ownerId: 'alice' }));
        const nested = (em: EntityManager, work: (inner: EntityManager) => Promise<void>, rollback = false) =>
          rolledBack(
            em.transactional(async (inner) => {
              await work(inner);
              if (rollback) throw ROLLBACK;
            }),
          );
        await env.orm.em.fork().transactional(async (em) => {
          // Released, then a sibling at the same level rolled back: the released one stays.
          await nested(em, (inner) => create(inner, 'Released'));
          await nested(em, (inner) => create(inner, 'Sibling, rolled back'), true);
          // A write two levels down, in a savepoint whose own level wrote nothing: released, then its parent rolled back.
          await nested(em, (middle) => nested(middle, (inner) => create(inner, 'Deep, parent rolled back')), true);
          // Two levels down, both released.
          await nested(em, (middle) => nested(middle, (inner) => create(inner, 'Deep, released')));
          // em.begin() / em.commit() / em.rollback() on a fork: the same savepoints by hand.
          const manual = em.fork();
          await manual.begin({ ctx: em.getTransactionContext() });
          await create(manual, 'Manual, rolled back');
          await manual.rollback();
          await create(em, 'Outer');
        });
        await env.receiver.waitFor(3);
        await settle();
        expect(env.receiver.received.map((r) => r.json.data.title).sort()).toEqual(['Deep, released', 'Outer', 'Released']);
        expect((await env.orm.em.fork().find(BookEntity, {})).map((b) => b.title).sort()).toEqual(['Deep, released', 'Outer', 'Released']);
      });

      it('data with quotes, placeholders, backslashes and non-ASCII text arrives unchanged', async () => {
        await subscribe('book.added');
        const title = `What? $1 :name \\ 'quoted' "double" \u00fcn\u00efcode \u{1F680} ?? $$ end`;
        await env.orm.em.fork().transactional((em) => void em.persist(em.create(BookEntity, { title, pages: 1, ownerId: 'alice' })));
        const [request] = await env.receiver.waitFor(1);
        expect(request!.json.data.title).toBe(title);
      });

      it('detach() stops firing, also for a transaction already open', async () => {
        await subscribe('book.added');
        await env.orm.em.fork().transactional(async (em) => {
          await em.persistAndFlush(em.create(BookEntity, { title: 'Buffered, then detached', pages: 1, ownerId: 'alice' }));
          env.mikro.detach();
        });
        const em = env.orm.em.fork();
        await em.persistAndFlush(em.create(BookEntity, { title: 'After detach', pages: 2, ownerId: 'alice' }));
        await settle();
        expect(env.receiver.received).toHaveLength(0);
        expect(await em.count(BookEntity, {})).toBe(2);
      });

      it("updated payloads name the changed properties (not columns) in 'changes'", async () => {
        await subscribe('book.changed');
        await subscribe('book.changed', 'bob');
        const em = env.orm.em.fork();
        const book = em.create(BookEntity, { title: 'Moving', pages: 1, ownerId: 'alice' });
        await em.persistAndFlush(book);
        book.ownerId = 'bob';
        await em.flush();
        const requests = await env.receiver.waitFor(2);
        expect(requests.map((r) => r.json.changes)).toEqual([['ownerId'], ['ownerId']]);
      });

      // PostgreSQL only: on SQLite a COMMIT refused for a deferred constraint leaves SQLite's transaction open, and
      // MikroORM (Knex) then fails every later transaction on that connection ("Transaction query already
      // complete"), with or without resthooks (docs/orms.md).
      if (app === 'postgres') it('a COMMIT the database refuses (a deferred constraint) keeps no row and fires nothing; the next transaction fires', async () => {
        await subscribe('book.added');
        await query(env.orm, 'create table parents (id integer primary key)');
        await query(env.orm, 'create table children (id integer primary key, parent integer references parents (id) deferrable initially deferred)');
        const refused = env.orm.em.fork().transactional(async (em) => {
          await em.persistAndFlush(em.create(BookEntity, { title: 'Orphaned child', pages: 1, ownerId: 'alice' }));
          await em.getConnection().execute('insert into children (id, parent) values (1, 999)', [], 'run', em.getTransactionContext()); // checked only at COMMIT
        });
        await expect(refused).rejects.toThrow(/foreign key/i);
        await env.orm.em.fork().transactional((em) => void em.persist(em.create(BookEntity, { title: 'Next', pages: 2, ownerId: 'alice' })));
        const [request] = await env.receiver.waitFor(1);
        expect(request!.json.data.title).toBe('Next');
        await settle();
        expect(env.receiver.received).toHaveLength(1);
        expect((await env.orm.em.fork().find(BookEntity, {})).map((b) => b.title)).toEqual(['Next']);
      });

      if (app === 'sqlite') it('a COMMIT SQLite refuses (a deferred constraint): the write and its outbox row stay together in the transaction MikroORM leaves open; nothing is delivered', async () => {
        await subscribe('book.added');
        await query(env.orm, 'create table parents (id integer primary key)');
        await query(env.orm, 'create table children (id integer primary key, parent integer references parents (id) deferrable initially deferred)');
        const refused = env.orm.em.fork().transactional(async (em) => {
          await em.persistAndFlush(em.create(BookEntity, { title: 'Orphaned child', pages: 1, ownerId: 'alice' }));
          await em.getConnection().execute('insert into children (id, parent) values (1, 999)', [], 'run', em.getTransactionContext());
        });
        await expect(refused).rejects.toThrow(/foreign key/i);
        // MikroORM's one connection is still inside SQLite's transaction: it sees the book, and, in 'transaction' mode, its event.
        expect(await query(env.orm, 'select title from books')).toEqual([{ title: 'Orphaned child' }]);
        if (store === 'app') expect(await query(env.orm, 'select name from resthooks_events')).toEqual([{ name: 'book.added' }]);
        // Not hooks.idle(): the store's own connection waits for SQLite's write lock, which that open transaction holds.
        await sleep(300);
        expect(env.receiver.received).toHaveLength(0);
        await expect(env.orm.em.fork().transactional((em) => void em.persist(em.create(BookEntity, { title: 'Next', pages: 2, ownerId: 'alice' })))).rejects.toThrow(/already complete/);
      });

      it('a plain em.flush() (its own implicit transaction) fires once it has committed', async () => {
        await subscribe('book.added');
        const em = env.orm.em.fork();
        const book = em.create(BookEntity, { title: 'Plain', pages: 1, ownerId: 'alice' });
        await em.persistAndFlush(book);
        // Recorded by the time the flush returns.
        const [stored] = await env.hooks.recentEvents('book.added', { owner: 'alice', limit: 1 });
        expect(stored?.data).toEqual({ id: book.id, title: 'Plain', pages: 1, ownerId: 'alice' });
        const [request] = await env.receiver.waitFor(1);
        expect(request!.json.data).toEqual({ id: book.id, title: 'Plain', pages: 1, ownerId: 'alice' });
      });

      it('with implicitTransactions: false a plain flush has no transaction: each event is recorded right after its write', async () => {
        const plain = await makeEnv({ app, store, implicitTransactions: false });
        try {
          await plain.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${plain.receiver.url}/alice` });
          const em = plain.orm.em.fork();
          const book = em.create(BookEntity, { title: 'No transaction', pages: 1, ownerId: 'alice' });
          await em.persistAndFlush(book);
          const [stored] = await plain.hooks.recentEvents('book.added', { owner: 'alice', limit: 1 });
          expect(stored?.data).toEqual({ id: book.id, title: 'No transaction', pages: 1, ownerId: 'alice' });
          await plain.receiver.waitFor(1);
        } finally {
          await plain.close();
        }
      });

      it("a plain em.flush() whose event cannot be made: refused in 'transaction' mode (no row), kept without its event after commit", async () => {
        await subscribe('book.added');
        const em = env.orm.em.fork();
        const flushing = em.persistAndFlush(em.create(BookEntity, { title: 'x'.repeat(300 * 1024), pages: 1, ownerId: 'alice' }));
        if (store === 'app') await expect(flushing).rejects.toMatchObject({ code: 'outbox_write_failed' });
        else await flushing;
        expect(await env.orm.em.fork().count(BookEntity, {})).toBe(store === 'app' ? 0 : 1);
        const next = env.orm.em.fork();
        await next.persistAndFlush(next.create(BookEntity, { title: 'Small', pages: 1, ownerId: 'alice' }));
        const [request] = await env.receiver.waitFor(1);
        expect(request!.json.data.title).toBe('Small');
        await settle();
        expect(env.receiver.received).toHaveLength(1);
      });

      it('nativeUpdate, nativeDelete, insert, upsert and the QueryBuilder fire nothing (no entity events); hooks.model() with mikroOrmTx fills the gap', async () => {
        for (const event of ['book.added', 'book.changed', 'book.removed'] as const) await subscribe(event);
        const em = env.orm.em.fork();
        const book = em.create(BookEntity, { title: 'Native', pages: 1, ownerId: 'alice' });
        await em.persistAndFlush(book);
        await env.receiver.waitFor(1);
        await em.nativeUpdate(BookEntity, { id: book.id }, { title: 'Native, renamed' });
        await (em as SqlEntityManager).createQueryBuilder(BookEntity).update({ pages: 9 }).where({ id: book.id }).execute();
        const inserted = await em.insert(BookEntity, { title: 'Inserted natively', pages: 1, ownerId: 'alice' });
        await em.upsert(BookEntity, { id: inserted as number, title: 'Upserted', pages: 2, ownerId: 'alice' });
        await settle();
        expect(env.receiver.received).toHaveLength(1);
        await em.nativeDelete(BookEntity, { id: inserted as number });

        // The workaround: after a bulk write, fire the event yourself, in the same transaction.
        await env.orm.em.fork().transactional(async (m) => {
          await m.nativeUpdate(BookEntity, { id: book.id }, { title: 'Native, announced' });
          const row = await m.findOneOrFail(BookEntity, { id: book.id });
          await env.hooks.model('Book', 'updated', { ...row }, store === 'app' ? { tx: mikroOrmTx(m) } : {});
        });
        const [, announced] = await env.receiver.waitFor(2);
        expect(announced!.json.data).toEqual({ id: book.id, title: 'Native, announced', pages: 9, ownerId: 'alice' });
        if (store === 'app') {
          // The event written by hand is part of the transaction: rolled back with it.
          const rolledBack = env.orm.em.fork().transactional(async (m) => {
            await m.nativeUpdate(BookEntity, { id: book.id }, { title: 'Never' });
            await env.hooks.model('Book', 'updated', { ...(await m.findOneOrFail(BookEntity, { id: book.id })) }, { tx: mikroOrmTx(m) });
            throw ROLLBACK;
          });
          await expect(rolledBack).rejects.toBe(ROLLBACK);
          expect(await query(env.orm, "select name from resthooks_events where data like '%Never%'")).toEqual([]);
        }

        await em.nativeDelete(BookEntity, { id: book.id });
        await settle();
        expect(env.receiver.received).toHaveLength(2);
      });

      it("an entity named in the events map by its table name fires; one the map does not name writes nothing", async () => {
        await subscribe('magazine.added');
        const em = env.orm.em.fork();
        await em.transactional((m) => void m.persist(m.create(ShelfEntity, { name: 'Sci-fi' })));
        await em.transactional((m) => void m.persist(m.create(MagazineEntity, { title: 'Wired', ownerId: 'alice', editorNotes: 'not for subscribers' })));
        const [request] = await env.receiver.waitFor(1);
        expect(request!.json).toMatchObject({ hook: { event: 'magazine.added' }, data: { title: 'Wired', ownerId: 'alice' } });
        expect(request!.json.data).not.toHaveProperty('editorNotes');
        await settle();
        expect(env.receiver.received).toHaveLength(1);
      });

      it("changes: false leaves 'changes' out of updated payloads", async () => {
        const plain = await makeEnv({ app, store, options: { changes: false } });
        try {
          await plain.hooks.subscriptions.create({ owner: 'alice', event: 'book.changed', target: `${plain.receiver.url}/alice` });
          const em = plain.orm.em.fork();
          const book = em.create(BookEntity, { title: 'Plain', pages: 1, ownerId: 'alice' });
          await em.persistAndFlush(book);
          book.pages = 2;
          await em.flush();
          const [request] = await plain.receiver.waitFor(1);
          expect(request!.json.data.pages).toBe(2);
          expect(request!.json).not.toHaveProperty('changes');
        } finally {
          await plain.close();
        }
      });

      it("outbox 'auto' chose the mode the store's place allows", async () => {
        expect(env.mikro.mode).toBe(store === 'app' ? 'transaction' : 'after-commit');
        if (store === 'app') await eventually(async () => expect(await query(env.orm, 'select name from resthooks_events')).toEqual([]));
      });
    });
  }
}

describe('resthooks/mikro-orm in a minified bundle', () => {
  it("fires for an EntitySchema named without a class, and by table name for one with a class (whose name MikroORM takes from the mangled class)", async () => {
    // A Next.js server build or esbuild --minify renames every class: the app, resthooks' core and the
    // adapter are bundled and minified together here, the packages left to node_modules.
    const dir = tempDir();
    try {
      const project = fileURLToPath(new URL('../../', import.meta.url));
      symlinkSync(join(project, 'node_modules'), join(dir.path, 'node_modules'), 'dir');
      const app = join(dir.path, 'minified-app.ts');
      writeFileSync(
        app,
        `import Database from 'better-sqlite3';
import { EntitySchema, MikroORM } from '@mikro-orm/core';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { createHooks, sqliteStore } from ${JSON.stringify(join(project, 'src/index.ts'))};
import { attachMikroOrm } from ${JSON.stringify(join(project, 'src/adapters/orm/mikro-orm-adapter.ts'))};
class Magazine { id; title; ownerId; }
const props = { id: { type: 'number', primary: true }, title: { type: 'string' }, ownerId: { type: 'string' } };
// No class: the schema's name is the model name, untouched by the minifier.
const BookSchema = new EntitySchema({ name: 'Book', tableName: 'books', properties: props });
// With a class, MikroORM takes the (mangled) class name and ignores \`name\`: only the table name survives.
const MagazineSchema = new EntitySchema({ class: Magazine, name: 'Magazine', tableName: 'magazines', properties: props });
const file = process.argv[2];
const orm = await MikroORM.init({ driver: BetterSqliteDriver, dbName: file, entities: [BookSchema, MagazineSchema] });
await orm.schema.createSchema();
const hooks = createHooks({ events: { 'book.added': 'Book.created', 'magazine.added': 'magazines.created' }, store: sqliteStore(new Database(file)) });
await hooks.migrate();
const mikro = await attachMikroOrm(orm, hooks);
await orm.em.fork().transactional(async (em) => {
  em.persist(em.create(BookSchema, { title: 'Minified book', ownerId: 'alice' }));
  em.persist(em.create(Magazine, { title: 'Minified magazine', ownerId: 'alice' }));
});
const titles = [];
for (const event of ['book.added', 'magazine.added']) for (const row of await hooks.recentEvents(event, { owner: 'alice' })) titles.push(row.data.title);
console.log(JSON.stringify({ mode: mikro.mode, magazineModel: MagazineSchema.meta.className, titles: titles.sort() }));
await orm.close(true);
await hooks.close();
`,
      );
      const bundle = join(dir.path, 'minified-app.mjs');
      await build({ entryPoints: [app], outfile: bundle, bundle: true, minify: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
      expect(readFileSync(bundle, 'utf8')).not.toContain('ResthooksSubscriber'); // the adapter's own class was renamed too
      const { stdout } = await promisify(execFile)(process.execPath, [bundle, join(dir.path, 'app.db')], { cwd: dir.path, timeout: 60_000 });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { mode: string; magazineModel: string; titles: string[] };
      expect(result.magazineModel).not.toBe('Magazine');
      expect(result).toMatchObject({ mode: 'transaction', titles: ['Minified book', 'Minified magazine'] });
    } finally {
      dir.cleanup();
    }
  });
});
