/**
 * A trigger given `{ tx }` (or `modelSync`) wakes the dispatcher by itself once the caller commits: no
 * `notify()` needed. The poll interval is an hour here, so only that wake-up can deliver within the test.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Hooks, HostExecutor } from '../src/index.js';
import { announcingCommit } from '../src/store/host-executor.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';
import { testHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
type AppHooks = Hooks<keyof typeof EVENTS>;

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function setUp(engine: Engine): Promise<{ db: TestDatabase; hooks: AppHooks; receiver: Receiver }> {
  const db = new TestDatabase(engine);
  await db.init();
  closers.push(() => db.close());
  const receiver = await startReceiver();
  closers.push(() => receiver.close());
  const t = await testHooks({ events: EVENTS, store: db.dialect(), delivery: { pollInterval: '1h' } });
  closers.push(() => t.close());
  await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
  // The dispatcher's passes that a start or an append outside a transaction schedule must be over, so
  // that none of them is what finds the event written in the transaction: deliver one such event first.
  await t.hooks.model('Book', 'created', { id: 0, ownerId: 'alice' });
  await receiver.waitFor(1, 10_000);
  await t.hooks.idle();
  return { db, hooks: t.hooks, receiver };
}

describe('a { tx } trigger wakes the dispatcher after the commit (sqlite)', () => {
  it('modelSync in a synchronous better-sqlite3 transaction', async () => {
    const { db, hooks, receiver } = await setUp('sqlite');
    const app = new Database(db.url);
    closers.push(() => void app.close());
    app.exec('create table books (id integer primary key, title text not null, owner_id text not null)');
    app.transaction(() => {
      app.prepare('insert into books values (?, ?, ?)').run(1, 'Dune', 'alice');
      hooks.modelSync('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' }, { tx: (sql, params) => app.prepare(sql).run(...params) });
    })();
    const [, request] = await receiver.waitFor(2, 10_000);
    expect(JSON.parse(request!.body).data).toEqual({ id: 1, title: 'Dune', ownerId: 'alice' });
  });

  it('model() with { tx } between BEGIN and a COMMIT that comes after some awaits', async () => {
    const { db, hooks, receiver } = await setUp('sqlite');
    const app = new Database(db.url);
    app.pragma('busy_timeout = 10000');
    closers.push(() => void app.close());
    const tx: HostExecutor = (sql, params) => app.prepare(sql).run(...params);
    app.exec('BEGIN IMMEDIATE');
    await hooks.model('Book', 'created', { id: 2, ownerId: 'alice' }, { tx });
    // The app keeps the transaction open a while (more awaited work) before it commits.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    app.exec('COMMIT');
    const [, request] = await receiver.waitFor(2, 10_000);
    expect(JSON.parse(request!.body).data).toEqual({ id: 2, ownerId: 'alice' });
  });
});

describe('a { tx } trigger whose executor announces the commit (an ORM adapter that calls notify() after it)', () => {
  it('modelSync starts no watch: the event waits for notify()', async () => {
    const { db, hooks, receiver } = await setUp('sqlite');
    const app = new Database(db.url);
    closers.push(() => void app.close());
    app.exec('create table books (id integer primary key, title text not null, owner_id text not null)');
    const tx = announcingCommit((sql, params) => app.prepare(sql).run(...params));
    app.transaction(() => {
      hooks.modelSync('Book', 'created', { id: 4, title: 'Dune', ownerId: 'alice' }, { tx: tx as (sql: string, params: readonly unknown[]) => unknown });
    })();
    // A watch would have looked within microseconds of the commit; the poll interval is an hour.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received).toHaveLength(1);
    hooks.notify();
    const [, request] = await receiver.waitFor(2, 10_000);
    expect(JSON.parse(request!.body).data).toEqual({ id: 4, title: 'Dune', ownerId: 'alice' });
  });
});

// Not in the unit scope, which starts no PostgreSQL.
if (ENGINES.includes('postgres')) describe('a { tx } trigger wakes the dispatcher after the commit (postgres)', () => {
  it('model() with { tx } on a pg client, BEGIN … COMMIT', async () => {
    const { db, hooks, receiver } = await setUp('postgres');
    const pool = db.pool();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await hooks.model('Book', 'created', { id: 3, ownerId: 'alice' }, { tx: (sql, params) => client.query(sql, [...params]) });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const [, request] = await receiver.waitFor(2, 10_000);
    expect(JSON.parse(request!.body).data).toEqual({ id: 3, ownerId: 'alice' });
  });
});
