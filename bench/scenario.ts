/**
 * The benches' common scenario: one owner's K subscriptions to `book.added`, N awaited `hooks.model()`
 * saves of the same book, delivered to the bench receiver, on a fresh SQLite file.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { createHooks, sqliteStore, type Hooks, type StoreDialect, type TracingOptions } from '../src/index.js';
import { cpuPerDelivery, type Receiver, type RunResult } from './receiver-process.js';

export const CONCURRENCY = 64;

/** A clock comparable across processes on one machine (the receiver reports on it). */
export const now = () => performance.timeOrigin + performance.now();

/** `n` books saved through `hooks.model()`, each awaited, as the end-to-end runs time them; any result but queued fails the run. */
export async function saveBooks(hooks: Pick<Hooks<'book.added'>, 'model'>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const result = await hooks.model('Book', 'created', book(i));
    if (result.status !== 'queued') throw new Error(`hooks.model() returned ${JSON.stringify(result)}`);
  }
}

export function book(i: number) {
  return {
    id: i,
    title: 'The Fellowship of the Ring',
    author: 'J. R. R. Tolkien',
    isbn: '978-0-261-10235-4',
    pages: 423,
    ownerId: 'alice',
    createdAt: new Date(1_700_000_000_000 + i),
  };
}

let files = 0;

/** Hooks on a fresh SQLite file in `dir`, with `k` subscriptions of one owner pointing at the receiver. */
export async function newHooks(dir: string, port: number, k: number, tracing?: TracingOptions): Promise<{ hooks: Hooks; file: string; store: StoreDialect }> {
  const file = join(dir, `hooks-${process.pid}-${++files}.db`);
  const store = sqliteStore(new Database(file));
  const hooks = createHooks({
    events: { 'book.added': 'Book.created' },
    store,
    allowPrivateTargets: true,
    // One tenant: its owner may use every slot (the default share, 0.5, keeps half free for other owners).
    delivery: { concurrency: CONCURRENCY, connectionsPerOrigin: CONCURRENCY, ownerShare: 1 },
    ...(tracing ? { tracing } : {}),
  });
  for (let i = 0; i < k; i++) {
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `http://127.0.0.1:${port}/hook/${i}` });
  }
  return { hooks, file, store };
}

/**
 * Resolves once the SQLite store's checkpointer thread, which `hooks.start()` starts, has booted (a V8
 * isolate, the driver, a connection): a one-time cost of starting, as opening the database is, not work
 * per delivery. Measured in the clock, it was ~40 ms of CPU in a run of 1,000 deliveries (about a third
 * of that run's client CPU), while the floor starts no thread. Gives up waiting after a few seconds.
 */
export async function checkpointerStarted(store: StoreDialect): Promise<void> {
  const thread = (store.maintenance as { readonly thread?: Worker } | undefined)?.thread;
  if (!thread) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, 5_000);
    function done() {
      clearTimeout(timer);
      thread!.off('message', onMessage);
      resolve();
    }
    function onMessage(message: { readonly type?: string }) {
      if (message.type === 'ready') done();
    }
    thread.on('message', onMessage);
  });
}

/**
 * N saves to K subscriptions, timed from the first save to the receiver's receipt of the last delivery;
 * afterwards every delivery must be `delivered` after one attempt, or the number means nothing.
 */
export async function resthooksEndToEnd(rx: Receiver, { dir, n, k }: { dir: string; n: number; k: number }): Promise<RunResult> {
  const { hooks, file, store } = await newHooks(dir, rx.port, k);
  await hooks.start();
  await checkpointerStarted(store);
  const total = n * k;
  const reached = await rx.expect(total, 120_000);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await saveBooks(hooks, n);
  const triggered = now();
  const end = await reached();
  const cpuUs = cpuPerDelivery(cpu0, end, total);
  await hooks.idle({ timeout: '30s' });
  await hooks.close();
  const db = new Database(file, { readonly: true });
  const rows = db.prepare('select status, attempts, count(*) as n from resthooks_deliveries group by status, attempts').all() as Array<{ status: string; attempts: number; n: number }>;
  db.close();
  if (rows.length !== 1 || rows[0]!.status !== 'delivered' || rows[0]!.attempts !== 1 || rows[0]!.n !== total) {
    throw new Error(`unexpected delivery states after the run: ${JSON.stringify(rows)}`);
  }
  return { deliveries: total, ms: end.at - t0, triggerMs: triggered - t0, cpuUs };
}
