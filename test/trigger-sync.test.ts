/**
 * `hooks.modelSync()`: a trigger for transactions that cannot await (better-sqlite3's `db.transaction(fn)`).
 * The outbox row is written through `tx` before it returns, so it commits or rolls back with the app's
 * row; whatever would need an await is refused with OutboxWriteError, so the app's transaction rolls back.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OutboxWriteError, sqliteStore, sqliteTx, type Hooks } from '../src/index.js';
import { ALL_EVENTS } from './support/events.js';
import { tempDir, testHooks } from './support/hooks.js';
import { startReceiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
type AppHooks = Hooks<keyof typeof EVENTS>;
interface Book {
  id: number;
  title: string;
  ownerId: string;
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The app's better-sqlite3 database, with the resthooks tables in the same file unless `separate`. */
async function open({ separate = false, start = true } = {}) {
  const dir = tempDir();
  closers.push(() => dir.cleanup());
  const file = join(dir.path, 'app.db');
  const db = new Database(file);
  closers.push(() => void db.close());
  db.exec('create table books (id integer primary key, title text not null, owner_id text not null)');
  const { hooks, close } = await testHooks({ events: EVENTS, ...(separate ? {} : { store: sqliteStore(new Database(file)) }) }, { start });
  closers.push(close);
  return { db, hooks };
}

/** The recipe: a synchronous transaction writes the book and its outbox row; notify after COMMIT. */
function addBook(db: Database.Database, hooks: AppHooks, book: Book, options: { payloadOverride?: (hook: { id: string }) => unknown } = {}) {
  db.transaction(() => {
    db.prepare('insert into books (id, title, owner_id) values (?, ?, ?)').run(book.id, book.title, book.ownerId);
    hooks.modelSync('Book', 'created', book, { tx: sqliteTx(db), ...options });
  })();
  hooks.notify();
}

const books = (db: Database.Database) => (db.prepare('select title from books').all() as Array<{ title: string }>).map((r) => r.title);
const outbox = (db: Database.Database) => (db.prepare(`select name from ${ALL_EVENTS}`).all() as Array<{ name: string }>).map((r) => r.name);

describe('hooks.modelSync()', () => {
  it('writes the outbox row in the synchronous transaction: both commit, the event is delivered', async () => {
    const { db, hooks } = await open();
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/alice` });
    addBook(db, hooks, { id: 1, title: 'Dune', ownerId: 'alice' });
    expect(outbox(db)).toEqual(['book.added']);
    const [request] = await receiver.waitFor(1);
    expect(request!.json.data).toEqual({ id: 1, title: 'Dune', ownerId: 'alice' });
  });

  it('returns ignored for an unmapped model and writes nothing', async () => {
    const { db, hooks } = await open();
    const result = db.transaction(() => hooks.modelSync('Shelf', 'created', { id: 1 }, { tx: (sql, params) => db.prepare(sql).run(...params) }))();
    expect(result).toEqual({ status: 'ignored' });
    expect(outbox(db)).toEqual([]);
  });

  it('an outbox write that fails (no resthooks tables in the app database) throws OutboxWriteError and rolls the book back', async () => {
    const { db, hooks } = await open({ separate: true });
    expect(() => addBook(db, hooks, { id: 1, title: 'Lost', ownerId: 'alice' })).toThrow(OutboxWriteError);
    expect(books(db)).toEqual([]);
  });

  it('refuses what would need an await: before start(), a per-subscription payload, an executor that returns a promise', async () => {
    const unstarted = await open({ start: false });
    expect(() => addBook(unstarted.db, unstarted.hooks, { id: 1, title: 'Too early', ownerId: 'alice' })).toThrow(/hooks\.start\(\)/);
    expect(books(unstarted.db)).toEqual([]);

    const { db, hooks } = await open();
    expect(() => addBook(db, hooks, { id: 2, title: 'Per hook', ownerId: 'alice' }, { payloadOverride: (hook) => ({ to: hook.id }) })).toThrow(OutboxWriteError);
    const later: Array<() => void> = [];
    const deferred = () =>
      db.transaction(() => {
        db.prepare('insert into books (id, title, owner_id) values (3, ?, ?)').run('Async tx', 'alice');
        hooks.modelSync('Book', 'created', { id: 3, title: 'Async tx', ownerId: 'alice' }, { tx: (sql, params) => new Promise<void>((resolve) => later.push(() => (db.prepare(sql).run(...params), resolve()))) });
      })();
    expect(deferred).toThrow(/returned a promise/);
    expect(books(db)).toEqual([]);
    expect(outbox(db)).toEqual([]);
  });
});
