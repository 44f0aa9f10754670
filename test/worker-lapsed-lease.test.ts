/**
 * A late attempt record never overwrites newer state, on the distributed engine with real
 * `resthooks worker` processes, a real Redis, and a real PostgreSQL database or shared SQLite file.
 *
 * The fault: a worker gets its receiver's answer but cannot write the record (its link to the
 * database is cut, or the database is locked by someone else), and then stalls (SIGSTOP: a long GC
 * pause, a suspended VM) past its lease. A relay claims the delivery again, BullMQ hands the stalled
 * job to another worker once its lock lapses, and that worker delivers it. When the stalled worker
 * comes back, it writes its record at last: that record must change nothing, and the worker says so.
 *
 * Why not simply a receiver that holds the request past the lease: a worker extends the claim's
 * lease when its job starts, to the attempt timeout + 5 s, so an attempt that is still waiting for
 * its answer has always timed out before its lease lapses. A lease lapses only when the worker
 * stalls after its attempt, which is what this test makes happen.
 */
import Database from 'better-sqlite3';
import type { ServerResponse } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { type Hooks, type StoreDialect } from '../src/index.js';
import { silentLogger } from '../src/logger.js';
import { bullmqQueue, type BullmqQueueOptions } from '../src/queue/bullmq/index.js';
import { startCli, type CliProcess } from './cli/cli-process.js';
import { TestDatabase, type Engine } from './support/database.js';
import { eventually, tempDir, testHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
const redisUrl = inject('redisUrl');
/** The workers' attempt timeout: the lease a worker gives its claim when its job starts is this + 5 s. */
const ATTEMPT_TIMEOUT = '5s';
/** The relays' lease, shorter than an attempt's, so that each worker extends it as its job starts. */
const RELAY_LEASE_MS = 4000;
const WORKER_UP = /Delivering jobs from/;
const STALE_RECORD = /attempt results arrived after their claims lapsed and the deliveries were taken over; discarded/;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);

