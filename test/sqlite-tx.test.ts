/**
 * `sqliteTx(db)`: the `tx` of a trigger on a better-sqlite3 connection, with each SQL text prepared once
 * per connection. It must keep what a `tx` promises (the outbox row commits or rolls back with the app's
 * row; a failed write throws OutboxWriteError) while preparing the store's INSERT only once.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OutboxWriteError, sqliteStore, sqliteTx, type Hooks, type SqlitePreparer } from '../src/index.js';
import { tempDir, testHooks } from './support/hooks.js';
import { ALL_EVENTS } from './support/events.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
type AppHooks = Hooks<keyof typeof EVENTS>;

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The app's database with the resthooks tables in the same file (or, `separate`, in another). */
async function open({ separate = false } = {}) {
  const dir = tempDir();
  closers.push(() => dir.cleanup());
  const file = join(dir.path, 'app.db');
  const db = new Database(file);
  closers.push(() => void db.close());
  db.exec('create table books (id integer primary key, title text not null, owner_id text not null)');
  const { hooks, close } = await testHooks({ events: EVENTS, ...(separate ? {} : { store: sqliteStore(new Database(file)) }) });
  closers.push(close);
  return { db, hooks };
}

/** The real connection, with its `prepare` calls counted per SQL text. */
function counted(db: Database.Database): SqlitePreparer & { prepared: Map<string, number> } {
  const prepared = new Map<string, number>();
  return {
    prepared,
    prepare(sql) {
      prepared.set(sql, (prepared.get(sql) ?? 0) + 1);
      return db.prepare(sql);
    },
  };
}

/** The docs' recipe: BEGIN/COMMIT by hand around an awaited trigger; `fail` rolls back after the trigger. */
async function addBook(db: Database.Database, hooks: AppHooks, tx: ReturnType<typeof sqliteTx>, id: number, fail = false) {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.prepare('insert into books (id, title, owner_id) values (?, ?, ?)').run(id, `Book ${id}`, 'alice');
    await hooks.model('Book', 'created', { id, title: `Book ${id}`, ownerId: 'alice' }, { tx });
    if (fail) throw new Error('the app changed its mind');
    db.exec('COMMIT');
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

const count = (db: Database.Database, table: string) => (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;

describe('sqliteTx()', () => {
  it('prepares the outbox INSERT once per connection, however many triggers and sqliteTx() calls use it', async () => {
    const { db, hooks } = await open();
    const connection = counted(db);
    for (let id = 1; id <= 5; id++) await addBook(db, hooks, sqliteTx(connection), id);
    db.transaction(() => {
      db.prepare('insert into books (id, title, owner_id) values (?, ?, ?)').run(6, 'Book 6', 'alice');
      hooks.modelSync('Book', 'created', { id: 6, title: 'Book 6', ownerId: 'alice' }, { tx: sqliteTx(connection) });
    })();
    expect(count(db, 'books')).toBe(6);
    expect(count(db, ALL_EVENTS)).toBe(6);
    expect([...connection.prepared.values()]).toEqual([1]);
  });

  it('writes in the transaction that is open on the connection: a rollback drops the book and its event', async () => {
    const { db, hooks } = await open();
    const tx = sqliteTx(db);
    await addBook(db, hooks, tx, 1);
    await expect(addBook(db, hooks, tx, 2, true)).rejects.toThrow('the app changed its mind');
    expect(() =>
      db.transaction(() => {
        db.prepare('insert into books (id, title, owner_id) values (?, ?, ?)').run(3, 'Book 3', 'alice');
        hooks.modelSync('Book', 'created', { id: 3, title: 'Book 3', ownerId: 'alice' }, { tx });
        throw new Error('the sync transaction changed its mind');
      })(),
    ).toThrow('the sync transaction changed its mind');
    expect(db.prepare('select id from books').all()).toEqual([{ id: 1 }]);
    expect((db.prepare(`select data from ${ALL_EVENTS}`).all() as Array<{ data: string }>).map((row) => JSON.parse(row.data).id)).toEqual([1]);
  });

  it('an outbox write that fails (no resthooks tables in the app database) throws OutboxWriteError, and the book is rolled back', async () => {
    const { db, hooks } = await open({ separate: true });
    await expect(addBook(db, hooks, sqliteTx(db), 1)).rejects.toBeInstanceOf(OutboxWriteError);
    expect(count(db, 'books')).toBe(0);
  });

  it('keeps a bounded number of statements per connection, dropping the oldest first', async () => {
    const { db } = await open();
    const connection = counted(db);
    const tx = sqliteTx(connection);
    const texts = Array.from({ length: 33 }, (_, i) => `insert into books (id, title, owner_id) values (?, ?, 'statement ${i}')`);
    texts.forEach((sql, i) => tx(sql, [i + 1, 'x']));
    tx(texts[32]!, [100, 'x']); // the newest is still prepared
    tx(texts[0]!, [101, 'x']); // the oldest was dropped when the 33rd came
    expect(connection.prepared.get(texts[32]!)).toBe(1);
    expect(connection.prepared.get(texts[0]!)).toBe(2);
    expect(count(db, 'books')).toBe(35);
  });
});
