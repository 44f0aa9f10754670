/**
 * Stranded claims on the distributed engine: how long deliveries wait after a worker is killed, after
 * Redis restarts empty, and whether the lease and BullMQ's lock settings set on `resthooks worker`
 * (flags or the --config module) reach the queue.
 */
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseWorkerOptions, workerQueueOptions } from '../src/cli/worker-command.js';
import { UsageError } from '../src/cli/command.js';
import { sqliteStore, type Hooks, type StoreDialect } from '../src/index.js';
import { bullmqQueue, type BullmqQueueOptions } from '../src/queue/bullmq/index.js';
import { startCli, type CliProcess } from './cli/cli-process.js';
import { TestDatabase, type Engine } from './support/database.js';
import { eventually, tempDir, testHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { startRedis } from './support/redis.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
const redisUrl = inject('redisUrl');

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

let queues = 0;
const queueName = () => `resthooks-faults-${process.pid}-${++queues}`;
const distinctIds = (receiver: Receiver) => new Set(receiver.received.map((r) => (r.json as { data: { id: number } }).data.id));

async function receiverFor(respond?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const receiver = await startReceiver(respond);
  return later(() => receiver.close(), receiver);
}

async function database(engine: Engine): Promise<TestDatabase> {
  const db = new TestDatabase(engine);
  await db.init();
  cleanups.push(() => db.close()); // after every process using it has closed
  return db;
}

/** Hooks on `store` with a BullMQ queue; closed after the test file. */
async function bullHooks(store: StoreDialect, queue: BullmqQueueOptions): Promise<Hooks<keyof typeof EVENTS>> {
  const { hooks, close } = await testHooks({ events: EVENTS, store, queue: bullmqQueue(queue) }, { start: false });
  return later(close, hooks);
}

function worker(args: readonly string[]): CliProcess {
  const cli = startCli(['worker', '--allow-private-targets', ...args]);
  return later(() => cli.kill(), cli);
}

const WORKER_UP = /Delivering jobs from/;

function inspector(name: string, url: string): Queue {
  const queue = new Queue(name, { connection: { url } });
  return later(() => queue.close(), queue);
}

describe('resthooks worker: lease and lock options', () => {
  const base = ['--db', 'hooks.db', '--redis', 'redis://127.0.0.1:6379'];

  it('parseWorkerOptions reads --lease, --lock-duration and --stalled-interval as durations', () => {
    expect(parseWorkerOptions([...base, '--lease', '45s', '--lock-duration', '10s', '--stalled-interval', '2500ms'], {})).toMatchObject({
      leaseMs: 45_000,
      lockDurationMs: 10_000,
      stalledIntervalMs: 2500,
    });
    expect(parseWorkerOptions(base, {})).toMatchObject({ leaseMs: undefined, lockDurationMs: undefined, stalledIntervalMs: undefined });
    expect(() => parseWorkerOptions([...base, '--lease', 'soon'], {})).toThrow(UsageError);
    expect(() => parseWorkerOptions([...base, '--lock-duration', '0ms'], {})).toThrow(/--lock-duration must be at least 1ms/);
    expect(() => parseWorkerOptions([...base, '--stalled-interval'], {})).toThrow(UsageError);
  });

  it('the command line wins over the --config module, which wins over the defaults', () => {
    const config = { leaseMs: 60_000, lockDuration: 20_000, stalledInterval: 5000, maxWaiting: 200, queueName: 'from-config' };
    const flags = parseWorkerOptions([...base, '--lease', '30s', '--queue', 'from-flag', '--concurrency', '8'], {});
    expect(workerQueueOptions(flags, config)).toEqual({
      leaseMs: 30_000,
      lockDuration: 20_000,
      stalledInterval: 5000,
      maxWaiting: 200,
      queueName: 'from-flag',
      workerConcurrency: 8,
    });
    expect(workerQueueOptions(parseWorkerOptions(base, {}))).toEqual({});
  });

  // The claim's time and its lease's end are read from the clock a moment apart.
  const expectLease = (leaseMs: number, expected: number) => expect(expected - leaseMs).toSatisfy((gap: number) => gap >= 0 && gap < 100);

  // Leases above the attempt timeout (15 s) + 5 s: a shorter one is extended when the job starts.
  // A real worker process claims the delivery itself (the app here never starts), so the lease on the row is the worker's.
  async function claimedByWorker(args: (file: string, name: string) => string[]) {
    const name = queueName();
    const dir = tempDir();
    cleanups.unshift(() => dir.cleanup());
    const file = join(dir.path, 'hooks.db');
    const receiver = await receiverFor(() => 'hang');
    const app = await bullHooks(sqliteStore(new Database(file)), { connection: redisUrl, queueName: name, worker: false });
    await app.migrate();
    await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await app.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const cli = worker(args(file, name));
    await cli.waitFor(WORKER_UP);
    await receiver.waitFor(1, 20_000);

    const db = new Database(file, { readonly: true });
    cleanups.unshift(() => db.close());
    const row = db.prepare(`select status, due_at, updated_at from resthooks_deliveries`).get() as { status: string; due_at: number; updated_at: number };
    const inspect = inspector(name, redisUrl);
    const [job] = await inspect.getActive();
    const redis = new Redis(redisUrl);
    cleanups.unshift(() => redis.disconnect());
    const lockTtl = await redis.pttl(`bull:${name}:${job!.id}:lock`);
    return { leaseMs: row.due_at - row.updated_at, status: row.status, lockTtl };
  }

  it('--lease and --lock-duration reach the queue of a real worker process', async () => {
    const seen = await claimedByWorker((file, name) => ['--db', file, '--redis', redisUrl, '--queue', name, '--lease', '25s', '--lock-duration', '4s']);
    expect(seen.status).toBe('in_flight');
    expectLease(seen.leaseMs, 25_000);
    expect(seen.lockTtl).toBeGreaterThan(0);
    expect(seen.lockTtl).toBeLessThanOrEqual(4000); // BullMQ's default lock: 30 s
  });

  it("the --config module's `bullmq` options reach the queue of a real worker process", async () => {
    const dir = tempDir();
    cleanups.unshift(() => dir.cleanup());
    const config = join(dir.path, 'hooks.config.mjs');
    writeFileSync(config, `export default { events: ${JSON.stringify(EVENTS)}, bullmq: { leaseMs: 30_000, lockDuration: 3000 } };\n`);
    const seen = await claimedByWorker((file, name) => ['--db', file, '--redis', redisUrl, '--queue', name, '--config', config]);
    expectLease(seen.leaseMs, 30_000);
    expect(seen.lockTtl).toBeGreaterThan(0);
    expect(seen.lockTtl).toBeLessThanOrEqual(3000);
  });

  it('by default a claim is leased for the attempt timeout + 5 s + 20 ms per delivery that may wait ahead of it', async () => {
    const seen = await claimedByWorker((file, name) => ['--db', file, '--redis', redisUrl, '--queue', name]);
    expectLease(seen.leaseMs, 15_000 + 5000 + 1000 * 20);
  });
});

describe.each(['postgres', 'sqlite'] as const)('stranded claims (%s)', (engine) => {
  it('a worker killed with kill -9 mid-run: the rest is delivered by the other within seconds, not after the lease', async () => {
    const name = queueName();
    const db = await database(engine);
    // Slow answers, so each worker has attempts in flight when one is killed.
    const receiver = await receiverFor((_request, _index, response) => (setTimeout(() => response.writeHead(200).end(), 300), 'handled'));
    // Long leases everywhere: only BullMQ's stalled-job check can bring the killed worker's jobs back in time.
    const app = await bullHooks(db.dialect(), { connection: redisUrl, queueName: name, worker: false, leaseMs: 300_000 });
    await app.start(); // migrates before the workers open the database
    const settings = ['--db', db.url, '--redis', redisUrl, '--queue', name, '--concurrency', '4', '--lease', '300s', '--lock-duration', '3s', '--stalled-interval', '1s'];
    const [doomed, survivor] = [worker(settings), worker(settings)];
    await Promise.all([doomed.waitFor(WORKER_UP), survivor.waitFor(WORKER_UP)]);

    await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    for (let id = 1; id <= 40; id++) await app.model('Book', 'created', { id, ownerId: 'alice' });
    await receiver.waitFor(10, 30_000);
    doomed.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await doomed.exited).toBeNull();

    await eventually(() => expect(distinctIds(receiver).size).toBe(40), 45_000);
    await app.idle({ timeout: '45s' });
    // Far under BullMQ's default 30 s lock + 30 s stalled check, and under the 300 s lease.
    expect(Date.now() - killedAt).toBeLessThan(45_000);
    expect(survivor.child.exitCode).toBeNull();
  }, 120_000);

  it('Redis restarted empty: the jobs it lost are added again at once, not after the lease', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const name = queueName();
    const db = await database(engine);
    const receiver = await receiverFor();
    const app = await bullHooks(db.dialect(), { connection: redis.url, queueName: name, worker: false, leaseMs: 300_000 });
    await app.start();
    const subscription = await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    for (let id = 1; id <= 20; id++) await app.model('Book', 'created', { id, ownerId: 'alice' });
    const inspect = inspector(name, redis.url);
    // Jobs carry several deliveries (those relayed together, or re-added by the relay's first check of Redis).
    const waitingDeliveries = async () => new Set((await inspect.getWaiting()).flatMap((job) => (job.data as { deliveries: Array<{ id: string }> }).deliveries.map((d) => d.id))).size;
    await eventually(async () => expect(await waitingDeliveries()).toBe(20), 20_000);

    await redis.restart(500);
    const restartedAt = Date.now();
    // Only now a worker: whatever it gets, it gets from jobs added after the restart.
    const workerHooks = await bullHooks(db.dialect(), { connection: redis.url, queueName: name, worker: true, leaseMs: 300_000 });
    await workerHooks.start();

    await eventually(() => expect(distinctIds(receiver).size).toBe(20), 30_000);
    expect(Date.now() - restartedAt).toBeLessThan(30_000);
    // Received is not yet recorded: the worker records each attempt after its answer.
    await eventually(async () => {
      const deliveries = await app.deliveries.list(subscription.id);
      expect(deliveries.map((d) => [d.status, d.attempts])).toEqual(Array.from({ length: 20 }, () => ['delivered', 1]));
    }, 30_000);
  }, 120_000);

  it('a job that waited in Redis past its lease extends the lease before its attempt, so no relay claims it meanwhile', async () => {
    const name = queueName();
    const db = await database(engine);
    let attemptStarted = 0;
    const release: Array<() => void> = [];
    const receiver = await receiverFor((_request, _index, response) => {
      attemptStarted = Date.now();
      release.push(() => response.writeHead(200).end());
      return 'handled';
    });
    // The app's claims lapse while their job waits (no worker yet); it claims them again and again.
    const app = await bullHooks(db.dialect(), { connection: redisUrl, queueName: name, worker: false, leaseMs: 300 });
    await app.start();
    const subscription = await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await app.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const inspect = inspector(name, redisUrl);
    // One job per relay of the claim (jobs are not deduplicated; one job at a time attempts it).
    await eventually(async () => expect(await inspect.getWaitingCount()).toBeGreaterThanOrEqual(1), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 600));

    const workerHooks = await bullHooks(db.dialect(), { connection: redisUrl, queueName: name, worker: true });
    await workerHooks.start();
    await receiver.waitFor(1, 20_000);
    // testHooks' attempt timeout is 2 s: the lease must now outlast the attempt plus 5 s to record it.
    const store = db.store();
    cleanups.unshift(() => store.destroy());
    const row = await store.db.selectFrom('resthooks_deliveries').select(['status', 'due_at']).executeTakeFirstOrThrow();
    expect(row.status).toBe('in_flight');
    expect(Number(row.due_at) - attemptStarted).toBeGreaterThan(5000);
    // Meanwhile the app keeps relaying: it must not take the delivery away from the running attempt.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    release.forEach((answer) => answer());
    await app.idle({ timeout: '20s' });
    expect(receiver.received).toHaveLength(1);
    expect((await app.deliveries.list(subscription.id))[0]).toMatchObject({ status: 'delivered', attempts: 1 });
  }, 60_000);
});
