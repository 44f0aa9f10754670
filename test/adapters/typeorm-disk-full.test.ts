/**
 * resthooks/typeorm when the disk fills up, on a real, small tmpfs that holds the app's SQLite file
 * (with the resthooks tables in the same file, as the embedded setup has them).
 *
 * In WAL mode a transaction's pages reach the disk at COMMIT, so a full disk fails the COMMIT with
 * SQLITE_FULL, and SQLite then rolls the whole transaction back by itself. TypeORM's ROLLBACK that
 * follows fails ("no transaction is active") and leaves its one shared better-sqlite3 query runner
 * believing, for good, that it is inside a transaction. Once space is back, every later write must
 * fire its event again, in both outbox modes, whether or not the app rolled back after the failure.
 *
 * Mounting needs root, as the rest of the real-server tests do (they install Debian packages).
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attachTypeorm, type TypeormOutboxMode } from '../../src/adapters/orm/typeorm-adapter.js';
import { sqliteStore, type Hooks } from '../../src/index.js';
import { BOOK_EVENTS, type Book, type BookEvent } from '../orm-adapter.suite.js';
import { eventually, testHooks } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { BookEntity } from '../support/typeorm-books.js';

/** Room for the schema and a few rows; a filler file takes the rest. */
const TMPFS_SIZE = '16m';
/** A row far larger than any slack a full disk could leave in the WAL's last page, and under the payload limit. */
const LARGE_TITLE = 'x'.repeat(128 * 1024);

const run = (file: string, args: readonly string[]) =>
  new Promise<void>((resolve, reject) => {
    execFile(file, [...args], { timeout: 30_000 }, (error, _stdout, stderr) => (error ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || error.message}`)) : resolve()));
  });

let mountPoint = '';
let mounted = false;

beforeAll(async () => {
  mountPoint = mkdtempSync(join(tmpdir(), 'resthooks-diskfull-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', mountPoint]);
  mounted = true;
});

afterAll(async () => {
  if (mounted) {
    // Every database in it is closed by then; a lazy unmount still detaches it if something is not.
    await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]));
    mounted = false;
  }
  if (mountPoint) rmdirSync(mountPoint);
});

const fillerPath = () => join(mountPoint, 'filler');

/** Fills the tmpfs to the last byte. */
function fillDisk(): void {
  const fd = openSync(fillerPath(), 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

const freeDisk = () => rmSync(fillerPath(), { force: true });

interface Env {
  dataSource: DataSource;
  hooks: Hooks<BookEvent>;
  receiver: Receiver;
}

/** What each test opened, closed after it (newest first), before the tmpfs is unmounted. */
const closers: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  freeDisk();
  for (const close of closers.splice(0).reverse()) await close();
});

let databases = 0;

/** The app's TypeORM data source and the resthooks store on one SQLite file in the tmpfs. */
async function open(outbox: TypeormOutboxMode): Promise<Env> {
  const file = join(mountPoint, `app-${++databases}.db`);
  const dataSource = new DataSource({ type: 'better-sqlite3', database: file, entities: [BookEntity], synchronize: true });
  await dataSource.initialize();
  closers.push(() => dataSource.destroy());
  const { hooks, close: closeHooks } = await testHooks({ events: BOOK_EVENTS, store: sqliteStore(new Database(file)) });
  closers.push(closeHooks);
  const typeorm = await attachTypeorm(dataSource, hooks, { outbox });
  closers.push(() => typeorm.detach());
  expect(typeorm.mode).toBe(outbox);
  const receiver = await startReceiver();
  closers.push(() => receiver.close());
  await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/alice` });
  return { dataSource, hooks, receiver };
}

const book = (title: string): Omit<Book, 'id'> => ({ title, pages: 1, ownerId: 'alice' });

/** Every delivered title, once nothing is left to deliver (and a moment more for a late, wrong one). */
async function deliveredTitles(env: Env, expected: number): Promise<string[]> {
  await env.receiver.waitFor(expected, 15_000);
  await env.hooks.idle();
  await new Promise((resolve) => setTimeout(resolve, 100));
  return env.receiver.received.map((request) => String(request.json.data.title)).sort();
}

for (const outbox of ['transaction', 'after-commit'] as const) {
  describe(`resthooks/typeorm on a full disk, outbox '${outbox}'`, () => {
    it('a write refused for lack of space fires nothing; once space is back, the next writes fire again', async () => {
      const env = await open(outbox);
      const books = env.dataSource.getRepository(BookEntity);
      await books.save(book('Before'));
      await env.receiver.waitFor(1);

      fillDisk();
      await expect(books.save(book(LARGE_TITLE))).rejects.toThrow(/full/i);
      freeDisk();

      // A plain save (TypeORM's own transaction), then an explicit one.
      await books.save(book('After'));
      await env.dataSource.transaction((manager) => manager.save(BookEntity, book('After, in a transaction')));
      expect(await deliveredTitles(env, 3)).toEqual(['After', 'After, in a transaction', 'Before']);
      // The refused write left neither its row nor its event behind.
      expect((await books.find()).map((b) => b.title).sort()).toEqual(['After', 'After, in a transaction', 'Before']);
      await eventually(async () => expect(await env.hooks.recentEvents('book.added', { owner: 'alice', limit: 10 })).toHaveLength(3));
    });

    it('a COMMIT that failed for lack of space and was never rolled back does not hold later events', async () => {
      const env = await open(outbox);
      const runner = env.dataSource.createQueryRunner();
      await runner.connect();
      fillDisk();
      await runner.startTransaction();
      await runner.manager.save(BookEntity, book(LARGE_TITLE));
      await expect(runner.commitTransaction()).rejects.toThrow(/full/i);
      // The app gives up on the runner without calling rollbackTransaction().
      await runner.release();
      freeDisk();

      await env.dataSource.transaction((manager) => manager.save(BookEntity, book('In a transaction')));
      await env.dataSource.getRepository(BookEntity).save(book('Plain save'));
      expect(await deliveredTitles(env, 2)).toEqual(['In a transaction', 'Plain save']);
      expect(await env.dataSource.getRepository(BookEntity).count()).toBe(2);
    });
  });
}
