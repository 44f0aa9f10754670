/**
 * Limits that hold across workers, seen from real receivers on 127.0.0.1: a subscription's
 * `maxPerSecond` with two `resthooks worker` processes (one Redis, one store), a 429 with
 * `Retry-After` that pauses only its subscription, with one probe before the rest (in-process and
 * with two workers), and per-origin concurrency across two workers. Every time compared is the
 * receiver's own clock; SQLite and PostgreSQL.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { DeliveryOptions, Hooks, StoreDialect } from '../../src/index.js';
import { bullmqQueue } from '../../src/queue/bullmq/index.js';
import { startCli, type CliProcess } from '../cli/cli-process.js';
import { ENGINES, TestDatabase, type Engine } from '../support/database.js';
import { eventually, tempDir, testHooks } from '../support/hooks.js';
import { parseExposition } from '../support/prometheus.js';
import { startReceiver, type Receiver, type Responder } from '../support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
type Event = keyof typeof EVENTS;
/** The retry side of the scenarios: quick retries, and a 429's own retry not held back beyond the pause. */
const DELIVERY = { retry: { schedule: [0, 20, 40, 80, 160, 320], jitter: 0 }, minDelayAfter429: 0, timeout: '5s', pollInterval: 50 } as const satisfies DeliveryOptions;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function database(engine: Engine): Promise<TestDatabase> {
  const db = new TestDatabase(engine);
  await db.init();
  cleanups.push(() => db.close());
  return db;
}

async function receiver(respond?: Responder): Promise<Receiver> {
  const r = await startReceiver(respond);
  return later(() => r.close(), r);
}

let queues = 0;
const queueName = () => `resthooks-limits-${process.pid}-${++queues}`;

/** An app process that only relays to Redis (`worker: false`), as in production. */
async function relayApp(store: StoreDialect, name: string): Promise<Hooks<Event>> {
  const { hooks, close } = await testHooks({ events: EVENTS, store, delivery: DELIVERY, queue: bullmqQueue({ connection: inject('redisUrl'), queueName: name, worker: false }) });
  return later(close, hooks);
}

/** Two `resthooks worker` processes on the same store and queue, with `delivery` from a config module. */
async function twoWorkers(db: TestDatabase, name: string, delivery: Record<string, unknown>, args: readonly string[] = []): Promise<Array<{ cli: CliProcess; origin: string }>> {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const config = join(dir.path, 'hooks.config.mjs');
  writeFileSync(config, `export default ${JSON.stringify({ events: EVENTS, delivery: { ...DELIVERY, ...delivery } })};\n`);
  return Promise.all(
    [1, 2].map(async () => {
      const cli = startCli(['worker', '--allow-private-targets', '--port', '0', '--db', db.url, '--redis', inject('redisUrl'), '--queue', name, '--config', config, ...args]);
      later(() => cli.kill(), cli);
      const [, origin] = await cli.waitFor(/Health and metrics: (http:\/\/127\.0\.0\.1:\d+)\/healthz/, 60_000);
      return { cli, origin: origin! };
    }),
  );
}

/** How many attempts a worker made, from its /metrics. */
async function attemptsBy(worker: { origin: string }): Promise<number> {
  const exposition = parseExposition(await (await fetch(`${worker.origin}/metrics`)).text());
  return exposition.value('resthooks_attempts_total', { outcome: 'delivered' }) ?? 0;
}

/** How many claims a worker gave back unattempted (held back by the shared gate, from its /metrics). */
async function givenBackBy(worker: { origin: string }): Promise<number> {
  const exposition = parseExposition(await (await fetch(`${worker.origin}/metrics`)).text());
  return exposition.value('resthooks_claims_given_back_total', {}) ?? 0;
}

