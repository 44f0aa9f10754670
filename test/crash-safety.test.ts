/**
 * Crash safety (DESIGN §4: "nothing in the outbox is lost by a crash (kill -9)"), with a real crash:
 * the dispatcher runs in a child process (test/support/crash-child.ts) delivering to a slow receiver
 * on 127.0.0.1; this process writes the outbox to the same SQLite file through a hooks instance that
 * is never started, SIGKILLs the child while deliveries are pending and in flight, and starts a new
 * child on the same file.
 *
 * A claim is a lease (`due_at` = claim time + timeout + 60 s): a delivery in flight in the dead
 * process is attempted again only when that lease lapses. Rather than wait a minute, the test moves
 * the second child's clock forward past the lease (the child's `advance` message), which is what a
 * restart a minute later would see.
 */
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { sqliteStore, type Delivery, type Hooks } from '../src/index.js';
import { KyselyStore } from '../src/store/kysely-store.js';
import { CLAIMS_PER_SLOT } from '../src/queue/in-process-queue.js';
import { CHILD_DELIVERY, CHILD_EVENTS } from './support/crash-child.js';
import { eventually, testHooks } from './support/hooks.js';
import { startReceiver, verify } from './support/receiver.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./support/crash-child.ts', import.meta.url));
// The lease a claim takes (src/hooks.ts, the InProcessQueue's leaseMs): the attempt timeout + 60 s.
const LEASE_MS = CHILD_DELIVERY.timeout + 60_000;

const BEFORE_START = 100;
const WHILE_RUNNING = 100;
const WHILE_DOWN = 20;
const TOTAL = BEFORE_START + WHILE_RUNNING + WHILE_DOWN;
const KILL_AFTER = 60; // requests received before the kill

interface Seen {
  readonly id: string;
  readonly body: string;
  readonly n: number;
  readonly phase: number;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A receiver that answers 200 after 30–80 ms, so up to `concurrency` attempts are always in flight. */
async function slowReceiver(secret: () => string) {
  const seen: Seen[] = [];
  const open = new Map<ServerResponse, string>(); // received, not yet answered → webhook-id
  const state = { phase: 1, frozen: false, onRequest: (): void => {} };
  const receiver = await startReceiver((request, _index, res) => {
    const id = request.headers['webhook-id'] as string;
    // Every attempt, first or repeated, from either process, is correctly signed.
    const payload = verify(secret(), request) as { data: { n: number } };
    seen.push({ id, body: request.body, n: payload.data.n, phase: state.phase });
    open.set(res, id);
    res.on('error', () => {});
    setTimeout(() => {
      if (state.frozen || res.destroyed) return; // the kill happened: its sender is gone
      open.delete(res);
      res.writeHead(200).end('ok');
    }, 30 + Math.random() * 50);
    state.onRequest();
    return 'handled';
  });
  cleanups.push(() => receiver.close());
  return { url: `${receiver.url}/hook`, seen, open, state };
}

interface Child {
  readonly process: ChildProcess;
  readonly stderr: string[];
  request<T extends { type: string }>(message: object, reply: string): Promise<T>;
  /** How the process ended; rejects if it is still running after `timeoutMs`. */
  exit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startChild(file: string): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  // Listened for from the start, so an exit that happens before anyone asks is not missed.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const next = <T>(type: string, timeoutMs = 20_000) =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`child: no "${type}" within ${timeoutMs} ms; stderr: ${stderr.join('')}`)), timeoutMs);
      const onMessage = (message: { type: string }) => message.type === type && done(undefined, message as T);
      const onExit = (code: number | null) => done(new Error(`child exited (${code}) waiting for "${type}"; stderr: ${stderr.join('')}`));
      const done = (error?: Error, value?: T) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (error) reject(error);
        else resolve(value!);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  await next('started');
  return {
    process: child,
    stderr,
    request<T>(message: object, reply: string) {
      const answer = next<T>(reply);
      child.send(message);
      return answer;
    },
    exit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`child still running ${timeoutMs} ms after stop; stderr: ${stderr.join('')}`)), timeoutMs);
      });
      return Promise.race([exited, late]).finally(() => clearTimeout(timer));
    },
  };
}

