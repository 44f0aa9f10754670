/**
 * Faults a receiver can throw at the dispatcher, each from its own real server on 127.0.0.1 (an
 * `http` server, or a raw `net` server where HTTP is too polite to misbehave): what gets recorded
 * (`hooks.deliveries`: status, attempt log) and what the receiver saw.
 */
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeliveryOptions, DeliveryWithAttempts, Hooks } from '../src/index.js';
import { eventually, testHooks } from './support/hooks.js';
import { startReceiver, type Receiver, type Responder } from './support/receiver.js';

const EVENTS = { 'thing.happened': null, 'big.thing': null } as const;
type Event = keyof typeof EVENTS;

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Hooks on a fresh SQLite file with the suite's millisecond schedule (three attempts) and a 2 s timeout: long
 * enough that a loaded machine never turns an answer into a timeout; the timeout tests set their own.
 */
async function hooksWith(delivery: DeliveryOptions = {}): Promise<Hooks<Event>> {
  const t = await testHooks({ events: EVENTS, delivery: { retry: { schedule: [0, 30, 60], jitter: 0 }, timeout: 2000, ...delivery } });
  closers.push(() => t.close());
  return t.hooks;
}

async function receiver(respond: Responder): Promise<Receiver> {
  const r = await startReceiver(respond);
  closers.push(() => r.close());
  return r;
}

/** Subscribes `target`, fires one event, and returns the subscription id. */
async function deliverOne(hooks: Hooks<Event>, target: string, data: unknown = { n: 1 }, event: Event = 'thing.happened'): Promise<string> {
  const subscription = await hooks.subscriptions.create({ owner: 'alice', event, target });
  await hooks.raw(event, data, { owner: 'alice' });
  return subscription.id;
}

/** The subscription's only delivery, once it has reached a final status. */
async function finalDelivery(hooks: Hooks<Event>, subscriptionId: string, timeoutMs = 5000): Promise<DeliveryWithAttempts> {
  return eventually(async () => {
    const deliveries = await hooks.deliveries.list(subscriptionId);
    expect(deliveries).toHaveLength(1);
    expect(['delivered', 'failed', 'cancelled']).toContain(deliveries[0]!.status);
    return deliveries[0]!;
  }, timeoutMs);
}

const log = (d: DeliveryWithAttempts) => d.attemptLog.map((a) => ({ number: a.number, statusCode: a.statusCode, outcome: a.outcome, error: a.error }));

interface RawRequest {
  readonly head: string;
  readonly body: Buffer;
}

/** Listens on 127.0.0.1:0; after the test, drops every open socket and closes. */
async function listenUntilClosed(server: NetServer, sockets: Set<Socket>): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
}

/**
 * A raw TCP receiver: reads one HTTP/1.1 request per connection (head + content-length body) and
 * hands the socket to `handle`, which answers (or misbehaves) by hand.
 */
async function rawReceiver(handle: (socket: Socket, request: RawRequest, index: number) => void) {
  const requests: RawRequest[] = [];
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      socket.off('data', onData);
      const request = { head, body: buffer.subarray(end + 4, end + 4 + length) };
      requests.push(request);
      handle(socket, request, requests.length - 1);
    };
    socket.on('data', onData);
  });
  await listenUntilClosed(server, sockets);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    requests,
  };
}

/** Accepts connections and never reads a byte from them (`pauseOnConnect`), nor answers. */
async function silentReceiver() {
  const sockets = new Set<Socket>();
  let connections = 0;
  let first!: (socket: Socket) => void;
  const connected = new Promise<Socket>((resolve) => (first = resolve));
  const server: NetServer = createNetServer({ pauseOnConnect: true }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    first(socket);
  });
  await listenUntilClosed(server, sockets);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    sockets,
    connected,
    get connections() {
      return connections;
    },
  };
}

const header = (request: RawRequest, name: string) => new RegExp(`\\r\\n${name}:\\s*([^\\r]*)`, 'i').exec(request.head)?.[1];
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok';

