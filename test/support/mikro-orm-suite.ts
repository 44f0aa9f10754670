/**
 * resthooks/mikro-orm on real databases, for one MikroORM version (6 and 7 share package names, so each
 * test file brings its own packages): the ORM conformance suite on SQLite (better-sqlite3) and on
 * PostgreSQL, each with the store in the app's database (outbox written in the app's transaction) and
 * in another one (appended after commit); then what is MikroORM's own: several flushes in one
 * `em.transactional()`, savepoints, a plain `em.flush()`, `nativeUpdate` / `nativeDelete` (no events),
 * and model names taken from the table name. Entities are `EntitySchema`s with `name` and `tableName`.
 */
import type { EntityManager, EntitySchema, EventSubscriber, MikroORM, Options } from '@mikro-orm/core';
import type { EntityManager as SqlEntityManager } from '@mikro-orm/knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachMikroOrm, mikroOrmTx, type MikroOrmHooks, type MikroOrmHooksOptions } from '../../src/adapters/orm/mikro-orm-adapter.js';
import type { Hooks } from '../../src/index.js';
import { BOOK_EVENTS, ormAdapterSuite, type Book, type BookWriter, type OrmAdapterHarness } from '../orm-adapter.suite.js';
import { TestDatabase, type Engine } from './database.js';
import { ALL_EVENTS } from './events.js';
import { eventually, testHooks } from './hooks.js';
import { startReceiver, type Receiver } from './receiver.js';
import { openAll, ROLLBACK, rolledBack, settleDelivery, sleep } from './orm-harness.js';

/**
 * One MikroORM version's classes. Typed with MikroORM 6's declarations, the only ones installed: what the
 * suite calls has the same shape in 7 (the differences are bridged below).
 */
export interface MikroOrmPackages {
  readonly version: 6 | 7;
  readonly EntitySchema: typeof EntitySchema;
  readonly MikroORM: typeof MikroORM;
  readonly SqliteDriver: NonNullable<Options['driver']>;
  readonly PostgreSqlDriver: NonNullable<Options['driver']>;
}

/** `persistAndFlush()` is gone in MikroORM 7; `persist().flush()` works in both. */
function flushPersisted(em: EntityManager, entity: object | object[]): Promise<void> {
  return em.persist(entity).flush();
}

function flushRemoved(em: EntityManager, entity: object): Promise<void> {
  return em.remove(entity).flush();
}

/** MikroORM 6 calls it `createSchema()`, 7 `create()`. */
async function createTables(orm: MikroORM): Promise<void> {
  const schema = orm.schema as unknown as { createSchema?(): Promise<void>; create(): Promise<void> };
  await (schema.createSchema ? schema.createSchema() : schema.create());
}

