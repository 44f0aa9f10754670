/**
 * The delivery semantics on the distributed engine: BullMQ on a real Redis, with a real SQLite file
 * and a real PostgreSQL database. One process that relays and works; an app that only relays with
 * two workers beside it; the relay's idempotence (one job per delivery attempt, however often relayed).
 */
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sqliteStore, type ClaimedDelivery, type DeliveryQueue, type Hooks, type HooksOptions, type QueueFactory, type StoreDialect } from '../src/index.js';
import type { ProcessedClaim } from '../src/queue/queue.js';
import type { ReceiverVerdict, SendGate } from '../src/queue/send-gate.js';
import { silentLogger } from '../src/logger.js';
import { bullmqQueue, type BullmqQueueOptions } from '../src/queue/bullmq/index.js';
import { DeliveryGuard } from '../src/queue/bullmq/delivery-guard.js';
import { attemptsOf } from '../src/queue/bullmq/delivery-jobs.js';
import { startCli } from './cli/cli-process.js';
import { eventually, tempDir, testHooks } from './support/hooks.js';
import { TestDatabase, type Engine } from './support/database.js';
import { startReceiver, verify, type Receiver } from './support/receiver.js';
import { startRedis } from './support/redis.js';

const EVENTS = { 'book.added': 'Book.created' } as const;

const redisUrl = inject('redisUrl');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

let queues = 0;
const queueName = () => `resthooks-test-${process.pid}-${++queues}`;

/** A database any number of `createHooks` can share: a temp SQLite file, or a fresh PostgreSQL database. */
async function sharedStore(engine: Engine): Promise<() => StoreDialect> {
  const db = new TestDatabase(engine);
  await db.init();
  cleanups.push(() => db.close()); // after every hooks instance has closed
  return () => db.dialect();
}

async function bullHooks(store: StoreDialect, queue: BullmqQueueOptions | QueueFactory, options: Partial<HooksOptions<keyof typeof EVENTS>> = {}): Promise<Hooks<keyof typeof EVENTS>> {
  const { hooks, close } = await testHooks({ events: EVENTS, store, ...options, queue: typeof queue === 'function' ? queue : bullmqQueue(queue) }, { start: false });
  return later(close, hooks);
}

function inspector(name: string): Queue {
  const queue = new Queue(name, { connection: { url: redisUrl } });
  return later(() => queue.close(), queue);
}

/** A bullmqQueue seen from outside: every enqueue recorded (with the lease its claims got), and a lease the test sets at any time. */
function spyQueue(options: BullmqQueueOptions, leaseMs: number) {
  let inner: DeliveryQueue | undefined;
  let leaseRead = leaseMs;
  const spy = {
    leaseMs,
    relayed: [] as ClaimedDelivery[][],
    leases: [] as number[],
    queue: () => inner!,
    factory: ((context) => {
      const queue = bullmqQueue(options)(context);
      inner = queue;
      return {
        // The dispatcher reads the lease right before each claim, and one pass runs at a time.
        get leaseMs() {
          return (leaseRead = spy.leaseMs);
        },
        capacity: () => queue.capacity(),
        enqueue: (claims) => (spy.relayed.push([...claims]), spy.leases.push(leaseRead), queue.enqueue(claims)),
        onCapacity: (listener) => queue.onCapacity(listener),
        settled: () => queue.settled(),
        close: (timeoutMs) => queue.close(timeoutMs),
      };
    }) as QueueFactory,
  };
  return spy;
}