describe('status codes', () => {
  it('500 then 200: delivered on attempt 2, with the same webhook-id and body', async () => {
    const hooks = await hooksWith();
    const r = await receiver((_, index) => (index === 0 ? { status: 500, body: 'try later' } : 200));
    const id = await deliverOne(hooks, r.url);
    const delivery = await finalDelivery(hooks, id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 2, lastStatusCode: 200, lastError: null });
    expect(log(delivery)).toEqual([
      { number: 1, statusCode: 500, outcome: 'retry', error: null },
      { number: 2, statusCode: 200, outcome: 'delivered', error: null },
    ]);
    expect(delivery.attemptLog[0]!.responseExcerpt).toBe('try later');
    expect(r.received).toHaveLength(2);
    expect(r.received[1]!.headers['webhook-id']).toBe(delivery.id);
    expect(r.received[1]!.headers['webhook-id']).toBe(r.received[0]!.headers['webhook-id']);
    expect(r.received[1]!.body).toBe(r.received[0]!.body);
  });

  it('always 500: failed after as many attempts as the schedule has entries, then left alone', async () => {
    const hooks = await hooksWith();
    const r = await receiver(() => 500);
    const id = await deliverOne(hooks, r.url);
    const delivery = await finalDelivery(hooks, id);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 3, lastStatusCode: 500, nextAttemptAt: null });
    expect(delivery.lastError).toMatch(/gave up after 3 attempts/);
    expect(log(delivery).map((a) => [a.number, a.statusCode, a.outcome])).toEqual([
      [1, 500, 'retry'],
      [2, 500, 'retry'],
      [3, 500, 'failed'],
    ]);
    await sleep(150);
    expect(r.received).toHaveLength(3);
    expect(new Set(r.received.map((q) => q.headers['webhook-id'])).size).toBe(1);
  });

  it('301 with a Location is never followed: each attempt fails with 301, and the schedule runs out', async () => {
    const hooks = await hooksWith();
    const r = await receiver((q) => (q.path === '/moved' ? { status: 301, headers: { location: '/elsewhere' } } : 200));
    const id = await deliverOne(hooks, r.url + '/moved');
    const delivery = await finalDelivery(hooks, id);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 3, lastStatusCode: 301 });
    expect(delivery.lastError).toMatch(/^HTTP 301; gave up after 3 attempts/);
    expect(log(delivery).map((a) => [a.statusCode, a.outcome])).toEqual([
      [301, 'retry'],
      [301, 'retry'],
      [301, 'failed'],
    ]);
    expect(r.received.map((q) => q.path)).toEqual(['/moved', '/moved', '/moved']);
  });

  it('410 Gone: the subscription is deleted and its other pending deliveries cancelled; other subscriptions carry on', async () => {
    // A long second delay keeps the earlier deliveries pending (waiting for their retry) when the 410 lands.
    // A 500, not a 503: a 503 would pause the subscription, and hold the third delivery back too.
    const hooks = await hooksWith({ retry: { schedule: [0, 5000], jitter: 0 } });
    const r = await receiver((q) => (q.path === '/gone' ? (q.json.data.n === 3 ? 410 : 500) : 200));
    const gone = await hooks.subscriptions.create({ owner: 'alice', event: 'thing.happened', target: r.url + '/gone' });
    const other = await hooks.subscriptions.create({ owner: 'alice', event: 'thing.happened', target: r.url + '/other' });
    await hooks.raw('thing.happened', { n: 1 }, { owner: 'alice' });
    await hooks.raw('thing.happened', { n: 2 }, { owner: 'alice' });
    await eventually(async () => {
      const deliveries = await hooks.deliveries.list(gone.id);
      expect(deliveries.map((d) => [d.status, d.attempts])).toEqual([
        ['pending', 1],
        ['pending', 1],
      ]);
    });
    await hooks.raw('thing.happened', { n: 3 }, { owner: 'alice' });
    await eventually(async () => expect(await hooks.subscriptions.get(gone.id)).toBeUndefined());
    await hooks.idle();

    const toGone = r.received.filter((q) => q.path === '/gone');
    expect(toGone.map((q) => q.json.data.n).sort()).toEqual([1, 2, 3]);
    const byN = new Map(toGone.map((q) => [q.json.data.n as number, q.headers['webhook-id'] as string]));
    const answered410 = (await hooks.deliveries.get(byN.get(3)!))!;
    expect(answered410).toMatchObject({ status: 'cancelled', lastStatusCode: 410, lastError: 'subscription gone (410)' });
    expect(log(answered410)).toEqual([{ number: 1, statusCode: 410, outcome: 'gone', error: null }]);
    for (const n of [1, 2]) {
      const cancelled = (await hooks.deliveries.get(byN.get(n)!))!;
      expect(cancelled).toMatchObject({ status: 'cancelled', attempts: 1, nextAttemptAt: null, lastError: 'subscription gone (410)' });
      expect(log(cancelled).map((a) => [a.statusCode, a.outcome])).toEqual([[500, 'retry']]);
    }
    await expect(hooks.deliveries.list(gone.id)).rejects.toMatchObject({ code: 'not_found' });
    expect((await hooks.deliveries.list(other.id)).map((d) => d.status)).toEqual(['delivered', 'delivered', 'delivered']);
    // A later event reaches only the remaining subscription.
    await hooks.raw('thing.happened', { n: 4 }, { owner: 'alice' });
    await r.waitFor(toGone.length + 3 + 1);
    await hooks.idle();
    expect(r.received.filter((q) => q.path === '/gone')).toHaveLength(3);
  });

  // RFC 9110 §10.2.3. The recorded nextAttemptAt is measured from the end of the attempt.
  it.each([
    { case: 'Retry-After 1 s against 300 ms scheduled: capped at 2 × scheduled', retryAfter: '1', min429: 50, expected: 600 },
    { case: 'Retry-After 0: never earlier than scheduled', retryAfter: '0', min429: 50, expected: 300 },
    { case: 'no Retry-After: the 429 minimum wins over a shorter schedule', retryAfter: undefined, min429: 500, expected: 500 },
  ])('429: $case', async ({ retryAfter, min429, expected }) => {
    const hooks = await hooksWith({ retry: { schedule: [0, 300], jitter: 0 }, minDelayAfter429: min429 });
    const headers: Record<string, string> = retryAfter === undefined ? {} : { 'retry-after': retryAfter };
    const r = await receiver((_, index) => (index === 0 ? { status: 429, headers } : 200));
    const id = await deliverOne(hooks, r.url);
    const waiting = await eventually(async () => {
      const [delivery] = await hooks.deliveries.list(id);
      expect(delivery).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: 429 });
      return delivery!;
    });
    const [attempt] = waiting.attemptLog;
    expect(attempt).toMatchObject({ statusCode: 429, outcome: 'retry' });
    const delay = waiting.nextAttemptAt!.getTime() - (attempt!.startedAt.getTime() + attempt!.durationMs);
    // Measured from the end of the send; the attempt's own overhead (signing, recording) only adds.
    expect(delay).toBeGreaterThanOrEqual(expected - 2);
    expect(delay).toBeLessThan(expected + 100);
    const [first, second] = await r.waitFor(2, 3000);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(expected - 10);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(await finalDelivery(hooks, id)).toMatchObject({ status: 'delivered', attempts: 2 });
  });
});

