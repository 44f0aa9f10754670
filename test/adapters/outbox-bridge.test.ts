/**
 * The outbox bridge on its own, with no ORM: a small transaction of our own over a real better-sqlite3
 * connection to the app's file plays the ORM (its commit and rollback events call the bridge as an
 * adapter does), and the hooks' store is a second connection to the same file. Its statements go
 * through one queue, as a real connection's do, so a ROLLBACK sent while an outbox write is in flight
 * runs after that write and before any later one. Then `around()` with a real ORM without commit
 * events (Kysely), on SQLite and PostgreSQL.
 */
import Database from 'better-sqlite3';
import { CompiledQuery, Kysely, sql, type Transaction } from 'kysely';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostConnection, HostTransaction } from '../../src/adapters/orm/orm-adapter.js';
import { outboxBridge, type OutboxBridge } from '../../src/adapters/orm/outbox-bridge.js';
import { migrate, OutboxWriteError, sqliteStore, type Hooks, type HostExecutor } from '../../src/index.js';
import { BOOK_EVENTS, type BookEvent } from '../orm-adapter.suite.js';
import { TestDatabase } from '../support/database.js';
import { eventually, tempDir, testHooks } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { ALL_EVENTS } from '../support/events.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One connection of the app's: every statement queued, each logged as it runs. */
class AppConnection {
  readonly log: string[] = [];
  /** Each statement waits this long before it runs: long enough for a rollback to arrive meanwhile. */
  delayMs = 0;
  #queue: Promise<unknown> = Promise.resolve();
  constructor(readonly db: Database.Database) {}

  run(sql: string, parameters: readonly unknown[] = []): Promise<void> {
    const ran = this.#queue.then(async () => {
      if (this.delayMs > 0) await sleep(this.delayMs);
      this.log.push(sql);
      this.db.prepare(sql).run(...parameters);
    });
    this.#queue = ran.catch(() => undefined);
    return ran;
  }

  readonly execute: HostExecutor = (sql, parameters) => this.run(sql, parameters);

  /** The statements that ran after the first ROLLBACK (each would have committed on its own). */
  statementsAfterRollback(): string[] {
    const at = this.log.indexOf('ROLLBACK');
    return at < 0 ? [] : this.log.slice(at + 1);
  }
}