const receiverFor = async (respond?: Parameters<typeof startReceiver>[0]): Promise<Receiver> => {
  const receiver = await startReceiver(respond);
  return later(() => receiver.close(), receiver);
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('bullmqQueue: one process relays and works', () => {
  let hooks: Hooks<'book.added'>;
  beforeAll(async () => {
    hooks = await bullHooks((await sharedStore('sqlite'))(), { connection: redisUrl, queueName: queueName(), worker: true });
    await hooks.start();
  });

  it('delivers a model event, signed, and the delivery log shows it delivered', async () => {
    const receiver = await receiverFor();
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/hooks` });
    await hooks.model('Book', 'created', { id: 1, title: 'The Two Towers', ownerId: 'alice' });
    const [request] = await receiver.waitFor(1);
    expect(verify(subscription.secret, request!)).toEqual({
      hook: { id: subscription.id, event: 'book.added', target: `${receiver.url}/hooks` },
      data: { id: 1, title: 'The Two Towers', ownerId: 'alice' },
    });
    await hooks.idle();
    const [delivery] = await hooks.deliveries.list(subscription.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
    expect(request!.headers['webhook-id']).toBe(delivery!.id);
  });

  it('500 then 200: delivered on attempt 2 with the same webhook-id', async () => {
    const receiver = await receiverFor((_request, index) => (index === 0 ? 500 : 200));
    const subscription = await hooks.subscriptions.create({ owner: 'bob', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 2, ownerId: 'bob' });
    const [first, second] = await receiver.waitFor(2);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(verify(subscription.secret, second!)).toMatchObject({ data: { id: 2 } });
    await hooks.idle();
    const [delivery] = await hooks.deliveries.list(subscription.id);
    expect(delivery).toMatchObject({ id: first!.headers['webhook-id'], status: 'delivered', attempts: 2 });
    expect(delivery!.attemptLog.map((a) => [a.number, a.statusCode, a.outcome])).toEqual([
      [1, 500, 'retry'],
      [2, 200, 'delivered'],
    ]);
    await sleep(100);
    expect(receiver.received).toHaveLength(2);
  });

  it('410 Gone deletes the subscription', async () => {
    const receiver = await receiverFor(() => 410);
    const subscription = await hooks.subscriptions.create({ owner: 'carol', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 3, ownerId: 'carol' });
    await receiver.waitFor(1);
    await hooks.idle();
    expect(await hooks.subscriptions.get(subscription.id)).toBeUndefined();
    expect(receiver.received).toHaveLength(1);
  });
});

describe('bullmqQueue: a worker while jobs come one at a time', () => {
  it("blocks on Redis once per job: the wake-up marker BullMQ's fetch puts back is dropped once no job waits", async () => {
    const redis = await startRedis(); // its command counts are this test's alone
    later(() => redis.stop(), undefined);
    const counter = new Redis(redis.url);
    later(() => counter.quit(), undefined);
    const blockingWaits = async () => Number(/cmdstat_bzpopmin:calls=(\d+)/.exec(await counter.info('commandstats'))?.[1] ?? 0);
    const receiver = await receiverFor();
    const hooks = await bullHooks((await sharedStore('sqlite'))(), { connection: redis.url, queueName: queueName(), worker: true });
    await hooks.start();
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 0, ownerId: 'alice' });
    await receiver.waitFor(1);
    await hooks.idle();

    const before = await blockingWaits();
    const jobs = 10;
    for (let i = 1; i <= jobs; i++) {
      await hooks.model('Book', 'created', { id: i, ownerId: 'alice' });
      await receiver.waitFor(i + 1);
      await hooks.idle();
    }
    // BullMQ's own worker: two per job (one returns at once, on the marker its fetch of that job put back).
    expect((await blockingWaits()) - before).toBeLessThanOrEqual(jobs + 3);
    expect(receiver.received).toHaveLength(jobs + 1);
  });
});

describe.each(['postgres', 'sqlite'] as const)('bullmqQueue: an app that only relays, two workers (%s)', (engine) => {
  it('200 events arrive exactly once, spread over both workers', async () => {
    const name = queueName();
    const store = await sharedStore(engine);
    // Slow enough answers that neither worker can drain the queue alone.
    const receiver = await receiverFor((_request, _index, response) => (setTimeout(() => response.writeHead(200).end(), 5), 'handled'));
    const sentBy = { app: 0, w1: 0, w2: 0 };
    const make = (role: keyof typeof sentBy, worker: boolean) =>
      bullHooks(store(), { connection: redisUrl, queueName: name, worker, workerConcurrency: 4 }, { onSent: () => void sentBy[role]++ });
    const app = await make('app', false);
    const workers = [await make('w1', true), await make('w2', true)];
    await app.start(); // migrates; the workers' start() finds the tables there
    await Promise.all(workers.map((w) => w.start()));
    const inspect = inspector(name);
    await eventually(async () => expect(await inspect.getWorkersCount()).toBe(2));

    const subscription = await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => app.model('Book', 'created', { id: i + j, ownerId: 'alice' })));
    }
    await receiver.waitFor(200, 15_000);
    await app.idle({ timeout: '15s' });
    await sleep(200); // anything sent twice would arrive now

    expect(receiver.received).toHaveLength(200);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(200);
    expect(new Set(receiver.received.map((r) => (r.json as { data: { id: number } }).data.id)).size).toBe(200);
    expect(sentBy.app).toBe(0);
    expect(sentBy.w1).toBeGreaterThan(0);
    expect(sentBy.w2).toBeGreaterThan(0);
    expect(sentBy.w1 + sentBy.w2).toBe(200);
    const deliveries = await app.deliveries.list(subscription.id, { limit: 100 });
    expect(deliveries.every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    // A job that met a delivery another job held tries it again a second later, and finds it recorded.
    await eventually(async () =>
      expect(await inspect.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed')).toEqual({
        waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0, failed: 0,
      }),
    );
  });
});

describe.each(['sqlite', 'postgres'] as const)('bullmqQueue: the relay is idempotent (%s)', (engine) => {
  it('the same claim relayed again and again (directly, or a lapsed lease claimed again), in many jobs: two workers send it once', async () => {
    const name = queueName();
    const store = await sharedStore(engine);
    const receiver = await receiverFor();
    const inspect = inspector(name);
    const waitingJobs = async () => {
      const counts = await inspect.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(counts).reduce((a, b) => a + b, 0);
    };

    const spy = spyQueue({ connection: redisUrl, queueName: name, worker: false }, 100);
    const relay = await bullHooks(store(), spy.factory);
    const { relayed } = spy;
    await relay.start();
    const subscription = await relay.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await relay.model('Book', 'created', { id: 1, ownerId: 'alice' });

    // Its 100 ms lease lapses again and again while the job waits (no worker yet): claimed and relayed anew each time.
    await eventually(() => expect(relayed.length).toBeGreaterThanOrEqual(3));
    expect(new Set(relayed.flat().map((c) => `${c.id}.${c.attempt}`))).toEqual(new Set([`${relayed[0]![0]!.id}.1`]));
    await spy.queue().enqueue(relayed[0]!);
    await spy.queue().enqueue(relayed[0]!);
    // Jobs are not deduplicated: each relay of the claim is a job of its own.
    expect(await waitingJobs()).toBeGreaterThanOrEqual(5);

    // A long lease from the next claim on, so the worker's own dispatcher finds nothing due; then stop relaying.
    spy.leaseMs = 60_000;
    await eventually(() => expect(spy.leases).toContain(60_000));
    await relay.stop();

    // Both workers take these jobs at once; the delivery's key lets one job at a time attempt it.
    const workers = [await bullHooks(store(), { connection: redisUrl, queueName: name, worker: true }), await bullHooks(store(), { connection: redisUrl, queueName: name, worker: true })];
    await Promise.all(workers.map((w) => w.start()));
    const [worker] = workers as [Hooks<'book.added'>, Hooks<'book.added'>];
    const [request] = await receiver.waitFor(1);
    await worker.idle();
    await eventually(async () => expect(await waitingJobs()).toBe(0));
    await sleep(200);
    expect(receiver.received).toHaveLength(1);
    expect(verify(subscription.secret, request!)).toMatchObject({ data: { id: 1 } });
    const [delivery] = await worker.deliveries.list(subscription.id);
    expect(delivery).toMatchObject({ id: relayed[0]![0]!.id, status: 'delivered', attempts: 1 });
  });
});

describe('bullmqQueue: failures', () => {
  it('stop() mid-attempt aborts at the deadline and gives the claim back; another worker delivers it (same webhook-id)', async () => {
    const name = queueName();
    const store = await sharedStore('sqlite');
    const receiver = await receiverFor((_request, index) => (index === 0 ? 'hang' : 200));
    const first = await bullHooks(store(), { connection: redisUrl, queueName: name, worker: true }, { delivery: { timeout: '10s' } });
    await first.start();
    const subscription = await first.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await first.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(1);

    const stopping = Date.now();
    await first.stop({ timeout: 200 });
    expect(Date.now() - stopping).toBeLessThan(3000);

    const second = await bullHooks(store(), { connection: redisUrl, queueName: name, worker: true });
    await second.start();
    const [hung, retried] = await receiver.waitFor(2);
    expect(retried!.headers['webhook-id']).toBe(hung!.headers['webhook-id']);
    await second.idle();
    const [delivery] = await second.deliveries.list(subscription.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
  });

  it('a job lost with Redis: the lease lapses, the delivery is relayed again and delivered', async () => {
    const name = queueName();
    const store = await sharedStore('sqlite');
    const receiver = await receiverFor();
    const inspect = inspector(name);
    const spy = spyQueue({ connection: redisUrl, queueName: name, worker: false }, 300);
    const relay = await bullHooks(store(), spy.factory);
    await relay.start();
    const subscription = await relay.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await relay.model('Book', 'created', { id: 7, ownerId: 'alice' });
    await eventually(async () => expect(await inspect.getWaitingCount()).toBeGreaterThanOrEqual(1));

    await inspect.obliterate({ force: true }); // Redis lost everything (a flush, a failover without persistence)
    const before = spy.relayed.length;
    spy.leaseMs = 60_000;
    await eventually(() => expect(spy.leases.slice(before)).toContain(60_000), 3000);
    expect(await inspect.getWaitingCount()).toBeGreaterThanOrEqual(1);
    await relay.stop();

    const worker = await bullHooks(store(), { connection: redisUrl, queueName: name, worker: true });
    await worker.start();
    await receiver.waitFor(1);
    await worker.idle();
    expect((await worker.deliveries.list(subscription.id))[0]).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(receiver.received).toHaveLength(1);
  });
});

describe.each(['sqlite', 'postgres'] as const)('bullmqQueue: Redis restarted empty while an attempt waits on the shared send gate (%s)', (engine) => {
  it('that attempt is not sent once admitted (its job was added again by the relay, whose attempt sends it): one request', async () => {
    const redis = await startRedis(); // restarted by this test: not the one other tests share
    later(() => redis.stop(), undefined);
    const store = await sharedStore(engine);
    const receiver = await receiverFor();
    // The gate of the first admission waits until the test lets it go on; every admission's verdict is kept.
    let letFirstGo!: () => void;
    const firstHeld = new Promise<void>((resolve) => (letFirstGo = resolve));
    let admissions = 0;
    const verdicts: Array<ReceiverVerdict['kind']> = [];
    const holdFirstAdmission: QueueFactory = (context) => {
      const queue = bullmqQueue({ connection: redis.url, queueName: queueName(), worker: true })(context);
      const gate = queue.gate!;
      const heldGate: SendGate = {
        admit: async (request) => {
          if (++admissions === 1) await firstHeld;
          return gate.admit(request);
        },
        finish: (pass, verdict) => (verdicts.push(verdict.kind), gate.finish(pass, verdict)),
      };
      return {
        leaseMs: queue.leaseMs,
        gate: heldGate,
        capacity: () => queue.capacity(),
        enqueue: (claims) => queue.enqueue(claims),
        onCapacity: (listener) => queue.onCapacity(listener),
        settled: () => queue.settled(),
        close: (timeoutMs) => queue.close(timeoutMs),
      };
    };
    const hooks = await bullHooks(store(), holdFirstAdmission);
    await hooks.start();
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await eventually(() => expect(admissions).toBe(1), 10_000);

    await redis.restart(200); // its jobs and keys gone; the relay adds the job of the delivery in flight again
    await eventually(() => expect(admissions).toBe(2), 20_000);
    letFirstGo();
    await eventually(() => expect(verdicts).toHaveLength(2), 20_000);
    await hooks.idle({ timeout: '20s' });
    // The waiting attempt was admitted after the restart, then dropped unsent; the re-added job's attempt sent it.
    expect(verdicts.toSorted()).toEqual(['fine', 'unsent']);
    expect(receiver.received).toHaveLength(1);
    const [delivery] = await hooks.deliveries.list(subscription.id);
    expect(delivery).toMatchObject({ id: receiver.received[0]!.headers['webhook-id'], status: 'delivered', attempts: 1 });
  });
});

describe.each(['postgres', 'sqlite'] as const)('bullmqQueue: a worker whose lease lapsed mid-attempt (%s)', (engine) => {
  it('its late result, after another worker delivered the delivery, changes nothing: delivered once, never flipped back', async () => {
    const store = await sharedStore(engine);
    let held: ServerResponse | undefined;
    const receiver = await receiverFor((_request, index, response) => (index === 0 ? ((held = response), 'handled') : 200));
    // The stalled side: a relay and worker whose claims are leased for 500 ms, and that claims only once.
    let claimed = false;
    let stalledQueue: DeliveryQueue | undefined;
    const claimOnce: QueueFactory = (context) => {
      const queue = bullmqQueue({ connection: redisUrl, queueName: queueName(), worker: true, leaseMs: 500 })(context);
      stalledQueue = queue;
      return {
        leaseMs: queue.leaseMs,
        capacity: () => {
          const room = queue.capacity(); // opens the queue and its worker
          return claimed ? 0 : room;
        },
        enqueue: (claims) => ((claimed ||= claims.length > 0), queue.enqueue(claims)),
        onCapacity: (listener) => queue.onCapacity(listener),
        settled: () => queue.settled(),
        close: (timeoutMs) => queue.close(timeoutMs),
      };
    };
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_obj: object, msg?: string) => void warnings.push(msg ?? '') };
    const stalled = await bullHooks(store(), claimOnce, { logger, delivery: { timeout: '60s' } });
    await stalled.start();
    const subscription = await stalled.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await stalled.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await receiver.waitFor(1);

    // Another relay and worker (their own BullMQ queue, the same store) take the delivery over once the lease lapses.
    const other = await bullHooks(store(), { connection: redisUrl, queueName: queueName(), worker: true });
    await other.start();
    const [first, second] = await receiver.waitFor(2, 20_000);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    await eventually(async () => expect(await other.deliveries.list(subscription.id)).toMatchObject([{ status: 'delivered', attempts: 1 }]), 20_000);

    held!.writeHead(503).end(); // the stalled attempt ends at last, and its worker records it
    await stalledQueue!.settled();
    await other.idle({ timeout: '20s' });
    await sleep(300); // a re-send would be due 20 ms after a wrongly applied retry

    const [delivery] = await other.deliveries.list(subscription.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
    expect(delivery!.attemptLog.map((a) => [a.number, a.statusCode])).toEqual([[1, 200]]);
    expect(receiver.received).toHaveLength(2);
    expect(warnings).toContainEqual(expect.stringMatching(/claims lapsed/));
  });
});

describe('bullmqQueue: stop() while a dispatcher pass is in flight', () => {
  it('the pass ends without opening the queue again (no worker left in Redis); started again, it delivers', async () => {
    const name = queueName();
    const store = await sharedStore('sqlite');
    const receiver = await receiverFor();
    const inspect = inspector(name);
    // The first relay of a claim is held, so the dispatcher pass is in flight when the hooks stop.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let relays = 0;
    let heldRelayDone = false;
    let leaseMs = 0;
    const holdFirst: QueueFactory = (context) => {
      const queue = bullmqQueue({ connection: redisUrl, queueName: name, worker: true })(context);
      leaseMs = queue.leaseMs;
      return {
        leaseMs: queue.leaseMs,
        capacity: () => queue.capacity(),
        enqueue: async (claims) => {
          if (claims.length === 0 || relays++ > 0) return queue.enqueue(claims);
          await held;
          await queue.enqueue(claims);
          heldRelayDone = true;
        },
        onCapacity: (listener) => queue.onCapacity(listener),
        settled: () => queue.settled(),
        close: (timeoutMs) => queue.close(timeoutMs),
      };
    };
    const hooks = await bullHooks(store(), holdFirst);
    await hooks.start();
    await eventually(async () => expect(await inspect.getWorkersCount()).toBe(1));
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await eventually(() => expect(relays).toBe(1));

    await hooks.stop({ timeout: 500 });
    release();
    await eventually(() => expect(heldRelayDone).toBe(true));
    await sleep(300); // the rest of the pass; a queue it opened again would register its worker by now
    expect(await inspect.getWorkersCount()).toBe(0);

    await hooks.start();
    // Within the claim's lease: delivered by the job relayed after the stop, not claimed again once the lease lapsed.
    // (A restarted worker may take seconds to connect and fetch on a loaded machine.)
    expect(leaseMs).toBeGreaterThan(15_000);
    await eventually(async () => expect(await hooks.deliveries.list(subscription.id)).toMatchObject([{ status: 'delivered' }]), 15_000);
    await hooks.idle();
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
  });
});

describe('DeliveryGuard: the keys of the attempts a job holds', () => {
  it('jobs that start together take their keys in one call of one short argument per job; a job lets go only of the keys it holds', async () => {
    const name = queueName();
    const queue = inspector(name);
    const client = await queue.backend.client;
    const calls: unknown[][] = [];
    const counted = new Proxy(client, {
      get(target, property) {
        if (property === 'runCommand') return (...args: Parameters<typeof target.runCommand>) => (calls.push([...args[1]]), target.runCommand(...args));
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const guard = new DeliveryGuard(async () => counted, { keyPrefix: `bull:${name}`, ttlMs: 60_000 });
    const attempts = (...ids: string[]) => ids.map((id) => ({ id, attempt: 1 }));
    const [first, second] = await Promise.all([guard.take('1@100', attempts('dlv_a', 'dlv_b', 'dlv_c'), 3), guard.take('2@100', attempts('dlv_c', 'dlv_d'), 2)]);
    expect(first).toEqual([true, true, true]);
    expect(second).toEqual([false, true]); // dlv_c: held by job 1
    expect(calls).toHaveLength(1);
    // The waiting count's key, three common arguments, then one per job: no key per attempt, no job id per key.
    expect(calls[0]).toEqual([`bull:${name}:resthooks-waiting`, '5', '60000', `bull:${name}:attempting:`, '1@100 dlv_a.1 dlv_b.1 dlv_c.1', '2@100 dlv_c.1 dlv_d.1']);
    // The keys every worker version names: workers of two versions share them during an upgrade.
    const reader = new Redis(redisUrl);
    later(() => reader.quit(), undefined);
    expect(await reader.mget(['dlv_a.1', 'dlv_c.1', 'dlv_d.1'].map((key) => `bull:${name}:attempting:${key}`))).toEqual(['1@100', '1@100', '2@100']);

    await guard.release('2@100', attempts('dlv_c', 'dlv_d'));
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual([`bull:${name}:attempting:`, '2@100 dlv_c.1 dlv_d.1']);
    expect(await reader.mget(['dlv_c.1', 'dlv_d.1'].map((key) => `bull:${name}:attempting:${key}`))).toEqual(['1@100', null]);
  });
});

describe('resthooks worker (the CLI, a separate process)', () => {
  it('delivers what an app relays, and stops cleanly on SIGTERM', async () => {
    const name = queueName();
    const dir = tempDir();
    cleanups.unshift(() => dir.cleanup());
    const file = join(dir.path, 'hooks.db');
    const receiver = await receiverFor();
    const app = await bullHooks(sqliteStore(new Database(file)), { connection: redisUrl, queueName: name, worker: false });
    await app.start(); // the tables exist before the worker opens the file
    const cli = startCli(['worker', '--db', file, '--redis', redisUrl, '--queue', name, '--allow-private-targets', '--shutdown-timeout', '1s']);
    cleanups.unshift(() => cli.kill());
    await cli.waitFor(/Delivering jobs from redis:\/\/127\.0\.0\.1:\d+ \(queue resthooks-test-/);

    const subscription = await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await app.model('Book', 'created', { id: 42, ownerId: 'alice' });
    const [request] = await receiver.waitFor(1);
    expect(verify(subscription.secret, request!)).toMatchObject({ data: { id: 42 } });
    await app.idle();
    expect((await app.deliveries.list(subscription.id))[0]).toMatchObject({ status: 'delivered', attempts: 1 });

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toContain('Stopped.');
    expect(cli.stderr()).toBe('');
  });
});

describe('bullmqQueue: the port, with a stand-in processor', () => {
  /** A queue whose processor waits until the test lets it finish; the "store" says which attempt is in flight. */
  function standIn(name: string, worker = true, options: Partial<BullmqQueueOptions> = {}, concurrency = 4, logger = silentLogger) {
    const inFlight = new Map<string, number>(); // delivery id → attempt in flight
    const started: Array<{ id: string; attempt: number; finish(outcome?: ProcessedClaim): void; stillMine?: () => boolean }> = [];
    const claim = (id: string, attempt: number) => ({ id, attempt, leaseUntil: Date.now() + 60_000 }) as ClaimedDelivery;
    const queue = bullmqQueue({ connection: redisUrl, queueName: name, worker, ...options })({
      concurrency,
      timeoutMs: 1000,
      logger,
      loadClaims: async (ids) => ids.flatMap((id) => (inFlight.has(id) ? [claim(id, inFlight.get(id)!)] : [])),
      inFlightAttempts: async () => [],
      extendLease: async () => true,
      processor: (delivery, _signal, stillMine) => new Promise<ProcessedClaim | void>((finish) => started.push({ id: delivery.id, attempt: delivery.attempt, finish, stillMine })),
    });
    later(() => queue.close(1000), queue);
    queue.capacity(); // opens the queue and starts the worker, as the dispatcher's first pass does
    return { queue, inFlight, started, claim };
  }

  it('a claim relayed again while its job is still running is attempted once that job gave it back, by one of the new jobs', async () => {
    const name = queueName();
    const { queue, inFlight, started, claim } = standIn(name);
    const inspect = inspector(name);
    inFlight.set('dlv_a', 1);
    await queue.enqueue([claim('dlv_a', 1)]);
    await eventually(() => expect(started).toHaveLength(1));
    await queue.enqueue([claim('dlv_a', 1)]); // its key is held by the running job: tried again a second later
    await queue.enqueue([claim('dlv_a', 1)]); // the same
    await sleep(100);
    expect(started).toHaveLength(1);
    started[0]!.finish('given back'); // still in flight for attempt 1 (claimed anew by a relay)
    await eventually(() => expect(started).toHaveLength(2));
    inFlight.delete('dlv_a');
    started[1]!.finish('recorded');
    // The other new job finds it recorded; nothing is left in Redis.
    await eventually(async () => expect(await inspect.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 }), 10_000);
    expect(started.map((s) => `${s.id}.${s.attempt}`)).toEqual(['dlv_a.1', 'dlv_a.1']);
    await queue.settled();
  });

  it('a job whose delivery is no longer in flight, or is in flight for another attempt, sends nothing', async () => {
    const { queue, inFlight, started, claim } = standIn(queueName());
    inFlight.set('dlv_b', 2);
    await queue.enqueue([claim('dlv_b', 1), claim('dlv_c', 1)]); // dlv_b is at attempt 2; dlv_c was recorded
    await queue.enqueue([claim('dlv_b', 2)]);
    await eventually(() => expect(started).toHaveLength(1));
    started[0]!.finish();
    await sleep(150);
    expect(started.map((s) => `${s.id}.${s.attempt}`)).toEqual(['dlv_b.2']);
    await queue.settled();
  });

  it('a job carries the claims of one enqueue(): one job, one claim read, each claim attempted', async () => {
    const name = queueName();
    const { queue, inFlight, started, claim } = standIn(name);
    const ids = Array.from({ length: 3 }, (_, i) => `dlv_batch${i}`);
    for (const id of ids) inFlight.set(id, 1);
    const inspect = inspector(name);
    await queue.enqueue(ids.map((id) => claim(id, 1)));
    await eventually(() => expect(started).toHaveLength(3));
    expect((await inspect.getJobs(['active'])).map((job) => job.data)).toEqual([{ deliveries: ids.map((id) => ({ id, attempt: 1 })) }]);
    for (const s of started) s.finish('recorded');
    await eventually(async () => expect(await inspect.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 }));
  });

  it('a relay adds the claims of one enqueue() as jobs of up to 64 attempts', async () => {
    const name = queueName();
    const relay = standIn(name, false);
    await relay.queue.enqueue(Array.from({ length: 129 }, (_, i) => relay.claim(`dlv_big${i}`, 1)));
    const jobs = await inspector(name).getJobs(['waiting']);
    expect(jobs.map((job) => attemptsOf(job.data).length).toSorted((a, b) => a - b)).toEqual([1, 64, 64]);
  });

  it("a claim given back from a job is let go at once: relayed again, it is attempted while the job's other claims still run", async () => {
    const { queue, inFlight, started, claim } = standIn(queueName());
    inFlight.set('dlv_kept', 1);
    inFlight.set('dlv_back', 1);
    await queue.enqueue([claim('dlv_kept', 1), claim('dlv_back', 1)]);
    await eventually(() => expect(started).toHaveLength(2));
    started.find((s) => s.id === 'dlv_back')!.finish('given back');
    // A relay claims it again; its new job must not wait for the first job's end (dlv_kept still runs).
    await queue.enqueue([claim('dlv_back', 1)]);
    await eventually(() => expect(started.filter((s) => s.id === 'dlv_back')).toHaveLength(2));
    expect(started.filter((s) => s.id === 'dlv_kept')).toHaveLength(1);
    for (const s of started) s.finish('recorded');
    await queue.settled();
  });

  it('a job of an earlier version, one delivery ({ id, attempt }), is attempted too (a rolling upgrade)', async () => {
    const name = queueName();
    const { inFlight, started } = standIn(name);
    inFlight.set('dlv_old', 3);
    await inspector(name).add('deliver', { id: 'dlv_old', attempt: 3 }, { removeOnComplete: true });
    await eventually(() => expect(started.map((s) => `${s.id}.${s.attempt}`)).toEqual(['dlv_old.3']));
    started[0]!.finish('recorded');
  });

  it("a worker whose event loop stalled past half BullMQ's lock starts none of its jobs' waiting deliveries; the job runs again", async () => {
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (obj: object, msg?: string) => void warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`) };
    // One slot: dlv_first runs, dlv_second waits for it in the same job.
    const { queue, inFlight, started, claim } = standIn(queueName(), true, { lockDuration: 1000 }, 1, logger);
    inFlight.set('dlv_first', 1);
    inFlight.set('dlv_second', 1);
    await queue.enqueue([claim('dlv_first', 1), claim('dlv_second', 1)]);
    await eventually(() => expect(started.map((s) => s.id)).toEqual(['dlv_first']));
    // A stall (a long GC pause, SIGSTOP): BullMQ may hand the job to another worker meanwhile.
    const until = Date.now() + 800;
    while (Date.now() < until) {
      // the event loop is blocked
    }
    inFlight.delete('dlv_first');
    started[0]!.finish('recorded');
    // Not started after the stall: the job fails, and BullMQ's retry of it (same job) attempts what is still in flight.
    await eventually(() => expect(warnings).toContainEqual(expect.stringContaining('delivery job failed; BullMQ retries it')));
    expect(started.map((s) => s.id)).toEqual(['dlv_first']);
    await eventually(() => expect(started.map((s) => s.id)).toEqual(['dlv_first', 'dlv_second']));
    started[1]!.finish('recorded');
    await queue.settled();
  });

  it('Redis restarted empty: an attempt started before is no longer its worker\'s, and its job does not let go of the key of the new job that took its number', async () => {
    const redis = await startRedis(); // restarted by this test: not the one other tests share
    later(() => redis.stop(), undefined);
    const said: string[] = [];
    const logger = { ...silentLogger, warn: (_obj: object, msg?: string) => void said.push(msg ?? ''), error: (_obj: object, msg?: string) => void said.push(msg ?? '') };
    const name = queueName();
    const { queue, inFlight, started, claim } = standIn(name, true, { connection: redis.url }, 4, logger);
    inFlight.set('dlv_x', 1);
    await queue.enqueue([claim('dlv_x', 1)]); // job 1
    await eventually(() => expect(started).toHaveLength(1));
    expect(started[0]!.stillMine?.()).toBe(true);

    await redis.restart(200);
    await queue.enqueue([claim('dlv_x', 1)]); // as a relay adds it again: job 1 of the empty Redis
    await eventually(() => expect(started).toHaveLength(2), 20_000);
    // The attempt from before the restart: its worker lost Redis meanwhile, so it is not sent.
    expect(started[0]!.stillMine?.()).toBe(false);
    expect(started[1]!.stillMine?.()).toBe(true);
    started[0]!.finish();
    await eventually(() => expect(said).toContainEqual(expect.stringMatching(/delivery job failed|BullMQ worker error/)), 20_000);
    // The new job still holds its key: another job of dlv_x waits rather than send it again beside it.
    const client = new Redis(redis.url);
    later(() => client.quit(), undefined);
    expect(await client.get(`bull:${name}:attempting:dlv_x.1`)).toMatch(/^1@/);
    started[1]!.finish('recorded');
    await queue.settled();
  });

  it('maxWaiting counts deliveries waiting in Redis, not jobs', async () => {
    const name = queueName();
    const relay = standIn(name, false);
    await relay.queue.enqueue(Array.from({ length: 100 }, (_, i) => relay.claim(`dlv_wait${i}`, 1)));
    expect(relay.queue.capacity()).toBe(1000 - 100);
    await sleep(600); // counted again from Redis meanwhile: 4 jobs, 100 deliveries
    expect(relay.queue.capacity()).toBe(1000 - 100);
    // A worker with 4 slots holds 8: it keeps 8 of the first job (32 off the count) and hands the other 24 back in a job of their own.
    const worker = standIn(name);
    for (let i = 0; i < 100; i++) worker.inFlight.set(`dlv_wait${i}`, 1);
    await eventually(() => expect(worker.started.length).toBeGreaterThan(0));
    await eventually(() => expect(relay.queue.capacity()).toBe(1000 - 100 + 32 - 24));
    await eventually(() => {
      for (const s of worker.started.splice(0)) s.finish('recorded');
      expect(relay.queue.capacity()).toBe(1000);
    }, 15_000);
  });

  it('after an add the relay counts what Redis counts, other relays\' deliveries included, and nothing twice', async () => {
    const name = queueName();
    const other = standIn(name, false);
    const relay = standIn(name, false);
    await other.queue.enqueue(Array.from({ length: 100 }, (_, i) => other.claim(`dlv_other${i}`, 1)));
    // The answer to the add is the count: another relay's 100 are in it at once, not a refresh later.
    await relay.queue.enqueue(Array.from({ length: 50 }, (_, i) => relay.claim(`dlv_mine${i}`, 1)));
    expect(relay.queue.capacity()).toBe(1000 - 150);
    await other.queue.enqueue(Array.from({ length: 30 }, (_, i) => other.claim(`dlv_more${i}`, 1)));
    expect(other.queue.capacity()).toBe(1000 - 180);
    await sleep(600); // both refreshed from Redis meanwhile: the same count, nothing counted twice
    expect(relay.queue.capacity()).toBe(1000 - 180);
    expect(other.queue.capacity()).toBe(1000 - 180);
  });

  it('close() waits for a check of Redis in flight, and nothing of it reads the store afterwards', async () => {
    // The first check finds Redis without this relay's key and reads the deliveries in flight from the
    // store; held here until the test lets it go.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const reads: string[] = [];
    const warnings: string[] = [];
    const order: string[] = [];
    let closed = false;
    const queue = bullmqQueue({ connection: redisUrl, queueName: queueName(), worker: false })({
      concurrency: 4,
      timeoutMs: 1000,
      logger: { ...silentLogger, warn: (_obj: object, msg?: string) => void warnings.push(msg ?? '') },
      loadClaims: async () => [],
      inFlightAttempts: async () => {
        reads.push(closed ? 'after close' : 'before close');
        await held;
        order.push('check read the store');
        // A store closed with the hooks: what a read after close() meets.
        if (closed) throw new Error('driver has already been destroyed');
        return [];
      },
      extendLease: async () => true,
      processor: async () => {},
    });
    queue.capacity(); // opens the queue: the first check starts at once
    await eventually(() => expect(reads).toEqual(['before close']));
    const closing = queue.close(1000).then(() => {
      closed = true;
      order.push('closed');
    });
    await sleep(100);
    release();
    await closing;
    await sleep(1200); // a check rescheduled by the one in flight would run by now
    expect(order).toEqual(['check read the store', 'closed']);
    expect(reads).toEqual(['before close']);
    expect(warnings).toEqual([]);
  });

  it('refuses bad options at start-up with ConfigError', async () => {
    expect(() => bullmqQueue({} as BullmqQueueOptions)).toThrow(/needs `connection`/);
    expect(() => bullmqQueue({ connection: redisUrl, leaseMs: 0 })).toThrow(/`leaseMs` must be a positive integer/);
    expect(() => bullmqQueue({ connection: redisUrl, queueName: 'a:b' })).toThrow(/without ":"/);
    const { Redis } = await import('ioredis');
    const shared = new Redis(redisUrl, { lazyConnect: true });
    expect(() => bullmqQueue({ connection: shared })).toThrow(/maxRetriesPerRequest: null/);
    expect(() => bullmqQueue({ connection: shared, worker: false })).not.toThrow();
    shared.disconnect();
  });
});