let queues = 0;
const queueName = () => `resthooks-lapsed-${process.pid}-${++queues}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function database(engine: Engine): Promise<TestDatabase> {
  const db = new TestDatabase(engine);
  await db.init();
  cleanups.push(() => db.close()); // after every process using it has closed
  return db;
}

async function receiverFor(respond: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const receiver = await startReceiver(respond);
  return later(() => receiver.close(), receiver);
}

/** The app: it writes events and relays them to Redis, and attempts nothing itself. */
async function relayHooks(store: StoreDialect, queue: BullmqQueueOptions): Promise<Hooks<keyof typeof EVENTS>> {
  const { hooks, close } = await testHooks({ events: EVENTS, store, logger: silentLogger, queue: bullmqQueue(queue) }, { start: false });
  return later(close, hooks);
}

/** A `--config` module for the workers: a short attempt timeout, and retries due within ms (so a wrongly applied 503 is seen re-sent). */
function workerConfig(): string {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const file = join(dir.path, 'worker.config.mjs');
  const config = { events: EVENTS, delivery: { timeout: ATTEMPT_TIMEOUT, retry: { schedule: [0, 200, 400], jitter: 0 } } };
  writeFileSync(file, `export default ${JSON.stringify(config)};\n`);
  return file;
}

function worker(args: readonly string[]): CliProcess {
  const cli = startCli(['worker', '--allow-private-targets', ...args]);
  // SIGKILL ends a stopped process too.
  return later(() => cli.kill(), cli);
}

/**
 * How the stalled worker reaches the database, and how the test keeps its record from being written:
 * on PostgreSQL its connections go through a proxy that the test cuts, and its failed write is logged
 * at once; a SQLite file is locked by a write transaction the test holds, and every writer waits for
 * it (the worker among them) without a sign for longer than this test waits.
 */
interface BlockableDatabase {
  /** The worker's `--db`. */
  readonly target: string;
  block(): void;
  unblock(): void;
  /** Resolves once `worker` shows it could not write (PostgreSQL), or at once (SQLite). */
  refused(worker: CliProcess): Promise<unknown>;
}

async function blockableDatabase(db: TestDatabase): Promise<BlockableDatabase> {
  if (db.engine === 'postgres') {
    const url = new URL(db.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    later(() => proxy.close(), proxy);
    url.port = String(proxy.port);
    return {
      target: url.href,
      block: () => proxy.cut(),
      unblock: () => proxy.restore(),
      refused: (worker) => eventually(() => expect(worker.stderr()).toMatch(/could not record attempts; retrying/), 60_000),
    };
  }
  const writer = new Database(db.url);
  later(() => writer.close(), writer);
  return {
    target: db.url,
    block: () => writer.exec('begin immediate'),
    unblock: () => writer.exec('rollback'),
    refused: async () => undefined,
  };
}

const LATE_ANSWERS = [503, 410, 200] as const;

describe.each(['postgres', 'sqlite'] as const)('a `resthooks worker` whose lease lapsed before it could record its attempt (%s)', (engine) => {
  it.each(LATE_ANSWERS)(
    'its late %i, written after another worker delivered the delivery, changes nothing: delivered once, never flipped back',
    async (lateAnswer) => {
      const db = await database(engine);
      const name = queueName();
      let held: ServerResponse | undefined;
      const receiver = await receiverFor((_request, index, response) => (index === 0 ? ((held = response), 'handled') : 200));
      const app = await relayHooks(db.dialect(), { connection: redisUrl, queueName: name, worker: false, leaseMs: RELAY_LEASE_MS });
      await app.start(); // migrates before the workers open the database
      const subscription = await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
      const store = await db.migrated();
      later(() => store.destroy(), store);
      const deliveryRow = () => store.db.selectFrom('resthooks_deliveries').selectAll().executeTakeFirstOrThrow();

      const config = workerConfig();
      // BullMQ's lock and stalled check, short: a stalled worker's job goes to another worker within seconds.
      const settings = ['--redis', redisUrl, '--queue', name, '--config', config, '--lease', `${RELAY_LEASE_MS}ms`, '--lock-duration', '3s', '--stalled-interval', '1s'];
      const link = await blockableDatabase(db);
      const stalled = worker(['--db', link.target, ...settings]);
      await stalled.waitFor(WORKER_UP, 30_000);

      await app.model('Book', 'created', { id: 1, ownerId: 'alice' });
      await receiver.waitFor(1, 30_000);
      // The worker extended the lease as its job started, before sending: this is its lease's end.
      const { due_at: leaseEnd, status } = await deliveryRow();
      expect(status).toBe('in_flight');

      link.block();
      held!.writeHead(lateAnswer).end();
      // It has the answer and cannot record it; it keeps trying until its lease has lapsed.
      await link.refused(stalled);
      await eventually(() => expect(Date.now()).toBeGreaterThan(Number(leaseEnd)), 30_000);
      stalled.child.kill('SIGSTOP');
      later(() => stalled.child.kill('SIGCONT'), undefined);
      link.unblock();

      // Another worker gets the job once the stalled one's BullMQ lock lapses, and takes the lapsed claim over
      // (claimed again by a relay, or its lease extended by that worker as its job starts).
      const taker = worker(['--db', db.url, ...settings]);
      await taker.waitFor(WORKER_UP, 30_000);
      await eventually(async () => expect(await deliveryRow()).toMatchObject({ status: 'delivered', last_status_code: 200 }), 60_000);
      const delivered = await deliveryRow();
      const [first, second] = receiver.received;
      expect(second!.at).toBeGreaterThan(Number(leaseEnd));
      expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);

      // The stalled worker comes back and writes its record at last: discarded, and it says so (had the
      // record applied, the delivery's row would change instead).
      stalled.child.kill('SIGCONT');
      const statuses = new Set<string>();
      await eventually(async () => {
        const row = await deliveryRow();
        statuses.add(row.status);
        expect(STALE_RECORD.test(stalled.stderr()) || !isDeepStrictEqual(row, delivered)).toBe(true);
      }, 60_000);
      await sleep(1000); // a wrongly applied retry would be due 200 ms after it
      await app.idle({ timeout: '30s' });
      statuses.add((await deliveryRow()).status);

      expect([...statuses]).toEqual(['delivered']);
      expect(await deliveryRow()).toEqual(delivered);
      const [delivery] = await app.deliveries.list(subscription.id);
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
      expect(delivery!.attemptLog.map((a) => [a.number, a.statusCode])).toEqual([[1, 200]]);
      expect(await app.subscriptions.get(subscription.id)).toMatchObject({ id: subscription.id, active: true });
      expect(receiver.received).toHaveLength(2);
      const staleLine = stalled.stderr().split('\n').find((line) => STALE_RECORD.test(line));
      expect(staleLine, stalled.stderr()).toBeDefined();
      expect(JSON.parse(staleLine!.slice(staleLine!.indexOf('{')))).toMatchObject({
        records: [{ deliveryId: delivered.id, attempt: 1, statusCode: lateAnswer }],
      });
      for (const cli of [stalled, taker]) expect({ exitCode: cli.child.exitCode, signal: cli.child.signalCode }).toEqual({ exitCode: null, signal: null });
    },
    180_000,
  );
});