export function mikroOrmSuites(orms: MikroOrmPackages): void {
  const BookEntity = new orms.EntitySchema<Book>({
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
  const ShelfEntity = new orms.EntitySchema<{ id: number; name: string }>({
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
  const MagazineEntity = new orms.EntitySchema<Magazine>({
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
    orm: MikroORM;
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
          ? await orms.MikroORM.init({ driver: orms.SqliteDriver, dbName: database.url, entities, debug: false, implicitTransactions: setup.implicitTransactions })
          : await orms.MikroORM.init({ driver: orms.PostgreSqlDriver, clientUrl: database.url, entities, debug: false, implicitTransactions: setup.implicitTransactions, pool: { min: 0, max: 5 } });
      closers.push(() => orm.close(true));
      // The app's tables first: the store then adds its own beside them.
      await createTables(orm);

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
        await flushPersisted(m, entity);
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
        await flushRemoved(m, await m.findOneOrFail(BookEntity, { id }));
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

  async function query(orm: MikroORM, sql: string): Promise<Array<Record<string, unknown>>> {
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
          else await flushPersisted(em, em.create(ShelfEntity, { name: 'Sci-fi' }));
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
    ormAdapterSuite(`MikroORM ${orms.version} on ${app}, store in the app's database (outbox in the transaction)`, harness({ app, store: 'app' }), { mode: 'transaction', ...mikro });
    ormAdapterSuite(`MikroORM ${orms.version} on ${app}, store in a separate SQLite file (after commit)`, harness({ app, store: 'separate' }), { mode: 'after-commit', ...mikro });
  }

  for (const app of ENGINES) {
    for (const store of ['app', 'separate'] as const) {
      describe(`resthooks/mikro-orm with MikroORM ${orms.version} on ${app}, store ${store === 'app' ? "in the app's database" : 'separate'}`, () => {
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
            await flushPersisted(em, [a, b]);
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
          const create = (em: EntityManager, title: string) => flushPersisted(em, em.create(BookEntity, { title, pages: 1, ownerId: 'alice' }));
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
            await flushPersisted(em, em.create(BookEntity, { title: 'Buffered, then detached', pages: 1, ownerId: 'alice' }));
            env.mikro.detach();
          });
          const em = env.orm.em.fork();
          await flushPersisted(em, em.create(BookEntity, { title: 'After detach', pages: 2, ownerId: 'alice' }));
          await settle();
          expect(env.receiver.received).toHaveLength(0);
          expect(await em.count(BookEntity, {})).toBe(2);
        });

        it("updated payloads name the changed properties (not columns) in 'changes'", async () => {
          await subscribe('book.changed');
          await subscribe('book.changed', 'bob');
          const em = env.orm.em.fork();
          const book = em.create(BookEntity, { title: 'Moving', pages: 1, ownerId: 'alice' });
          await flushPersisted(em, book);
          book.ownerId = 'bob';
          await em.flush();
          const requests = await env.receiver.waitFor(2);
          expect(requests.map((r) => r.json.changes)).toEqual([['ownerId'], ['ownerId']]);
        });

        // Not with MikroORM 6 on SQLite: there a COMMIT refused for a deferred constraint leaves SQLite's transaction
        // open, and MikroORM (Knex) then fails every later transaction on that connection ("Transaction query already
        // complete"), with or without resthooks (docs/orms.md). MikroORM 7 (Kysely) rolls it back.
        const commitLeftOpen = app === 'sqlite' && orms.version === 6;
        if (!commitLeftOpen) it('a COMMIT the database refuses (a deferred constraint) keeps no row and fires nothing; the next transaction fires', async () => {
          await subscribe('book.added');
          await query(env.orm, 'create table parents (id integer primary key)');
          await query(env.orm, 'create table children (id integer primary key, parent integer references parents (id) deferrable initially deferred)');
          const refused = env.orm.em.fork().transactional(async (em) => {
            await flushPersisted(em, em.create(BookEntity, { title: 'Orphaned child', pages: 1, ownerId: 'alice' }));
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

        if (commitLeftOpen) it('a COMMIT SQLite refuses (a deferred constraint): the write and its outbox row stay together in the transaction MikroORM leaves open; nothing is delivered', async () => {
          await subscribe('book.added');
          await query(env.orm, 'create table parents (id integer primary key)');
          await query(env.orm, 'create table children (id integer primary key, parent integer references parents (id) deferrable initially deferred)');
          const refused = env.orm.em.fork().transactional(async (em) => {
            await flushPersisted(em, em.create(BookEntity, { title: 'Orphaned child', pages: 1, ownerId: 'alice' }));
            await em.getConnection().execute('insert into children (id, parent) values (1, 999)', [], 'run', em.getTransactionContext());
          });
          await expect(refused).rejects.toThrow(/foreign key/i);
          // MikroORM's one connection is still inside SQLite's transaction: it sees the book, and, in 'transaction' mode, its event.
          expect(await query(env.orm, 'select title from books')).toEqual([{ title: 'Orphaned child' }]);
          if (store === 'app') expect(await query(env.orm, `select name from ${ALL_EVENTS}`)).toEqual([{ name: 'book.added' }]);
          // Not hooks.idle(): the store's own connection waits for SQLite's write lock, which that open transaction holds.
          await sleep(300);
          expect(env.receiver.received).toHaveLength(0);
          await expect(env.orm.em.fork().transactional((em) => void em.persist(em.create(BookEntity, { title: 'Next', pages: 2, ownerId: 'alice' })))).rejects.toThrow(/already complete/);
        });

        it('a plain em.flush() (its own implicit transaction) fires once it has committed', async () => {
          await subscribe('book.added');
          const em = env.orm.em.fork();
          const book = em.create(BookEntity, { title: 'Plain', pages: 1, ownerId: 'alice' });
          await flushPersisted(em, book);
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
            await flushPersisted(em, book);
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
          const flushing = flushPersisted(em, em.create(BookEntity, { title: 'x'.repeat(300 * 1024), pages: 1, ownerId: 'alice' }));
          if (store === 'app') await expect(flushing).rejects.toMatchObject({ code: 'outbox_write_failed' });
          else await flushing;
          expect(await env.orm.em.fork().count(BookEntity, {})).toBe(store === 'app' ? 0 : 1);
          const next = env.orm.em.fork();
          await flushPersisted(next, next.create(BookEntity, { title: 'Small', pages: 1, ownerId: 'alice' }));
          const [request] = await env.receiver.waitFor(1);
          expect(request!.json.data.title).toBe('Small');
          await settle();
          expect(env.receiver.received).toHaveLength(1);
        });

        it('nativeUpdate, nativeDelete, insert, upsert and the QueryBuilder fire nothing (no entity events); hooks.model() with mikroOrmTx fills the gap', async () => {
          for (const event of ['book.added', 'book.changed', 'book.removed'] as const) await subscribe(event);
          const em = env.orm.em.fork();
          const book = em.create(BookEntity, { title: 'Native', pages: 1, ownerId: 'alice' });
          await flushPersisted(em, book);
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
            expect(await query(env.orm, `select name from ${ALL_EVENTS} where data like '%Never%'`)).toEqual([]);
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
            await flushPersisted(em, book);
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
          if (store === 'app') await eventually(async () => expect(await query(env.orm, `select name from ${ALL_EVENTS}`)).toEqual([]));
        });
      });
    }
  }
}