describe('timeouts', () => {
  it('an answer slower than the timeout: the attempt is recorded as timed out and retried', async () => {
    const hooks = await hooksWith({ timeout: 300 });
    const r = await receiver((_, index, response) => {
      if (index > 0) return 200;
      setTimeout(() => response.destroyed || response.writeHead(200).end('too late'), 700);
      return 'handled';
    });
    const id = await deliverOne(hooks, r.url);
    const delivery = await finalDelivery(hooks, id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 2 });
    const [timedOut] = delivery.attemptLog;
    expect(timedOut).toMatchObject({ number: 1, statusCode: null, outcome: 'retry', responseExcerpt: null });
    expect(timedOut!.error).toMatch(/timed out after 300 ms/);
    expect(timedOut!.durationMs).toBeGreaterThanOrEqual(295);
  });

  it('headers at once but a body that never ends: still cut off by the timeout and retried', async () => {
    const hooks = await hooksWith({ timeout: 300 });
    const r = await receiver((_, index, response) => {
      if (index > 0) return 200;
      response.writeHead(200, { 'content-length': '1000' });
      response.write('a trickle');
      return 'handled';
    });
    const id = await deliverOne(hooks, r.url);
    const delivery = await finalDelivery(hooks, id);
    expect(log(delivery).map((a) => [a.statusCode, a.outcome])).toEqual([
      [null, 'retry'],
      [200, 'delivered'],
    ]);
    expect(delivery.attemptLog[0]!.error).toMatch(/timed out after 300 ms/);
  });

  it('a receiver that accepts the connection and never reads: the blocked write is cut off at the timeout, and other receivers are served meanwhile', async () => {
    // 6 MB: more than Linux's largest TCP send buffer (tcp_wmem max, 4 MB) plus the unread receive
    // window, so the request body cannot all be handed to the kernel and the write itself blocks
    // (on loopback here, 2 MB is still taken whole by the kernel; 4 MB no longer is).
    const hooks = await hooksWith({ timeout: 1500, retry: { schedule: [0, 30], jitter: 0 }, maxPayloadBytes: 8 * 1024 * 1024 });
    const stuck = await silentReceiver();
    const healthy = await receiver(() => 200);
    const stuckSub = await hooks.subscriptions.create({ owner: 'alice', event: 'big.thing', target: stuck.url });
    const healthySub = await hooks.subscriptions.create({ owner: 'alice', event: 'thing.happened', target: healthy.url });
    await hooks.raw('big.thing', { blob: 'x'.repeat(6 * 1024 * 1024) }, { owner: 'alice' });
    await stuck.connected;
    for (let n = 0; n < 20; n++) await hooks.raw('thing.happened', { n }, { owner: 'alice' });
    const served = await healthy.waitFor(20, 5000);

    const delivery = await finalDelivery(hooks, stuckSub.id, 15_000);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 2 });
    for (const attempt of delivery.attemptLog) {
      expect(attempt).toMatchObject({ statusCode: null });
      expect(attempt.error).toMatch(/timed out after 1500 ms/);
      expect(attempt.durationMs).toBeGreaterThanOrEqual(1495);
    }
    // All twenty were served while the first attempt of the big one was still stuck in its write.
    const firstEnded = delivery.attemptLog[0]!.startedAt.getTime() + delivery.attemptLog[0]!.durationMs;
    expect(Math.max(...served.map((q) => q.at))).toBeLessThan(firstEnded);
    // Each attempt on its own connection (undici may also open a spare one; it is not counted on).
    expect(stuck.connections).toBeGreaterThanOrEqual(2);
    const healthyLog = await hooks.deliveries.list(healthySub.id);
    expect(healthyLog.map((d) => d.status)).toEqual(Array(20).fill('delivered'));
  });
});