/** An ORM with transaction events (TypeORM's shape): it tells the bridge around each COMMIT and ROLLBACK. */
class EventedTransaction implements HostTransaction {
  readonly key = {};
  #level = 0;
  constructor(
    readonly connection: AppConnection,
    readonly bridge: OutboxBridge,
  ) {}
  get execute(): HostExecutor {
    return this.connection.execute;
  }
  depth(): number {
    return this.#level;
  }
  async begin(): Promise<void> {
    await this.connection.run(this.#level === 0 ? 'BEGIN' : `SAVEPOINT s${this.#level}`);
    this.#level += 1;
  }
  async commit(): Promise<void> {
    try {
      await this.bridge.beforeCommit(this);
    } catch (error) {
      await this.rollback();
      throw error;
    }
    await this.connection.run(this.#level === 1 ? 'COMMIT' : `RELEASE s${this.#level - 1}`);
    this.#level -= 1;
    await this.bridge.afterCommit(this);
  }
  async rollback(): Promise<void> {
    this.bridge.rollbackStarted(this);
    await this.connection.run(this.#level === 1 ? 'ROLLBACK' : `ROLLBACK TO s${this.#level - 1}`);
    if (this.#level > 1) await this.connection.run(`RELEASE s${this.#level - 1}`);
    this.#level -= 1;
    this.bridge.afterRollback(this);
  }
}

/** An ORM without commit events (Drizzle's and Kysely's shape): `transaction(cb)`, nested calls as savepoints. */
function callbackOrm(connection: AppConnection) {
  let level = 0;
  return async <T>(body: (trx: AppConnection) => Promise<T>): Promise<T> => {
    await connection.run(level === 0 ? 'BEGIN' : `SAVEPOINT s${level}`);
    level += 1;
    try {
      const result = await body(connection);
      await connection.run(level === 1 ? 'COMMIT' : `RELEASE s${level - 1}`);
      return result;
    } catch (error) {
      await connection.run(level === 1 ? 'ROLLBACK' : `ROLLBACK TO s${level - 1}`);
      if (level > 1) await connection.run(`RELEASE s${level - 1}`);
      throw error;
    } finally {
      level -= 1;
    }
  };
}

const book = (title: string, ownerId = 'alice') => ({ title, ownerId });

describe('the outbox bridge', () => {
  let dir: ReturnType<typeof tempDir>;
  let hooks: Hooks<BookEvent>;
  let closeHooks: () => Promise<void>;
  let app: AppConnection;
  let receiver: Receiver;
  let bridge: OutboxBridge;

  beforeEach(async () => {
    dir = tempDir();
    const file = join(dir.path, 'app.db');
    // A poll an hour apart: a delivery that arrives at all was started by the bridge's wake-up.
    ({ hooks, close: closeHooks } = await testHooks({ events: BOOK_EVENTS, file, delivery: { pollInterval: '1h' } }));
    const db = new Database(file);
    db.pragma('busy_timeout = 5000');
    app = new AppConnection(db);
    receiver = await startReceiver();
    bridge = outboxBridge(hooks, { adapter: 'resthooks/test' });
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/alice` });
  });
  afterEach(async () => {
    await receiver.close();
    await closeHooks();
    app.db.close();
    dir.cleanup();
  });

  const outboxRows = () => (app.db.prepare(`select name, data from ${ALL_EVENTS}`).all() as Array<{ name: string; data: string }>).map((r) => `${r.name} ${JSON.parse(r.data).title}`);
  const settle = async () => {
    await hooks.idle();
    await sleep(50);
    await hooks.idle();
  };

  describe('choosing the mode', () => {
    it("'auto' picks 'transaction' when the app's connection reaches the store's database, and removes its probe row", async () => {
      expect(bridge.mode).toBe('after-commit');
      expect(await bridge.chooseMode('auto', (statement) => app.run(statement.sql, statement.parameters))).toBe('transaction');
      expect(bridge.mode).toBe('transaction');
      expect(outboxRows()).toEqual([]);
    });

    it("'auto' picks 'after-commit' for another database, with the resthooks tables or without", async () => {
      const other = new Database(join(dir.path, 'other.db'));
      try {
        const otherApp = new AppConnection(other);
        const run = (statement: { sql: string; parameters: readonly unknown[] }) => otherApp.run(statement.sql, statement.parameters);
        expect(await bridge.chooseMode('auto', run)).toBe('after-commit'); // no tables: the insert fails
        await migrate(sqliteStore(new Database(join(dir.path, 'other.db'))));
        expect(await bridge.chooseMode('auto', run)).toBe('after-commit'); // tables, but not the store's
        expect(other.prepare(`select count(*) as n from ${ALL_EVENTS}`).get()).toEqual({ n: 0 });
      } finally {
        other.close();
      }
    });

    it('a forced mode runs no probe', async () => {
      expect(await bridge.chooseMode('transaction', () => Promise.reject(new Error('not called')))).toBe('transaction');
      expect(await bridge.chooseMode('after-commit', () => Promise.reject(new Error('not called')))).toBe('after-commit');
    });
  });

  describe("with transaction events, 'transaction' mode", () => {
    let tx: EventedTransaction;
    beforeEach(async () => {
      await bridge.chooseMode('transaction', () => Promise.resolve());
      tx = new EventedTransaction(app, bridge);
    });

    it('writes the outbox rows through the transaction before its COMMIT, then wakes the dispatcher', async () => {
      // Past the dispatcher's first pass (at start), only a wake-up makes it look at the outbox within the hour.
      await sleep(300);
      await tx.begin();
      expect(bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Dune') } })).toBeUndefined();
      expect(outboxRows()).toEqual([]); // buffered until the commit
      await tx.commit();
      expect(app.log.map((sql) => sql.split(' (')[0])).toEqual(['BEGIN', 'insert into "resthooks_outbox"', 'COMMIT']);
      const [request] = await receiver.waitFor(1);
      expect(request!.json.data).toEqual({ id: 1, title: 'Dune', ownerId: 'alice' });
    });

    it('models and actions the events map does not name are not buffered', async () => {
      await tx.begin();
      expect(bridge.watches('Shelf', 'created')).toBe(false);
      bridge.write(tx, { model: 'Shelf', action: 'created', instance: { id: 1, ownerId: 'alice' } });
      await tx.commit();
      expect(app.log).toEqual(['BEGIN', 'COMMIT']);
    });

    it('a write with no transaction is appended at once, through the store', async () => {
      await bridge.write(undefined, { model: 'Book', action: 'created', instance: { id: 1, ...book('Alone') } });
      expect(outboxRows()).toEqual(['book.added Alone']);
      expect(app.log).toEqual([]);
      await receiver.waitFor(1);
    });

    it('rolling back a savepoint drops only its writes; a released one joins the outer transaction', async () => {
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Outer') } });
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 2, ...book('Rolled back') } });
      await tx.rollback();
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 3, ...book('Released') } });
      await tx.commit();
      expect(outboxRows()).toEqual([]); // a release commits nothing yet
      // A later savepoint at the same level, rolled back, takes only its own writes, not the released ones.
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 4, ...book('Rolled back later') } });
      await tx.rollback();
      await tx.commit();
      expect(outboxRows().sort()).toEqual(['book.added Outer', 'book.added Released']);
      await receiver.waitFor(2);
    });

    it("a released savepoint's writes are dropped when the outer transaction rolls back", async () => {
      await tx.begin();
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Released') } });
      await tx.commit();
      await tx.rollback();
      await tx.begin();
      await tx.commit();
      expect(app.log).toEqual(['BEGIN', 'SAVEPOINT s1', 'RELEASE s1', 'ROLLBACK', 'BEGIN', 'COMMIT']);
    });

    it("an outbox write that fails rejects the commit with OutboxWriteError, and the app's rows roll back with it", async () => {
      app.db.exec('create table books (id integer primary key, title text)');
      app.db.exec("create trigger refuse_outbox before insert on resthooks_outbox when new.data like '%Poison%' begin select raise(abort, 'outbox refused'); end");
      await tx.begin();
      await app.run("insert into books (id, title) values (1, 'Poison')");
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Poison') } });
      const committing = tx.commit();
      await expect(committing).rejects.toBeInstanceOf(OutboxWriteError);
      await expect(committing).rejects.toMatchObject({ code: 'outbox_write_failed', event: 'book.added', message: expect.stringContaining('outbox refused') });
      expect(app.db.prepare('select count(*) as n from books').get()).toEqual({ n: 0 });
      expect(outboxRows()).toEqual([]);
      expect(app.log.at(-1)).toBe('ROLLBACK');
    });

    it('an event that cannot be made (over the size limit) rejects the commit too', async () => {
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('x'.repeat(300 * 1024)) } });
      await expect(tx.commit()).rejects.toMatchObject({ code: 'outbox_write_failed', message: expect.stringContaining('limit') });
      expect(app.log).toEqual(['BEGIN', 'ROLLBACK']);
    });

    for (const between of ['events', "one event's statements"] as const) {
      it(`a rollback that begins between ${between} being written: no statement of ours after the ROLLBACK`, async () => {
        await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/alice/2` });
        await tx.begin();
        // A payload made per subscription is fanned out at once: the event row, then one delivery row per subscription.
        const perHook = { serializeHook: () => ({ made: 'per subscription' }) };
        const instances = between === 'events' ? [1, 2, 3].map((id) => ({ id, ...book(`Book ${id}`) })) : [{ id: 1, ...book('Book 1'), ...perHook }];
        for (const instance of instances) bridge.write(tx, { model: 'Book', action: 'created', instance });
        app.delayMs = 30;
        // Another commit listener fails while ours is writing (TypeORM runs them all at once).
        const ours = bridge.beforeCommit(tx);
        await eventually(() => expect(app.log.length).toBeGreaterThan(1));
        await tx.rollback();
        await ours; // resolves: the rollback is someone else's failure, the writes go with it
        app.delayMs = 0;
        expect(app.statementsAfterRollback()).toEqual([]);
        expect(outboxRows()).toEqual([]);
        await settle();
        expect(receiver.received).toHaveLength(0);
      });
    }

    it('forget() drops what a transaction that ended without an event had buffered', async () => {
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Forgotten') } });
      bridge.forget(tx.key);
      await tx.commit();
      expect(app.log).toEqual(['BEGIN', 'COMMIT']);
    });
  });

