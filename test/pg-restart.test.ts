/**
 * A PostgreSQL restart mid-run: every process keeps running, fails only the operations that were in
 * flight, retries them, and resumes by itself once the server is back. Nothing is lost, nothing stays
 * pending or in flight. These tests restart their own PostgreSQL server (the suite's shared one is
 * left alone): once with the in-process engine, once with two `resthooks worker` processes on Redis.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { postgresStore, type Hooks, type Logger } from '../src/index.js';
import { bullmqQueue } from '../src/queue/bullmq/index.js';
import { startCli } from './cli/cli-process.js';
import { eventually, testHooks } from './support/hooks.js';
import { createTestDatabase, startPostgres, type PostgresServer } from './support/postgres.js';
import { startReceiver, type Receiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
const DOWN_MS = 3000;

let server: PostgresServer;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  server = await startPostgres({ durableCommits: true });
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A logger that keeps what it is told, for the assertions. */
function recordingLogger(): Logger & { readonly lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg: msg ?? '', obj });
  return { lines, debug() {}, info() {}, warn: at('warn'), error: at('error') };
}

/** A pool as an app makes one, with its own 'error' listener (which pg-pool drops while a client is checked out). */
async function appPool(): Promise<{ pool: pg.Pool; url: string }> {
  const database = await createTestDatabase(server.url);
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => {});
  cleanups.push(async () => {
    if (!pool.ended) await pool.end();
    await database.drop();
  });
  return { pool, url: database.url };
}

/**
 * Writes `count` events, one every few ms, as an app would: a write that fails while the database is
 * down is tried again. Resolves with the ids whose events were recorded.
 */
async function writeEvents(hooks: Hooks<'book.added'>, count: number, everyMs: number): Promise<number[]> {
  const written: number[] = [];
  for (let id = 1; id <= count; id++) {
    for (;;) {
      const result = await hooks.model('Book', 'created', { id, ownerId: 'alice' });
      if (result.status === 'queued') break;
      await sleep(50);
    }
    written.push(id);
    await sleep(everyMs);
  }
  return written;
}

const distinctIds = (receiver: Receiver) => new Set(receiver.received.map((r) => (r.json as { data: { id: number } }).data.id));

/** Writes events while the server restarts, then checks that each one that was written arrived exactly once in the end. */
async function writeThroughRestart(hooks: Hooks<'book.added'>, receiver: Receiver, deliveredWithinMs: number): Promise<void> {
  const writing = writeEvents(hooks, 300, 10);
  await eventually(() => expect(receiver.received.length).toBeGreaterThan(50), 20_000);
  await server.restart(DOWN_MS);
  const written = await writing;

  await eventually(() => expect(distinctIds(receiver).size).toBe(written.length), deliveredWithinMs);
  await hooks.idle({ timeout: '120s' });
  expect([...distinctIds(receiver)].sort((a, b) => a - b)).toEqual(written);
}

/**
 * A receiver that takes the database down while it holds the first request, and answers 200 once it
 * is down (`down.done`): the answer comes back to a process that cannot record it. Later requests get 200.
 */
async function receiverThatStopsTheDatabase(): Promise<{ receiver: Receiver; down: { done: Promise<void> } }> {
  const down = { done: Promise.resolve() };
  const receiver = await startReceiver((_request, index, response) => {
    if (index > 0) return 200;
    down.done = server.kill().then(() => void response.writeHead(200).end());
    return 'handled';
  });
  cleanups.push(() => receiver.close());
  return { receiver, down };
}

describe('a PostgreSQL restart mid-run', () => {
  it('in-process engine: the process lives, every event is delivered, nothing is left pending or in flight', async () => {
    const { pool } = await appPool();
    const logger = recordingLogger();
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const { hooks, close } = await testHooks({ events: EVENTS, store: postgresStore(pool), logger, delivery: { pollInterval: 100 } });
    cleanups.push(close);
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });

    await writeThroughRestart(hooks, receiver, 60_000);
    // The restart was seen, logged, and got over.
    expect(logger.lines.some((line) => line.level === 'error')).toBe(true);
  }, 240_000);

  it('an attempt that ends while the database is down is recorded once it is back, not sent again after its lease', async () => {
    const { pool } = await appPool();
    const logger = recordingLogger();
    const { receiver, down } = await receiverThatStopsTheDatabase();
    const { hooks, close } = await testHooks({ events: EVENTS, store: postgresStore(pool), logger, delivery: { pollInterval: 100, timeout: '10s' } });
    cleanups.push(close);
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(1, 20_000);
    await down.done;
    await eventually(() => expect(logger.lines.some((line) => line.msg.includes('could not record attempts'))).toBe(true), 20_000);
    await sleep(DOWN_MS);
    await server.start();

    // Its lease is the timeout plus a minute: recorded within seconds means the record itself was retried.
    const [delivery] = await eventually(async () => {
      const deliveries = await hooks.deliveries.list(subscription.id);
      expect(deliveries[0]).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
      return deliveries;
    }, 30_000);
    expect(delivery!.attemptLog).toHaveLength(1);
    await hooks.idle({ timeout: '30s' });
    expect(receiver.received).toHaveLength(1);
  }, 120_000);

  it('two `resthooks worker` processes and an app on PostgreSQL + Redis: the workers live, everything is delivered', async () => {
    const { pool, url } = await appPool();
    const logger = recordingLogger();
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const queueName = `resthooks-pg-restart-${process.pid}`;
    const { hooks: app, close } = await testHooks({
      events: EVENTS,
      store: postgresStore(pool),
      logger,
      queue: bullmqQueue({ connection: inject('redisUrl'), queueName, worker: false }),
      delivery: { pollInterval: 100 },
    });
    cleanups.push(close);
    const workers = [1, 2].map(() => startCli(['worker', '--db', url, '--redis', inject('redisUrl'), '--queue', queueName, '--concurrency', '8', '--allow-private-targets']));
    cleanups.push(() => workers.forEach((worker) => worker.kill()));
    await Promise.all(workers.map((worker) => worker.waitFor(/Delivering jobs from/)));
    await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });

    await writeThroughRestart(app, receiver, 90_000);
    for (const worker of workers) {
      expect({ exitCode: worker.child.exitCode, signal: worker.child.signalCode, stderr: worker.stderr() }).toMatchObject({ exitCode: null, signal: null });
      expect(worker.stderr()).not.toMatch(/Unhandled|Connection terminated unexpectedly\n\s+at /);
    }
    // They saw the outage and said so.
    expect(workers.some((worker) => /error/.test(worker.stderr()))).toBe(true);
  }, 240_000);

  it('stop() while the database is down still ends at its deadline: the unwritten record is given up, its lease brings it back', async () => {
    const { pool } = await appPool();
    const logger = recordingLogger();
    const { receiver, down } = await receiverThatStopsTheDatabase();
    const { hooks } = await testHooks({ events: EVENTS, store: postgresStore(pool), logger, delivery: { pollInterval: 100 } });
    try {
      await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
      await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
      await receiver.waitFor(1, 20_000);
      await down.done;
      await eventually(() => expect(logger.lines.some((line) => line.msg.includes('could not record attempts; retrying'))).toBe(true), 20_000);
      const stopping = Date.now();
      await hooks.stop({ timeout: 500 });
      expect(Date.now() - stopping).toBeLessThan(10_000);
      expect(logger.lines.some((line) => line.msg.includes('could not record attempts at shutdown'))).toBe(true);
    } finally {
      await server.start(); // the other tests' databases are dropped after this one
    }
  }, 120_000);
});