describe('broken connections', () => {
  it.each([
    {
      case: 'closed (FIN) before any response',
      misbehave: (socket: Socket) => socket.destroy(),
      error: /^connection closed by the receiver$/,
    },
    {
      case: 'reset (RST) before any response',
      misbehave: (socket: Socket) => socket.resetAndDestroy(),
      error: /^(connection reset|connection closed by the receiver)$/,
    },
    {
      case: 'reset (RST) after the headers and part of a 200 body',
      misbehave: (socket: Socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial', () => setTimeout(() => socket.resetAndDestroy(), 20)),
      error: /^(connection reset|connection closed by the receiver)$/,
    },
    {
      case: 'closed (FIN) after the headers and part of a 500 body',
      misbehave: (socket: Socket) => socket.write('HTTP/1.1 500 Oops\r\ncontent-length: 1000\r\n\r\npartial', () => setTimeout(() => socket.destroy(), 20)),
      error: /^connection closed by the receiver$/,
    },
  ])('connection $case: the attempt records the error and is retried with the same webhook-id', async ({ misbehave, error }) => {
    const hooks = await hooksWith();
    const raw = await rawReceiver((socket, _, index) => (index === 0 ? misbehave(socket) : socket.end(OK)));
    const id = await deliverOne(hooks, raw.url);
    const delivery = await finalDelivery(hooks, id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 2, lastStatusCode: 200 });
    const [broken, ok] = delivery.attemptLog;
    expect(broken).toMatchObject({ number: 1, statusCode: null, outcome: 'retry', responseExcerpt: null });
    expect(broken!.error).toMatch(error);
    expect(ok).toMatchObject({ number: 2, statusCode: 200, outcome: 'delivered', error: null, responseExcerpt: 'ok' });
    expect(raw.requests).toHaveLength(2);
    expect(header(raw.requests[1]!, 'webhook-id')).toBe(delivery.id);
    expect(header(raw.requests[0]!, 'webhook-id')).toBe(delivery.id);
    expect(raw.requests[1]!.body.equals(raw.requests[0]!.body)).toBe(true);
  });

  it('connection refused (nothing listening): recorded and retried until the schedule runs out', async () => {
    const hooks = await hooksWith();
    const closed = await rawReceiver(() => {});
    const url = closed.url;
    await closers.pop()!(); // close it now: the port is free and refuses connections
    const id = await deliverOne(hooks, url);
    const delivery = await finalDelivery(hooks, id);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 3, lastStatusCode: null });
    for (const attempt of delivery.attemptLog) expect(attempt.error).toBe('connection refused');
    expect(delivery.lastError).toMatch(/^connection refused; gave up after 3 attempts/);
  });
});