/** Every delivery of the subscription, through the public API (newest first, paged). */
async function allDeliveries(hooks: Hooks, subscriptionId: string): Promise<Delivery[]> {
  const all: Delivery[] = [];
  for (let cursor: string | undefined; ; ) {
    const page = await hooks.deliveries.list(subscriptionId, { limit: 100, ...(cursor ? { cursor } : {}) });
    all.push(...page);
    if (page.length < 100) return all;
    cursor = page.at(-1)!.id;
  }
}

it('kill -9 with deliveries pending and in flight: after a restart every event arrives, repeats are only the in-flight ones, same webhook-id and body', async () => {
  // The writer: never started, so it only appends to the outbox (the app's side of the process split).
  const { hooks: writer, file, close } = await testHooks({ events: CHILD_EVENTS }, { start: false });
  cleanups.push(close);
  let secret = '';
  const receiver = await slowReceiver(() => secret);
  const subscription = await writer.subscriptions.create({ owner: 'alice', event: 'thing.happened', target: receiver.url });
  secret = subscription.secret;
  const trigger = async (from: number, count: number) => {
    for (let n = from; n < from + count; n++) expect((await writer.raw('thing.happened', { n }, { owner: 'alice' })).status).toBe('queued');
  };

  // ── run 1: deliver, and die mid-flight ────────────────────────────────────────────────────
  await trigger(0, BEFORE_START);
  const first = await startChild(file);
  const killed = new Promise<{ openAtKill: Set<string>; receivedAtKill: number }>((resolve) => {
    receiver.state.onRequest = () => {
      if (receiver.seen.length < KILL_AFTER || receiver.open.size === 0) return;
      receiver.state.onRequest = () => {};
      first.process.kill('SIGKILL');
      // Received but never answered: the dead process cannot have recorded them.
      receiver.state.frozen = true;
      resolve({ openAtKill: new Set(receiver.open.values()), receivedAtKill: receiver.seen.length });
    };
  });
  const writing = trigger(BEFORE_START, WHILE_RUNNING); // concurrent writes from this process
  const { openAtKill, receivedAtKill } = await killed;
  await new Promise((resolve) => first.process.once('exit', resolve));
  expect(first.process.signalCode).toBe('SIGKILL');
  await writing;
  await trigger(BEFORE_START + WHILE_RUNNING, WHILE_DOWN); // the outbox keeps taking writes while no dispatcher runs
  for (const response of receiver.open.keys()) response.destroy();
  receiver.open.clear();

  expect(receivedAtKill).toBeGreaterThanOrEqual(KILL_AFTER);
  expect(receivedAtKill).toBeLessThan(TOTAL);
  expect(openAtKill.size).toBeGreaterThan(0);
  const atKill = await allDeliveries(writer, subscription.id);
  const inFlightAtKill = new Set(atKill.filter((d) => d.status === 'in_flight').map((d) => d.id));
  // Leases are bounded by what the in-process queue holds (running and waiting claims), and cover
  // everything received but unanswered.
  expect(inFlightAtKill.size).toBeLessThanOrEqual(CLAIMS_PER_SLOT * CHILD_DELIVERY.concurrency);
  for (const id of openAtKill) expect(inFlightAtKill).toContain(id);

  // ── run 2: a new process on the same file ─────────────────────────────────────────────────
  receiver.state.phase = 2;
  receiver.state.frozen = false;
  const second = await startChild(file);
  cleanups.push(async () => {
    if (second.process.exitCode === null) await second.request({ type: 'stop' }, 'never').catch(() => {});
  });
  // Everything but the leased rows gets delivered (idle() would wait for the leases: to the store
  // they are in flight, as they would be in a worker on another machine).
  await eventually(async () => {
    const deliveries = await allDeliveries(writer, subscription.id);
    expect(deliveries).toHaveLength(TOTAL);
    expect(deliveries.filter((d) => d.status !== 'delivered').map((d) => d.id).sort()).toEqual([...inFlightAtKill].sort());
  }, 30_000);
  // A lease that has not lapsed is never taken over early, however many polls go by.
  await new Promise((resolve) => setTimeout(resolve, 10 * CHILD_DELIVERY.pollInterval));
  const beforeLapse = await allDeliveries(writer, subscription.id);
  expect(beforeLapse.filter((d) => d.status !== 'delivered').every((d) => d.status === 'in_flight' && inFlightAtKill.has(d.id))).toBe(true);
  expect(beforeLapse.filter((d) => d.status === 'in_flight')).toHaveLength(inFlightAtKill.size);
  expect(receiver.seen.filter((s) => s.phase === 2 && inFlightAtKill.has(s.id))).toEqual([]);

  // The lease lapses (as if the restart had come a minute later): the leased rows are sent again.
  receiver.state.phase = 3;
  await second.request({ type: 'advance', ms: LEASE_MS + 1000 }, 'advanced');
  await eventually(async () => expect((await allDeliveries(writer, subscription.id)).every((d) => d.status === 'delivered')).toBe(true), 10_000);
  await second.request({ type: 'idle' }, 'idle');

  // ── what the receiver saw ─────────────────────────────────────────────────────────────────
  const byId = new Map<string, Seen[]>();
  for (const s of receiver.seen) byId.set(s.id, [...(byId.get(s.id) ?? []), s]);
  // Every event arrived at least once, always under one webhook-id.
  const idsByEvent = new Map<number, Set<string>>();
  for (const s of receiver.seen) idsByEvent.set(s.n, (idsByEvent.get(s.n) ?? new Set()).add(s.id));
  expect([...idsByEvent.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL }, (_, n) => n));
  for (const ids of idsByEvent.values()) expect(ids.size).toBe(1);
  expect(byId.size).toBe(TOTAL);
  // Repeats: only deliveries in flight at the kill, at most `concurrency` of them, each repeated once,
  // with the same webhook-id and byte-identical body; every received-but-unanswered one is among them.
  const repeated = [...byId].filter(([, seen]) => seen.length > 1);
  expect(repeated.length).toBeLessThanOrEqual(CHILD_DELIVERY.concurrency);
  for (const [id, seen] of repeated) {
    expect(inFlightAtKill).toContain(id);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.body).toBe(seen[0]!.body);
    expect(seen.map((s) => s.phase)).toEqual([1, 3]);
  }
  for (const id of openAtKill) expect(repeated.map(([rid]) => rid)).toContain(id);
  expect(receiver.seen).toHaveLength(TOTAL + repeated.length);

  // The child answers 'stop' by closing and exiting: wait for that exit itself, not for a reply.
  second.process.send({ type: 'stop' });
  expect(await second.exit(20_000)).toEqual({ code: 0, signal: null });
  // Neither dispatcher logged a warning or an error (its logger writes them to stderr).
  expect(first.stderr.join('') + second.stderr.join('')).not.toMatch(/^(warn|error) /m);
}, 120_000); // 6–15 s: two child processes compiling TypeScript are slow on a loaded machine