/** The most requests that arrived within any one second (sliding, by the receiver's clock). */
function mostInOneSecond(received: readonly { at: number }[]): number {
  const times = received.map((r) => r.at).sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < times.length; last++) {
    while (times[last]! - times[first]! >= 1000) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/**
 * The pause scenario: `paused` answers its first request 429 `Retry-After: 2`, and its second (the
 * probe) only after `PROBE_ANSWER_MS`; `other` answers at once. Events go to both while the pause runs.
 */
const PROBE_ANSWER_MS = 400;
const pausingResponder: Responder = (_request, index, response: ServerResponse) => {
  if (index === 0) return { status: 429, headers: { 'retry-after': '2' } };
  if (index === 1) {
    setTimeout(() => response.writeHead(200).end(), PROBE_ANSWER_MS);
    return 'handled';
  }
  return 200;
};

async function pauseScenario(hooks: Hooks<Event>, paused: Receiver, other: Receiver): Promise<void> {
  const slow = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${paused.url}/paused` });
  await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${other.url}/other` });
  await hooks.model('Book', 'created', { id: 0, ownerId: 'alice' });
  await paused.waitFor(1, 30_000);
  // The pause begins once a worker has read the 429 (it is recorded after that): events from then on find it.
  await eventually(async () => expect((await hooks.deliveries.list(slow.id))[0]).toMatchObject({ attempts: 1, lastStatusCode: 429 }), 20_000);
  for (let id = 1; id <= 4; id++) await hooks.model('Book', 'created', { id, ownerId: 'alice' });
  // 1 answered 429, then the probe, then the other 4 deliveries.
  const got = await paused.waitFor(6, 60_000);
  await other.waitFor(5, 30_000);
  const [refused, probe, ...rest] = got;
  // Nothing reached the paused receiver before its Retry-After had passed.
  expect(probe!.at - refused!.at).toBeGreaterThanOrEqual(2000);
  // Exactly one probe: the others came only after it was answered.
  for (const request of rest) expect(request.at - probe!.at).toBeGreaterThanOrEqual(PROBE_ANSWER_MS);
  // The other receiver went on meanwhile: events fired during the pause reached it before the pause ended.
  const duringPause = other.received.filter((r) => r.at > refused!.at && r.at < probe!.at);
  expect(duringPause.length).toBeGreaterThanOrEqual(1);
  // Held back, never attempted: one attempt per delivery, and two for the one answered 429.
  await eventually(async () => {
    const deliveries = await hooks.deliveries.list(slow.id);
    expect(deliveries.map((d) => d.status)).toEqual(Array(5).fill('delivered'));
    expect(deliveries.map((d) => d.attempts).sort()).toEqual([1, 1, 1, 1, 2]);
  }, 20_000);
  expect(paused.received).toHaveLength(6);
}

describe.each(ENGINES)('in-process engine (%s)', (engine) => {
  it('a 429 with Retry-After: 2 pauses that subscription only; then one probe, then the rest', { timeout: 90_000 }, async () => {
    const db = await database(engine);
    const paused = await receiver(pausingResponder);
    const other = await receiver();
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), delivery: DELIVERY });
    later(close, hooks);
    await pauseScenario(hooks, paused, other);
  });
});