describe('many at once', () => {
  it('more than ten attempts in flight together: no MaxListenersExceededWarning from the shared shutdown signal', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    closers.push(() => void process.off('warning', onWarning));
    const hooks = await hooksWith();
    const held: Array<() => void> = [];
    const r = await receiver((_, index, response) => {
      held.push(() => void response.writeHead(200).end());
      if (index + 1 >= 12) for (const release of held.splice(0)) release(); // the first 12 wait for each other
      return 'handled';
    });
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'thing.happened', target: r.url });
    for (let n = 0; n < 20; n++) await hooks.raw('thing.happened', { n }, { owner: 'alice' });
    await r.waitFor(20);
    await eventually(async () => expect((await hooks.deliveries.list(subscription.id)).map((d) => d.status)).toEqual(Array(20).fill('delivered')));
    await sleep(10); // warnings are emitted on the next tick
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});

describe('large answers', () => {
  it.each([
    { case: 'ASCII', unit: 'x' },
    // 1000 is not a multiple of 3: the cut falls inside a character, which must not be kept half.
    { case: 'multi-byte UTF-8', unit: '€' },
  ])('a 10 MB $case response body: the excerpt is capped at responseExcerptBytes and the delivery succeeds', async ({ unit }) => {
    const hooks = await hooksWith({ responseExcerptBytes: 1000 });
    const huge = Buffer.from(unit.repeat(Math.ceil((10 * 1024 * 1024) / Buffer.byteLength(unit))));
    const r = await receiver((_, __, response) => {
      response.on('error', () => {}); // the sender hangs up after the excerpt: EPIPE / ECONNRESET here
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(huge.length) }).end(huge);
      return 'handled';
    });
    const id = await deliverOne(hooks, r.url);
    const delivery = await finalDelivery(hooks, id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
    const excerpt = delivery.attemptLog[0]!.responseExcerpt!;
    expect(Buffer.byteLength(excerpt)).toBeLessThanOrEqual(1000);
    expect(Buffer.byteLength(excerpt)).toBeGreaterThanOrEqual(1000 - 3);
    expect(excerpt).toBe(unit.repeat(excerpt.length / unit.length)); // a clean prefix: no U+FFFD, no half character
    expect(r.received).toHaveLength(1);
  });
});
