/**
 * `resthooks worker --port`: a real worker process serves /healthz, /readyz and /metrics over HTTP;
 * its metrics count the attempts it made, and readiness follows its store's reachability.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseWorkerOptions } from '../src/cli/worker-command.js';
import type { Hooks, StoreDialect } from '../src/index.js';
import { bullmqQueue, type BullmqQueueOptions } from '../src/queue/bullmq/index.js';
import { startCli, type CliProcess } from './cli/cli-process.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';
import { eventually, testHooks } from './support/hooks.js';
import { parseExposition } from './support/prometheus.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
const redisUrl = inject('redisUrl');

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

let queues = 0;
const queueName = () => `resthooks-health-${process.pid}-${++queues}`;

async function database(engine: Engine): Promise<TestDatabase> {
  const db = new TestDatabase(engine);
  await db.init();
  cleanups.push(() => db.close());
  return db;
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  return later(() => r.close(), r);
}

async function appHooks(store: StoreDialect, queue: BullmqQueueOptions): Promise<Hooks<keyof typeof EVENTS>> {
  const { hooks, close } = await testHooks({ events: EVENTS, store, queue: bullmqQueue(queue) });
  return later(close, hooks);
}

/** Starts a worker with `--port 0` and resolves to the origin it printed. */
async function workerServing(args: readonly string[]): Promise<{ cli: CliProcess; origin: string }> {
  const cli = startCli(['worker', '--allow-private-targets', '--port', '0', ...args]);
  later(() => cli.kill(), cli);
  const [, origin] = await cli.waitFor(/Health and metrics: (http:\/\/127\.0\.0\.1:\d+)\/healthz/, 30_000);
  return { cli, origin: origin! };
}

async function get(origin: string, path: string): Promise<{ status: number; type: string | null; body: string }> {
  const response = await fetch(origin + path);
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

describe('resthooks worker: --port and --host', () => {
  const base = ['--db', 'hooks.db', '--redis', 'redis://127.0.0.1:6379'];
  it('reads --port as a port number and --host as the address, 127.0.0.1 by default', () => {
    expect(parseWorkerOptions([...base, '--port', '9464'], {})).toMatchObject({ port: 9464, host: '127.0.0.1' });
    expect(parseWorkerOptions([...base, '--port', '0', '--host', '0.0.0.0'], {})).toMatchObject({ port: 0, host: '0.0.0.0' });
    expect(parseWorkerOptions(base, {})).toMatchObject({ port: undefined });
    expect(() => parseWorkerOptions([...base, '--port', '70000'], {})).toThrow(/--port must be an integer from 0 to 65535/);
  });
});

describe.each(ENGINES)('resthooks worker --port (%s)', (engine) => {
  it('serves /healthz, /readyz and /metrics; its metrics count the attempts it made', async () => {
    const db = await database(engine);
    const r = await receiver();
    const name = queueName();
    const app = await appHooks(db.dialect(), { connection: redisUrl, queueName: name, worker: false });
    await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${r.url}/hook` });
    const { origin } = await workerServing(['--db', db.url, '--redis', redisUrl, '--queue', name]);

    const live = await get(origin, '/healthz');
    expect(live.status).toBe(200);
    expect(JSON.parse(live.body)).toMatchObject({ ok: true, checks: { dispatcher: { ok: true, started: true } } });
    const ready = await get(origin, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: true, ok: true, checks: { store: { ok: true }, backlog: { ok: true } } });
    expect((await get(origin, '/nothing')).status).toBe(404);

    await app.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await app.model('Book', 'created', { id: 2, ownerId: 'alice' });
    await r.waitFor(2, 30_000);
    // The app's process makes no attempt (worker: false); the worker's /metrics counts them.
    await eventually(async () => {
      const metrics = await get(origin, '/metrics');
      expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/);
      const exposition = parseExposition(metrics.body);
      expect(exposition.value('resthooks_attempts_total', { outcome: 'delivered' })).toBe(2);
      expect(exposition.value('resthooks_deliveries_total', { outcome: 'delivered' })).toBe(2);
      expect(exposition.value('resthooks_attempt_duration_seconds_count')).toBe(2);
      expect(exposition.value('resthooks_store_up')).toBe(1);
      expect(exposition.value('resthooks_subscriptions', { state: 'active' })).toBe(1);
    }, 20_000);
    expect(parseExposition(await app.metrics()).value('resthooks_attempts_total', { outcome: 'delivered' })).toBe(0);
  }, 90_000);
});

describe.skipIf(!ENGINES.includes('postgres'))('resthooks worker --port, its PostgreSQL cut off', () => {
  it('/readyz answers 503 while the worker cannot reach PostgreSQL and 200 once it can; /healthz stays 200', async () => {
    const db = await database('postgres');
    await (await db.migrated()).destroy();
    const url = new URL(db.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    later(() => proxy.close(), proxy);
    url.port = String(proxy.port);
    const { origin } = await workerServing(['--db', url.href, '--redis', redisUrl, '--queue', queueName()]);
    expect((await get(origin, '/readyz')).status).toBe(200);

    proxy.cut();
    const down = await eventually(async () => {
      const readiness = await get(origin, '/readyz');
      expect(readiness.status).toBe(503);
      return JSON.parse(readiness.body) as { checks: { store: { ok: boolean; detail: string } } };
    }, 30_000);
    expect(down.checks.store).toMatchObject({ ok: false });
    // The process is alive: restarting it would not bring the database back.
    expect((await get(origin, '/healthz')).status).toBe(200);
    // Once the cached backlog (5 s by default) has expired.
    await eventually(async () => expect(parseExposition((await get(origin, '/metrics')).body).value('resthooks_store_up')).toBe(0), 30_000);

    proxy.restore();
    await eventually(async () => expect((await get(origin, '/readyz')).status).toBe(200), 30_000);
  }, 90_000);
});