  describe("with transaction events, 'after-commit' mode", () => {
    it('writes nothing through the transaction; appends through the store once it has committed', async () => {
      const tx = new EventedTransaction(app, bridge);
      await tx.begin();
      bridge.write(tx, { model: 'Book', action: 'updated', instance: { id: 1, ...book('Dune') }, changes: ['title'] });
      await tx.commit();
      expect(app.log).toEqual(['BEGIN', 'COMMIT']);
      expect(outboxRows()).toEqual(['book.changed Dune']);
    });
  });

  describe('around(), for ORMs without commit events', () => {
    const connection = (trx: AppConnection): HostConnection => ({ key: trx, execute: trx.execute });
    let orm: ReturnType<typeof callbackOrm>;
    beforeEach(async () => {
      await bridge.chooseMode('transaction', () => Promise.resolve());
      orm = callbackOrm(app);
    });

    it("writes the buffered rows through the transaction before the app's callback returns, wakes the dispatcher after COMMIT", async () => {
      const result = await bridge.around(orm, connection, async (_trx, tx) => {
        expect(tx.depth()).toBe(1);
        bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Dune') } });
        return 'done';
      });
      expect(result).toBe('done');
      expect(app.log.map((sql) => sql.split(' (')[0])).toEqual(['BEGIN', 'insert into "resthooks_outbox"', 'COMMIT']);
      await receiver.waitFor(1);
    });

    it('a callback that throws rolls back and records nothing', async () => {
      const failing = bridge.around(orm, connection, async (_trx, tx) => {
        bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Never') } });
        throw new Error('app failure');
      });
      await expect(failing).rejects.toThrow('app failure');
      expect(app.log).toEqual(['BEGIN', 'ROLLBACK']);
      // The next transaction starts clean.
      await bridge.around(orm, connection, async (_trx, tx) => void bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 2, ...book('Next') } }));
      expect(outboxRows()).toEqual(['book.added Next']);
    });

    it("an outbox write that fails rejects the app's transaction with OutboxWriteError: it rolls back", async () => {
      app.db.exec("create trigger refuse_outbox before insert on resthooks_outbox when new.data like '%Poison%' begin select raise(abort, 'outbox refused'); end");
      const writing = bridge.around(orm, connection, async (_trx, tx) => void bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Poison') } }));
      await expect(writing).rejects.toBeInstanceOf(OutboxWriteError);
      expect(app.log.map((sql) => sql.split(' (')[0])).toEqual(['BEGIN', 'insert into "resthooks_outbox"', 'ROLLBACK']);
    });

    it('nested calls are savepoints: a rolled-back one drops only its writes, a released one waits for the outer COMMIT', async () => {
      await bridge.around(orm, connection, async (trx, outer) => {
        bridge.write(outer, { model: 'Book', action: 'created', instance: { id: 1, ...book('Outer') } });
        const inner = bridge.around(orm, () => connection(trx), async (_trx, tx) => {
          expect(tx.depth()).toBe(2);
          bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 2, ...book('Rolled back') } });
          throw new Error('inner failure');
        });
        await expect(inner).rejects.toThrow('inner failure');
        await bridge.around(orm, () => connection(trx), async (_trx, tx) => void bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 3, ...book('Released') } }));
        expect(outer.depth()).toBe(1);
        expect(outboxRows()).toEqual([]);
      });
      expect(outboxRows().sort()).toEqual(['book.added Outer', 'book.added Released']);
      expect(app.log.filter((sql) => !sql.startsWith('insert'))).toEqual(['BEGIN', 'SAVEPOINT s1', 'ROLLBACK TO s1', 'RELEASE s1', 'SAVEPOINT s1', 'RELEASE s1', 'COMMIT']);
    });

    it('an ORM that runs the callback again after a failure (a retried transaction) records only the attempt that committed', async () => {
      let attempts = 0;
      const retrying = async <T>(body: (trx: AppConnection) => Promise<T>): Promise<T> => {
        for (;;) {
          try {
            return await orm(body);
          } catch (error) {
            if (++attempts > 1) throw error;
          }
        }
      };
      await bridge.around(retrying, connection, async (_trx, tx) => {
        expect(tx.depth()).toBe(1);
        bridge.write(tx, { model: 'Book', action: 'created', instance: { id: attempts + 1, ...book(`Attempt ${attempts + 1}`) } });
        if (attempts === 0) throw new Error('serialization failure');
      });
      expect(outboxRows()).toEqual(['book.added Attempt 2']);
      expect(app.log.filter((sql) => !sql.startsWith('insert'))).toEqual(['BEGIN', 'ROLLBACK', 'BEGIN', 'COMMIT']);
    });

    it("'after-commit' mode: appends through the store once the ORM's call has resolved", async () => {
      await bridge.chooseMode('after-commit', () => Promise.resolve());
      await bridge.around(orm, connection, async (_trx, tx) => void bridge.write(tx, { model: 'Book', action: 'created', instance: { id: 1, ...book('Later') } }));
      expect(app.log).toEqual(['BEGIN', 'COMMIT']);
      expect(outboxRows()).toEqual(['book.added Later']);
    });
  });
});