it('kill -9 while the fan-out moves fresh events: after a restart every (event, subscription) pair has one delivery and is received', async () => {
  const EVENTS = 150;
  const SUBSCRIPTIONS = 8;
  const { hooks: writer, file, close } = await testHooks({ events: CHILD_EVENTS }, { start: false });
  cleanups.push(close);
  const seen: Array<{ id: string; n: number; target: string }> = [];
  let onRequest = (): void => {};
  // Answers after a few ms, so the fan-out (which creates deliveries only as fast as the queue has
  // room) is still moving events when the kill comes.
  const receiver = await startReceiver((request, _index, res) => {
    const payload = JSON.parse(request.body) as { hook: { target: string }; data: { n: number } };
    seen.push({ id: request.headers['webhook-id'] as string, n: payload.data.n, target: payload.hook.target });
    res.on('error', () => {});
    setTimeout(() => !res.destroyed && res.writeHead(200).end('ok'), 5);
    onRequest();
    return 'handled';
  });
  cleanups.push(() => receiver.close());
  for (let s = 0; s < SUBSCRIPTIONS; s++) await writer.subscriptions.create({ owner: 'alice', event: 'thing.happened', target: `${receiver.url}/hook/${s}` });
  for (let n = 0; n < EVENTS; n++) expect((await writer.raw('thing.happened', { n }, { owner: 'alice' })).status).toBe('queued');

  const observer = new Database(file, { readonly: true });
  cleanups.push(() => void observer.close());
  const fresh = () => (observer.prepare('select count(*) as n from resthooks_outbox').get() as { n: number }).n;
  expect(fresh()).toBe(EVENTS);

  const first = await startChild(file);
  const freshAtKill = await new Promise<number>((resolve) => {
    onRequest = () => {
      const left = fresh();
      // Some events moved, some not yet: the fan-out is under way.
      if (left === 0 || left === EVENTS || seen.length < SUBSCRIPTIONS * 3) return;
      onRequest = () => {};
      first.process.kill('SIGKILL');
      resolve(left);
    };
  });
  await new Promise((resolve) => first.process.once('exit', resolve));
  expect(first.process.signalCode).toBe('SIGKILL');
  expect(freshAtKill).toBeGreaterThan(0);

  // A fresh event is never half moved: each is in exactly one of the two tables, and a moved one has all its deliveries.
  const movedAtKill = observer
    .prepare(
      `select e.id, (select count(*) from resthooks_deliveries d where d.event_id = e.id) as deliveries,
        (select count(*) from resthooks_outbox f where f.id = e.id) as still_fresh
       from resthooks_events e`,
    )
    .all() as Array<{ id: string; deliveries: number; still_fresh: number }>;
  expect(movedAtKill.length + fresh()).toBe(EVENTS);
  for (const event of movedAtKill) expect(event).toEqual({ id: event.id, deliveries: SUBSCRIPTIONS, still_fresh: 0 });

  // A new process on the same file; its clock past the dead one's leases, so its claims are taken over now.
  const second = await startChild(file);
  await second.request({ type: 'advance', ms: LEASE_MS + 1000 }, 'advanced');
  // Polled rather than idle(): an attempt that failed on the loaded machine waits for its retry, which idle() does not count.
  const perPair = () =>
    observer.prepare('select event_id, subscription_id, count(*) as n, min(status) as status from resthooks_deliveries group by event_id, subscription_id').all() as Array<{ n: number; status: string }>;
  await eventually(() => {
    expect(fresh()).toBe(0);
    expect(perPair()).toHaveLength(EVENTS * SUBSCRIPTIONS);
    expect(perPair().filter((pair) => pair.n !== 1 || pair.status !== 'delivered')).toEqual([]);
  }, 30_000);
  expect(observer.prepare("select status, count(*) as n from resthooks_events group by status").all()).toEqual([{ status: 'done', n: EVENTS }]);
  // Every pair reached its receiver, each under one webhook-id (a repeat is an attempt in flight at the kill, sent again).
  const idsByPair = new Map<string, Set<string>>();
  for (const s of seen) idsByPair.set(`${s.n} ${s.target}`, (idsByPair.get(`${s.n} ${s.target}`) ?? new Set()).add(s.id));
  expect(idsByPair.size).toBe(EVENTS * SUBSCRIPTIONS);
  for (const ids of idsByPair.values()) expect(ids.size).toBe(1);

  second.process.send({ type: 'stop' });
  expect(await second.exit(20_000)).toEqual({ code: 0, signal: null });

  // Each subscription's delivery log lists all its deliveries, those written before the kill included,
  // before and after the history catches up with them.
  const store = new KyselyStore(sqliteStore(new Database(file)));
  cleanups.push(() => store.destroy());
  const bySubscription = observer.prepare('select subscription_id, id from resthooks_deliveries order by id desc').all() as Array<{ subscription_id: string; id: string }>;
  const subscriptionIds = [...new Set(bySubscription.map((row) => row.subscription_id))];
  expect(subscriptionIds).toHaveLength(SUBSCRIPTIONS);
  for (const caughtUp of [false, true]) {
    if (caughtUp) await store.catchUpHistory();
    for (const id of subscriptionIds) {
      expect((await store.listDeliveries(id, EVENTS + 1)).map((d) => d.id)).toEqual(bySubscription.filter((row) => row.subscription_id === id).map((row) => row.id));
    }
  }
}, 120_000);
