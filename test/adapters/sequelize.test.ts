/**
 * resthooks/sequelize on real databases (Sequelize 6 on `sqlite3` and `pg`): the ORM conformance suite on
 * SQLite and PostgreSQL, with the store in the app's database (outbox written in the app's transaction;
 * on SQLite the store's better-sqlite3 and Sequelize's sqlite3 share one file) and in another one
 * (appended after commit); then what is Sequelize's own: `changes`, static writes with and without
 * `individualHooks`, unmanaged transactions, a failed COMMIT, writes that forget `{ transaction }` (CLS
 * is off in Sequelize 6), model names from `modelName` / the table name, and a minified bundle.
 */
import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DataTypes, Model, QueryTypes, Sequelize, type ModelStatic, type Transaction } from 'sequelize';
import { afterEach, describe, expect, it } from 'vitest';
import { attachSequelize, sequelizeExecutor, type SequelizeHooks, type SequelizeHooksOptions } from '../../src/adapters/orm/sequelize-adapter.js';
import { ConfigError, OutboxWriteError, type Hooks } from '../../src/index.js';
import { BOOK_EVENTS, ormAdapterSuite, refuseOutboxRows, type Book, type BookWriter, type NewBook, type OrmAdapterHarness } from '../orm-adapter.suite.js';
import { TestDatabase, type Engine } from '../support/database.js';
import { tempDir, testHooks } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { openAll, ROLLBACK, rolledBack, settleDelivery, sleep } from '../support/orm-harness.js';
import { ALL_EVENTS } from '../support/events.js';

const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];

/** The suite's events, plus a model named by its table (`notes`) and a custom action. */
const EVENTS = { ...BOOK_EVENTS, 'note.added': 'notes.created', 'book.read': 'Book.read' } as const;
type EventName = keyof typeof EVENTS;

interface Models {
  Book: ModelStatic<Model<Book, NewBook>>;
  Shelf: ModelStatic<Model<{ id: number; name: string }, { name: string }>>;
  Note: ModelStatic<Model<{ id: number; text: string; ownerId: string }, { text: string; ownerId: string }>>;
}

function defineModels(sequelize: Sequelize): Models {
  const Book = sequelize.define<Model<Book, NewBook>>(
    'Book',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      title: { type: DataTypes.TEXT, allowNull: false },
      pages: { type: DataTypes.INTEGER, allowNull: false },
      ownerId: { type: DataTypes.STRING, allowNull: false },
    },
    { tableName: 'books', timestamps: false },
  );
  const Shelf = sequelize.define<Model<{ id: number; name: string }, { name: string }>>(
    'Shelf',
    { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, name: { type: DataTypes.STRING, allowNull: false } },
    { tableName: 'shelves', timestamps: false },
  );
  // Named in the events map by its table only: `notes.created`.
  class Note extends Model<{ id: number; text: string; ownerId: string }, { text: string; ownerId: string }> {}
  Note.init(
    { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, text: { type: DataTypes.STRING }, ownerId: { type: DataTypes.STRING } },
    { sequelize, modelName: 'Memo', tableName: 'notes', timestamps: false },
  );
  return { Book, Shelf, Note };
}

interface Setup {
  app: Engine;
  /** 'app': the resthooks tables live in the app's database; 'separate': in another SQLite file. */
  store: 'app' | 'separate';
  options?: SequelizeHooksOptions;
}

interface Env {
  sequelize: Sequelize;
  models: Models;
  hooks: Hooks<EventName>;
  adapter: SequelizeHooks;
  receiver: Receiver;
  close(): Promise<void>;
}

function connect(app: Engine, url: string): Sequelize {
  if (app === 'sqlite') return new Sequelize({ dialect: 'sqlite', storage: url, logging: false });
  return new Sequelize(url, { dialect: 'postgres', logging: false, pool: { max: 5 } });
}

async function makeEnv(setup: Setup): Promise<Env> {
  return openAll(async (closers, close) => {
    const database = new TestDatabase(setup.app);
    await database.init();
    closers.push(() => database.close());
    const sequelize = connect(setup.app, database.url);
    closers.push(() => sequelize.close());
    const models = defineModels(sequelize);
    await sequelize.sync();
    const store = setup.store === 'app' ? database.dialect({}, { max: 5 }) : undefined;
    const { hooks, close: closeHooks } = await testHooks({ events: EVENTS, store });
    closers.push(closeHooks);
    const adapter = await attachSequelize(sequelize, hooks, setup.options);
    closers.push(() => adapter.detach());
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    return { sequelize, models, hooks, adapter, receiver, close };
  });
}