/**
 * `around()` with a real ORM that has no commit events, on both engines: Kysely's
 * `db.transaction().execute(cb)`, with the store in the app's database.
 */
for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`around() with Kysely on ${engine}`, () => {
    let database: TestDatabase;
    let hooks: Hooks<BookEvent>;
    let closeHooks: () => Promise<void>;
    let receiver: Receiver;
    let bridge: OutboxBridge;
    let db: Kysely<{ books: { id: number; title: string; owner_id: string } }>;

    beforeEach(async () => {
      database = new TestDatabase(engine);
      await database.init();
      ({ hooks, close: closeHooks } = await testHooks({ events: BOOK_EVENTS, store: database.dialect({}, { max: 3 }) }));
      const appDialect = database.dialect({}, { max: 3 });
      db = new Kysely({ dialect: appDialect.kysely });
      await db.schema.createTable('books').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('title', 'text').addColumn('owner_id', 'text').execute();
      receiver = await startReceiver();
      bridge = outboxBridge(hooks, { adapter: 'resthooks/test' });
      expect(await bridge.chooseMode('auto', (q) => db.executeQuery(CompiledQuery.raw(q.sql, [...q.parameters])))).toBe('transaction');
      await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/alice` });
    });
    afterEach(async () => {
      await receiver.close();
      await closeHooks();
      await db.destroy();
      await database.close();
    });

    type Trx = Transaction<{ books: { id: number; title: string; owner_id: string } }>;
    const begin = <T>(body: (trx: Trx) => Promise<T>) => db.transaction().execute(body);
    const connection = (trx: Trx): HostConnection => ({ key: trx, execute: { execute: (q) => trx.executeQuery(CompiledQuery.raw(q.sql, [...q.parameters])) } });
    const addBook = async (trx: Trx, tx: HostTransaction, id: number, title: string) => {
      await trx.insertInto('books').values({ id, title, owner_id: 'alice' }).execute();
      bridge.write(tx, { model: 'Book', action: 'created', instance: { id, title, ownerId: 'alice' } });
    };
    const titles = async () => (await db.selectFrom('books').select('title').orderBy('id').execute()).map((r) => r.title);
    const outboxRows = async () => Number((await sql<{ n: number }>`select count(*) as n from ${sql.raw(ALL_EVENTS)}`.execute(db)).rows[0]!.n);

    it('commits the row and its outbox row together, and delivers', async () => {
      await bridge.around(begin, connection, (trx, tx) => addBook(trx, tx, 1, 'Dune'));
      expect(await titles()).toEqual(['Dune']);
      expect(await outboxRows()).toBe(1);
      const [request] = await receiver.waitFor(1);
      expect(request!.json.data).toEqual({ id: 1, title: 'Dune', ownerId: 'alice' });
    });

    it("a failing outbox insert rolls the app's row back and rejects with OutboxWriteError", async () => {
      if (engine === 'sqlite') {
        await sql`create trigger refuse_outbox before insert on resthooks_outbox when new.data like '%Poison%' begin select raise(abort, 'outbox refused'); end`.execute(db);
      } else {
        await sql`create function refuse_outbox() returns trigger language plpgsql as $$ begin if new.data like '%Poison%' then raise exception 'outbox refused'; end if; return new; end $$`.execute(db);
        await sql`create trigger refuse_outbox before insert on resthooks_events for each row execute function refuse_outbox()`.execute(db);
      }
      const writing = bridge.around(begin, connection, async (trx, tx) => {
        await addBook(trx, tx, 1, 'Fine');
        await addBook(trx, tx, 2, 'Poison');
      });
      await expect(writing).rejects.toBeInstanceOf(OutboxWriteError);
      await expect(writing).rejects.toMatchObject({ event: 'book.added', message: expect.stringContaining('outbox refused') });
      expect(await titles()).toEqual([]);
      expect(await outboxRows()).toBe(0);
      // The connection is usable again, and the next transaction fires.
      await bridge.around(begin, connection, (trx, tx) => addBook(trx, tx, 3, 'Next'));
      const [request] = await receiver.waitFor(1);
      expect(request!.json.data.title).toBe('Next');
    });

    it('a callback that throws keeps neither row and sends nothing', async () => {
      const failing = bridge.around(begin, connection, async (trx, tx) => {
        await addBook(trx, tx, 1, 'Never');
        throw new Error('app failure');
      });
      await expect(failing).rejects.toThrow('app failure');
      await hooks.idle();
      await sleep(100);
      expect(await titles()).toEqual([]);
      expect(await outboxRows()).toBe(0);
      expect(receiver.received).toHaveLength(0);
    });
  });
}