describe.each(ENGINES)('two resthooks worker processes on one Redis (%s)', (engine) => {
  it('a subscription with maxPerSecond 5: the receiver never gets more than 5 in any one second, and both workers send', { timeout: 120_000 }, async () => {
    const db = await database(engine);
    const name = queueName();
    const app = await relayApp(db.dialect(), name);
    // 8 attempts each: one worker cannot hold every delivery, so both take part whichever starts first.
    const workers = await twoWorkers(db, name, {}, ['--concurrency', '8']);
    const limited = await receiver();
    const free = await receiver();
    await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${limited.url}/limited`, maxPerSecond: 5 });
    await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${free.url}/free` });
    const EVENTS_SENT = 30;
    for (let id = 0; id < EVENTS_SENT; id++) await app.model('Book', 'created', { id, ownerId: 'alice' });
    const got = await limited.waitFor(EVENTS_SENT, 90_000);
    expect(mostInOneSecond(got)).toBeLessThanOrEqual(5);
    // 30 at 5 a second take at least 5 s (every sixth waits a second after the first of its five ended).
    expect(got.at(-1)!.at - got[0]!.at).toBeGreaterThanOrEqual(5000);
    // The subscription without a limit was not held back by the other's: all of its requests had arrived by then.
    await free.waitFor(EVENTS_SENT, 30_000);
    expect(mostInOneSecond(free.received)).toBeGreaterThan(5);
    // A worker counts an attempt once it has its answer: a moment after the receiver has the request.
    await eventually(async () => {
      const byWorker = await Promise.all(workers.map(attemptsBy));
      for (const count of byWorker) expect(count).toBeGreaterThan(0);
      expect(byWorker.reduce((a, b) => a + b, 0)).toBe(2 * EVENTS_SENT);
    }, 20_000);
  });

  it('a 429 with Retry-After: 2 pauses that subscription across both workers; then one probe, then the rest', { timeout: 120_000 }, async () => {
    const db = await database(engine);
    const name = queueName();
    const app = await relayApp(db.dialect(), name);
    await twoWorkers(db, name, {});
    await pauseScenario(app, await receiver(pausingResponder), await receiver());
  });

  it('connectionsPerOrigin 2: never more than 2 attempts in flight to one origin across both workers', { timeout: 120_000 }, async () => {
    const db = await database(engine);
    const name = queueName();
    const app = await relayApp(db.dialect(), name);
    // Three slots each: either worker alone could keep more than 2 in flight, and the other gets jobs too.
    const workers = await twoWorkers(db, name, { connectionsPerOrigin: 2, ownerShare: 1 }, ['--concurrency', '3']);
    let open = 0;
    let most = 0;
    const crowded = await receiver((_request, _index, response) => {
      most = Math.max(most, ++open);
      setTimeout(() => (open--, response.writeHead(200).end()), 150);
      return 'handled';
    });
    for (let i = 0; i < 4; i++) await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${crowded.url}/s${i}` });
    // One job per event (a job carries the deliveries relayed together): each worker runs at most three jobs at once.
    const redis = new Redis(inject('redisUrl'));
    try {
      for (let id = 0; id < 6; id++) {
        await app.model('Book', 'created', { id, ownerId: 'alice' });
        await eventually(async () => expect(Number(await redis.get(`bull:${name}:id`))).toBeGreaterThanOrEqual(id + 1));
      }
    } finally {
      redis.disconnect();
    }
    await crowded.waitFor(24, 90_000);
    expect(most).toBe(2);
    await eventually(async () => expect((await Promise.all(workers.map(attemptsBy))).reduce((a, b) => a + b, 0)).toBe(24), 20_000);
    // Both workers had the origin's deliveries at once: each sent some, or was held back by the shared cap (a worker whose
    // attempts hold the origin's slots takes them again as each ends, while it has more for that origin).
    for (const worker of workers) expect((await attemptsBy(worker)) + (await givenBackBy(worker))).toBeGreaterThan(0);
  });

  it("ownerShare on each worker: one owner's hanging receivers hold at most its share, and another owner's deliveries go on", { timeout: 120_000 }, async () => {
    const db = await database(engine);
    const name = queueName();
    const app = await relayApp(db.dialect(), name);
    // Four slots a worker, half of them at most for one owner; per-origin caps out of the way.
    await twoWorkers(db, name, { connectionsPerOrigin: 64, ownerShare: 0.5, timeout: '60s' }, ['--concurrency', '4']);
    const hanging = await receiver(() => 'hang');
    const healthy = await receiver();
    for (let i = 0; i < 6; i++) await app.subscriptions.create({ owner: 'mallory', event: 'book.added', target: `${hanging.url}/m${i}` });
    await app.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${healthy.url}/alice` });
    for (let id = 0; id < 3; id++) await app.model('Book', 'created', { id, ownerId: 'mallory' });
    // Two workers × half of four slots: four of mallory's 18 attempts hang, the others wait in the store.
    await hanging.waitFor(4, 30_000);
    for (let id = 0; id < 3; id++) await app.model('Book', 'created', { id: 100 + id, ownerId: 'alice' });
    // Alice's arrive while mallory's still hang (their timeout is a minute away).
    await healthy.waitFor(3, 40_000);
    expect(hanging.received).toHaveLength(4);
  });
});