const transactions = new WeakMap<BookWriter, Transaction>();

function bookWriter({ Book }: Models, transaction: Transaction | undefined): BookWriter {
  const writer: BookWriter = {
    create: async (book) => (await Book.create(book, { transaction })).get({ plain: true }),
    async update(id, patch) {
      const book = await Book.findByPk(id, { transaction, rejectOnEmpty: true });
      await book.update(patch, { transaction });
    },
    async remove(id) {
      const book = await Book.findByPk(id, { transaction, rejectOnEmpty: true });
      await book.destroy({ transaction });
    },
  };
  if (transaction) transactions.set(writer, transaction);
  return writer;
}

/** A managed transaction (a savepoint when `parent` is given), rolled back by throwing when asked. */
function inTransaction(env: Env, parent: Transaction | undefined, work: (books: BookWriter) => Promise<void>, rollback: boolean): Promise<void> {
  return rolledBack(
    env.sequelize.transaction({ transaction: parent }, async (t) => {
      await work(bookWriter(env.models, t));
      if (rollback) throw ROLLBACK;
    }),
  );
}

function harness(setup: Setup) {
  return async (): Promise<OrmAdapterHarness> => {
    const env = await makeEnv(setup);
    return {
      hooks: env.hooks,
      receiver: env.receiver,
      engine: setup.app,
      mode: env.adapter.mode,
      transaction: (work, { rollback = false } = {}) => inTransaction(env, undefined, work, rollback),
      savepoint: (outer, work, { rollback = false } = {}) => inTransaction(env, transactions.get(outer)!, work, rollback),
      outside: bookWriter(env.models, undefined),
      async query(sql) {
        if (/^\s*select\b/i.test(sql)) return env.sequelize.query(sql, { type: QueryTypes.SELECT });
        await env.sequelize.query(sql);
        return [];
      },
      async writeUnmapped({ transaction }) {
        if (transaction) await env.sequelize.transaction((t) => env.models.Shelf.create({ name: 'Sci-fi' }, { transaction: t }));
        else await env.models.Shelf.create({ name: 'Sci-fi' });
      },
      close: env.close,
    };
  };
}

for (const app of ENGINES) {
  // No commit race: Sequelize commits only once resthooks' wrapper around commit() has written the outbox rows.
  const sequelize = { savepoints: true, commitRace: false };
  // Not on SQLite: the store's better-sqlite3 and Sequelize's sqlite3 must not share a file (attaching refuses it, tested below).
  if (app === 'postgres') ormAdapterSuite(`Sequelize on ${app}, store in the app's database (outbox in the transaction)`, harness({ app, store: 'app' }), { mode: 'transaction', ...sequelize });
  ormAdapterSuite(`Sequelize on ${app}, store in a separate SQLite file (after commit)`, harness({ app, store: 'separate' }), { mode: 'after-commit', ...sequelize });
}

for (const app of ENGINES) {
  describe(`resthooks/sequelize on ${app}: Sequelize's own writes and transactions`, () => {
    let env: Env;
    const envs: Env[] = [];
    /** Where the store goes by default: the app's database, except on SQLite, where it must be a file of its own. */
    const own = app === 'sqlite' ? 'separate' : 'app';
    const open = async (setup: Omit<Setup, 'app'> = { store: own }) => {
      const made = await makeEnv({ app, ...setup });
      envs.push(made);
      for (const event of Object.keys(EVENTS) as EventName[]) {
        await made.hooks.subscriptions.create({ owner: 'alice', event, target: `${made.receiver.url}/alice` });
      }
      env = made;
      return made;
    };
    afterEach(async () => {
      for (const made of envs.splice(0)) await made.close();
    });
    /** What arrived, in a stable order: "event title". */
    const received = (e: Env = env) => e.receiver.received.map((r) => `${r.json.hook.event as string} ${(r.json.data.title ?? r.json.data.text) as string}`).sort();
    const settle = (e: Env = env) => settleDelivery(e.hooks, 50);
    const titles = async () => (await env.models.Book.findAll({ order: [['id', 'ASC']] })).map((book) => book.get('title'));
    const outboxNames = async (e: Env = env) =>
      (await e.sequelize.query<{ name: string }>(`select name from ${ALL_EVENTS} order by id`, { type: QueryTypes.SELECT })).map((row) => row.name);
    const book = (title: string): NewBook => ({ title, pages: 1, ownerId: 'alice' });

    if (app === 'sqlite') {
      it("refuses a store in the app's own SQLite file (two copies of SQLite in one process lose writes), and removes its hooks", async () => {
        await open();
        const database = new TestDatabase('sqlite');
        await database.init();
        const sequelize = connect('sqlite', database.url);
        const { Book } = defineModels(sequelize);
        await sequelize.sync();
        const { hooks, close } = await testHooks({ events: EVENTS, store: database.dialect() });
        try {
          const attaching = attachSequelize(sequelize, hooks);
          await expect(attaching).rejects.toBeInstanceOf(ConfigError);
          await expect(attaching).rejects.toThrow(/two copies of SQLite/);
          await Book.create(book('After the refusal'));
          expect(await hooks.recentEvents('book.added', { owner: 'alice' })).toEqual([]);
        } finally {
          await close();
          await sequelize.close();
          await database.close();
        }
        // A file of its own: events are appended after each commit.
        expect(env.adapter.mode).toBe('after-commit');
        await env.sequelize.transaction((t) => env.models.Book.create(book('Own file'), { transaction: t }));
        await env.receiver.waitFor(1);
      });
    }

    if (app === 'postgres') it("outbox 'auto' picks 'transaction' when the store is the app's database, 'after-commit' otherwise, and cleans up its probe", async () => {
      await open();
      expect(env.adapter.mode).toBe('transaction');
      expect((await open({ store: 'separate' })).adapter.mode).toBe('after-commit');
      expect((await open({ store: 'app', options: { outbox: 'after-commit' } })).adapter.mode).toBe('after-commit');
      expect(await outboxNames(envs[0])).toEqual([]);
    });

    if (app === 'postgres') it("'transaction': the outbox row is inserted through the app's transaction, after its writes and before COMMIT", async () => {
      await open();
      // Every statement Sequelize sends, in order, through its `logging` option.
      const statements: string[] = [];
      (env.sequelize as unknown as { options: { logging: (sql: string) => void } }).options.logging = (sql) => void statements.push(sql);
      await env.sequelize.transaction((t) => env.models.Book.create(book('Dune'), { transaction: t }));
      (env.sequelize as unknown as { options: { logging: boolean } }).options.logging = false;
      const at = (pattern: RegExp) => statements.findIndex((sql) => pattern.test(sql));
      const steps = [/START TRANSACTION|^Executing \([^)]*\): BEGIN/i, /INSERT INTO ["`]books["`]/i, /insert into "resthooks_(events|outbox)"/i, /COMMIT/i].map(at);
      expect(steps.every((step, i) => step >= 0 && (i === 0 || step > steps[i - 1]!))).toBe(true);
      expect(await outboxNames()).toEqual(['book.added']);
      await env.receiver.waitFor(1);
    });

    it('updated carries the attributes the save changed as changes; created does not', async () => {
      await open();
      const created = await env.models.Book.create(book('Dune'));
      await env.sequelize.transaction(async (t) => {
        const found = await env.models.Book.findByPk(created.get('id') as number, { transaction: t, rejectOnEmpty: true });
        found.set({ title: 'Dune Messiah', pages: 256 });
        await found.save({ transaction: t });
      });
      const requests = await env.receiver.waitFor(2);
      const added = requests.find((r) => r.json.hook.event === 'book.added')!;
      const changed = requests.find((r) => r.json.hook.event === 'book.changed')!;
      expect(Object.keys(added.json)).toEqual(['hook', 'data']);
      expect(changed.json.data).toEqual({ id: created.get('id'), title: 'Dune Messiah', pages: 256, ownerId: 'alice' });
      expect([...changed.json.changes].sort()).toEqual(['pages', 'title']);
    });

    it('with changes: false, updated payloads carry no changes', async () => {
      await open({ store: own, options: { changes: false } });
      const created = await env.models.Book.create(book('Dune'));
      await created.update({ pages: 2 });
      await env.receiver.waitFor(2);
      const changed = env.receiver.received.find((r) => r.json.hook.event === 'book.changed')!;
      expect(Object.keys(changed.json)).toEqual(['hook', 'data']);
    });

    it('the data is the row as the write left it, even if the app changes the instance before COMMIT', async () => {
      await open();
      await env.sequelize.transaction(async (t) => {
        const created = await env.models.Book.create(book('As written'), { transaction: t });
        created.set('title', 'Changed in memory');
      });
      const [request] = await env.receiver.waitFor(1);
      expect(request!.json.data.title).toBe('As written');
    });

    it('static update(), destroy() and bulkCreate() fire nothing by default, and once per row with individualHooks: true', async () => {
      await open();
      const { Book } = env.models;
      await env.sequelize.transaction(async (t) => {
        await Book.bulkCreate([book('Silent A'), book('Silent B')], { transaction: t });
        await Book.update({ pages: 5 }, { where: { title: 'Silent A' }, transaction: t });
        await Book.destroy({ where: { title: 'Silent B' }, transaction: t });
      });
      await settle();
      expect(env.receiver.received).toEqual([]);
      expect(await env.hooks.recentEvents('book.added', { owner: 'alice' })).toEqual([]);
      await env.sequelize.transaction(async (t) => {
        await Book.bulkCreate([book('Loud A'), book('Loud B')], { transaction: t, individualHooks: true });
        await Book.update({ pages: 9 }, { where: { title: 'Loud A' }, transaction: t, individualHooks: true });
        await Book.destroy({ where: { title: 'Loud B' }, transaction: t, individualHooks: true });
      });
      const requests = await env.receiver.waitFor(4);
      await settle();
      expect(received()).toEqual(['book.added Loud A', 'book.added Loud B', 'book.changed Loud A', 'book.removed Loud B']);
      expect(requests.find((r) => r.json.hook.event === 'book.changed')!.json.data.pages).toBe(9);
      expect(await titles()).toEqual(['Silent A', 'Loud A']);
    });

    it('findOrCreate() fires created when it creates; upsert() fires nothing; a paranoid destroy() fires deleted, also for a model defined after attaching', async () => {
      await open();
      // A second Hooks instance on the same Sequelize, watching a model not defined yet.
      const { hooks, close } = await testHooks({ events: { 'paper.removed': 'Paper.deleted' } });
      const second = await attachSequelize(env.sequelize, hooks);
      try {
        const Paper = env.sequelize.define<Model<{ id: number; title: string; ownerId: string }, { title: string; ownerId: string }>>(
          'Paper',
          { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, title: DataTypes.STRING, ownerId: DataTypes.STRING },
          { tableName: 'papers', paranoid: true },
        );
        await Paper.sync();
        const [found] = await env.models.Book.findOrCreate({ where: { title: 'Found or created' }, defaults: book('Found or created') });
        await env.models.Book.findOrCreate({ where: { title: 'Found or created' }, defaults: book('Found or created') });
        await env.models.Book.upsert({ id: found.get('id'), ...book('Upserted') } as NewBook);
        const paper = await Paper.create({ title: 'Soft', ownerId: 'alice' });
        await paper.destroy();
        const [stored] = await hooks.recentEvents('paper.removed', { owner: 'alice', limit: 1 });
        expect(stored?.data).toMatchObject({ title: 'Soft', deletedAt: expect.any(String) });
        await env.receiver.waitFor(1);
        await settle();
        expect(received()).toEqual(['book.added Found or created']);
      } finally {
        second.detach();
        await close();
      }
    });

    it('an unmanaged transaction: commit() fires, rollback() fires nothing', async () => {
      await open();
      const rolled = await env.sequelize.transaction();
      await env.models.Book.create(book('Rolled back'), { transaction: rolled });
      await rolled.rollback();
      const committed = await env.sequelize.transaction();
      await env.models.Book.create(book('Committed'), { transaction: committed });
      await sleep(100);
      expect(env.receiver.received).toHaveLength(0);
      await committed.commit();
      await env.receiver.waitFor(1);
      await settle();
      expect(received()).toEqual(['book.added Committed']);
      expect(await titles()).toEqual(['Committed']);
    });

    if (app === 'postgres') it("a failing outbox insert refuses commit(): the transaction is rolled back, the caller gets OutboxWriteError, later writes fire", async () => {
      await open();
      const allow = await refuseOutboxRows({ engine: app, query: (sql) => env.sequelize.query(sql) as never }, 'Poison');
      const t = await env.sequelize.transaction();
      await env.models.Book.create(book('Poison'), { transaction: t });
      const error: unknown = await t.commit().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OutboxWriteError);
      expect((error as OutboxWriteError).code).toBe('outbox_write_failed');
      expect(String(error)).toContain('outbox refused'); // the driver's message, not Sequelize's "Validation error"
      // Already rolled back: the usual `catch { await t.rollback() }` succeeds and keeps the error above.
      await t.rollback();
      expect(await titles()).toEqual([]);
      await allow();
      await env.sequelize.transaction((t2) => env.models.Book.create(book('Allowed'), { transaction: t2 }));
      await env.receiver.waitFor(1);
      await settle();
      expect(received()).toEqual(['book.added Allowed']);
    });

    // PostgreSQL only: on SQLite a COMMIT refused by a deferred foreign key leaves the transaction open, and
    // Sequelize's own clean-up of it (it closes that connection) leaves the file locked for the next transaction.
    if (app === 'postgres') for (const mode of ['transaction', 'after-commit'] as const) {
      it(`a COMMIT the database refuses (a deferred constraint) fires nothing, though Sequelize runs afterCommit callbacks anyway (${mode})`, async () => {
        await open({ store: 'app', options: { outbox: mode } });
        await env.sequelize.query('create table parents (id integer primary key)');
        await env.sequelize.query(`create table children (id integer primary key, parent integer references parents (id) deferrable initially deferred)`);
        let afterCommitRan = false;
        const refused = env.sequelize.transaction(async (t) => {
          t.afterCommit(() => void (afterCommitRan = true));
          await env.models.Book.create(book('Orphaned'), { transaction: t });
          await env.sequelize.query('insert into children (id, parent) values (1, 999)', { transaction: t }); // checked at COMMIT
        });
        await expect(refused).rejects.toThrow(/foreign key/i);
        expect(afterCommitRan).toBe(true); // Sequelize 6's own behaviour, which resthooks does not follow
        await env.sequelize.transaction((t) => env.models.Book.create(book('Next'), { transaction: t }));
        await env.receiver.waitFor(1);
        await settle();
        expect(received()).toEqual(['book.added Next']);
        expect(await titles()).toEqual(['Next']);
      });
    }

    it('a model the events map names by its table fires under that name; a model in no event writes no outbox row', async () => {
      await open();
      await env.sequelize.transaction(async (t) => {
        await env.models.Note.create({ text: 'By table', ownerId: 'alice' }, { transaction: t });
        await env.models.Shelf.create({ name: 'Unmapped' }, { transaction: t });
      });
      await env.receiver.waitFor(1);
      await settle();
      expect(received()).toEqual(['note.added By table']);
      if (app === 'postgres') expect(await outboxNames()).toEqual(['note.added']);
    });

    // The custom action's row goes through the app's transaction: the store must be the app's database.
    if (app === 'postgres') it("a custom action: hooks.action() with the model's name and the transaction as tx", async () => {
      await open();
      const created = await env.models.Book.create(book('Read me'));
      await env.sequelize.transaction(async (t) => {
        const row = await env.models.Book.findByPk(created.get('id') as number, { transaction: t, rejectOnEmpty: true });
        await env.hooks.action(row, 'read', { model: 'Book', tx: sequelizeExecutor(env.sequelize, t) });
      });
      env.hooks.notify();
      await env.receiver.waitFor(2);
      await settle();
      expect(received()).toEqual(['book.added Read me', 'book.read Read me']);
    });

    // CLS is off by default in Sequelize 6: a write inside sequelize.transaction() that is not given
    // { transaction: t } runs on another connection, outside the transaction, and autocommits.
    if (app === 'postgres') {
      it('a write that forgets { transaction } (no CLS) is not in the transaction: it stays after the rollback, and so does its event', async () => {
        await open();
        await rolledBack(
          env.sequelize.transaction(async (t) => {
            await env.models.Book.create(book('In the transaction'), { transaction: t });
            await env.models.Book.create(book('Forgot the transaction'));
            throw ROLLBACK;
          }),
        );
        await env.receiver.waitFor(1);
        await settle();
        // The event tells the truth: the row it describes was committed.
        expect(received()).toEqual(['book.added Forgot the transaction']);
        expect(await titles()).toEqual(['Forgot the transaction']);
      });
    } else {
      it('a write that forgets { transaction } (no CLS) waits for the transaction’s write lock and fails: nothing is kept, nothing fires', async () => {
        await open();
        const outcome = await env.sequelize
          .transaction(async (t) => {
            await env.models.Book.create(book('In the transaction'), { transaction: t });
            await env.models.Book.create(book('Forgot the transaction'));
          })
          .catch((error: unknown) => error);
        expect(outcome).toBeInstanceOf(Error);
        expect(String(outcome)).toMatch(/SQLITE_BUSY|database is locked/);
        await settle();
        expect(env.receiver.received).toEqual([]);
        expect(await titles()).toEqual([]);
      }, 30_000); // sqlite3 gives up on the lock after about 5 s
    }
  });
}

describe('resthooks/sequelize in a minified bundle', () => {
  it('fires for a class given an explicit modelName; without one the class is renamed and attach warns', async () => {
    const dir = tempDir();
    try {
      const project = fileURLToPath(new URL('../../', import.meta.url));
      // The bundle leaves packages to node_modules: the app's directory reaches the project's.
      symlinkSync(join(project, 'node_modules'), join(dir.path, 'node_modules'), 'dir');
      const app = join(dir.path, 'minified-app.ts');
      writeFileSync(
        app,
        `import Database from 'better-sqlite3';
import { DataTypes, Model, Sequelize } from 'sequelize';
import { createHooks, sqliteStore } from ${JSON.stringify(join(project, 'src/index.ts'))};
import { attachSequelize } from ${JSON.stringify(join(project, 'src/adapters/orm/sequelize-adapter.ts'))};
const file = process.argv[2];
const sequelize = new Sequelize({ dialect: 'sqlite', storage: file, logging: false });
class Book extends Model {}
Book.init({ title: DataTypes.STRING, ownerId: DataTypes.STRING }, { sequelize, modelName: 'Book', tableName: 'books', timestamps: false });
class Author extends Model {}
Author.init({ name: DataTypes.STRING, ownerId: DataTypes.STRING }, { sequelize, timestamps: false });
await sequelize.sync();
const hooks = createHooks({ events: { 'book.added': 'Book.created', 'author.added': 'Author.created' }, store: sqliteStore(new Database(file + '.hooks')) });
await hooks.migrate();
const warnings = [];
const logger = { warn: (fields, message) => warnings.push(fields.model), info() {}, debug() {}, error() {} };
const adapter = await attachSequelize(sequelize, hooks, { logger });
await sequelize.transaction((transaction) => Book.create({ title: 'Minified', ownerId: 'alice' }, { transaction }));
await sequelize.transaction((transaction) => Author.create({ name: 'Renamed', ownerId: 'alice' }, { transaction }));
const books = await hooks.recentEvents('book.added', { owner: 'alice' });
const authors = await hooks.recentEvents('author.added', { owner: 'alice' });
console.log(JSON.stringify({ mode: adapter.mode, books: books.map((event) => event.data.title), authors: authors.length, warnings, authorName: Author.name }));
await sequelize.close();
await hooks.close();
`,
      );
      const bundle = join(dir.path, 'minified-app.mjs');
      await build({ entryPoints: [app], outfile: bundle, bundle: true, minify: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
      const { stdout } = await promisify(execFile)(process.execPath, [bundle, join(dir.path, 'app.db')], { cwd: dir.path, timeout: 60_000 });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
      expect(result).toMatchObject({ mode: 'after-commit', books: ['Minified'], authors: 0, warnings: ['Author'] });
      expect(result.authorName).not.toBe('Author'); // the minifier renamed the class, and with it the model
    } finally {
      dir.cleanup();
    }
  });
});
