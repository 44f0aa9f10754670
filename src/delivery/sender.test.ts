/**
 * The Sender on its own, against real servers on 127.0.0.1: what test/faults.test.ts does not pin
 * (it drives the Sender through the whole dispatcher): the shared shutdown signal, timeouts while an
 * attempt waits for a connection, the excerpt's cut inside a character, informational responses.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import type { ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/hooks.js';
import { startReceiver, type Received } from '../../test/support/receiver.js';
import { completeUtf8, Sender, type SenderOptions, type SendRequest } from './sender.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

type Handler = (request: Received, response: ServerResponse, index: number) => void;

/** A receiver that hands each request, body read, to `handle`, which answers it (or never does). */
async function server(handle: Handler): Promise<{ url: string; requests: Received[] }> {
  const receiver = await startReceiver((request, index, response) => {
    response.on('error', () => {});
    handle(request, response, index);
    return 'handled';
  });
  closers.push(() => receiver.close());
  return { url: `${receiver.url}/hook`, requests: receiver.received };
}

/**
 * A raw TCP server on 127.0.0.1: `answer` gets the socket once a whole request (head and body) has
 * arrived, and writes whatever bytes the case needs, or nothing.
 */
async function rawServer(answer: (socket: Socket, index: number) => void): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buffer.subarray(0, end).toString('latin1'))?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      buffer = buffer.subarray(end + 4 + length);
      answer(socket, requests++);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, requests: () => requests };
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

function sender(options: SenderOptions = {}): Sender {
  const s = new Sender(options);
  closers.push(() => s.close());
  return s;
}

const request = (url: string, extra: Partial<SendRequest> = {}): SendRequest => ({ url, headers: { 'webhook-id': 'msg_1' }, body: '{"n":1}', timeoutMs: 2000, ...extra });
const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

describe('Sender', () => {
  it('POSTs the body with content-type, user-agent and the given headers; reports status, excerpt and Retry-After', async () => {
    const r = await server((_, response) => response.writeHead(503, { 'retry-after': '7' }).end('busy'));
    const result = await sender({ userAgent: 'test-agent' }).send(request(r.url));
    expect(result).toMatchObject({ statusCode: 503, retryAfter: '7', excerpt: 'busy' });
    expect(result.error).toBeUndefined();
    expect(result.aborted).toBeUndefined();
    expect(r.requests[0]).toMatchObject({
      body: '{"n":1}',
      headers: { 'content-type': 'application/json', 'user-agent': 'test-agent', 'webhook-id': 'msg_1' },
    });
  });

  it('an informational 103 before the answer: the final status is the one reported', async () => {
    const r = await server((_, response) => {
      response.writeEarlyHints({ link: '</style.css>; rel=preload' });
      response.writeHead(204).end();
    });
    expect(await sender().send(request(r.url))).toMatchObject({ statusCode: 204, excerpt: '' });
  });

  it('sends again after close(), on new connections (hooks.stop() closes it, a later start() sends again)', async () => {
    const r = await server((_, response) => response.writeHead(200).end('ok'));
    const s = sender();
    expect(await s.send(request(r.url))).toMatchObject({ statusCode: 200 });
    await s.close();
    expect(await s.send(request(r.url))).toMatchObject({ statusCode: 200, excerpt: 'ok' });
    expect(r.requests).toHaveLength(2);
  });

  it('never rejects: an unparseable URL is an error result', async () => {
    const result = await sender().send(request('not a url'));
    expect(result).toMatchObject({ excerpt: null });
    expect(result.statusCode).toBeUndefined();
    expect(result.error).toBe('invalid target URL');
  });

  describe('an unsolicited 100 Continue before the answer', () => {
    it('is skipped: the final status is the one reported, on a fresh and on a kept-alive connection', async () => {
      const r = await rawServer((socket) => socket.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`));
      const s = sender();
      expect(await s.send(request(r.url))).toMatchObject({ statusCode: 200, excerpt: 'ok' });
      expect(await s.send(request(r.url))).toMatchObject({ statusCode: 200, excerpt: 'ok' });
      expect(r.requests()).toBe(2);
    });

    it('split across packets, several of them, a bare "100", headers in it', async () => {
      const r = await rawServer((socket) => {
        const parts = ['HTTP/1.1 10', '0 Continue\r\n', '\r\nHTTP/1.0 100\r\n\r\nHTTP/1.1 100 Continue\r\nx-a: b\r\n\r\n', OK.slice(0, 5), OK.slice(5)];
        const next = () => {
          const part = parts.shift();
          if (part !== undefined) socket.write(part, () => setTimeout(next, 15));
        };
        next();
      });
      expect(await sender().send(request(r.url))).toMatchObject({ statusCode: 200, excerpt: 'ok' });
    });

    it('a 100 followed by a failure status: that status counts', async () => {
      const r = await rawServer((socket) => socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nretry-after: 9\r\ncontent-length: 4\r\n\r\nbusy'));
      expect(await sender().send(request(r.url))).toMatchObject({ statusCode: 503, retryAfter: '9', excerpt: 'busy' });
    });
  });

  describe('errors: short, stable names for what happened on the wire', () => {
    it.each([
      { case: 'the connection is reset', answer: (socket: Socket) => socket.resetAndDestroy(), error: 'connection reset' },
      { case: 'the connection is closed before any answer', answer: (socket: Socket) => socket.end(), error: 'connection closed by the receiver' },
      {
        case: 'the connection is closed inside a 200 body',
        answer: (socket: Socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab', () => setTimeout(() => socket.end(), 20)),
        error: 'connection closed by the receiver',
      },
      { case: 'the answer is not HTTP', answer: (socket: Socket) => socket.write('garbage\r\n\r\n'), error: 'invalid HTTP response' },
      { case: 'a header line is malformed', answer: (socket: Socket) => socket.write('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'), error: 'invalid HTTP response' },
      { case: 'an upgrade nobody asked for', answer: (socket: Socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: x\r\n\r\n'), error: 'invalid HTTP response' },
      { case: 'the headers never end', answer: (socket: Socket) => socket.write(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`), error: 'invalid HTTP response (headers too large)' },
      { case: 'nothing is ever answered', answer: () => {}, error: 'timed out after 300 ms' },
    ])('$case: "$error"', async ({ answer, error }) => {
      const r = await rawServer(answer);
      const result = await sender().send(request(r.url, { timeoutMs: 300 }));
      expect(result).toMatchObject({ error, excerpt: null });
      expect(result.statusCode).toBeUndefined();
    });

    it('nothing listening: "connection refused"; TLS to a plain HTTP server: "TLS error (…)"', async () => {
      const plain = createNetServer((socket) => socket.on('error', () => {}).once('data', () => socket.end(OK)));
      await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
      closers.push(() => new Promise<void>((resolve) => plain.close(() => resolve())));
      const refused = await rawServer(() => {});
      const refusedUrl = refused.url;
      await closers.pop()!();
      const s = sender();
      expect(await s.send(request(refusedUrl))).toMatchObject({ error: 'connection refused', excerpt: null });
      expect(await s.send(request(`https://127.0.0.1:${(plain.address() as AddressInfo).port}/hook`))).toMatchObject({ error: 'TLS error (ERR_SSL_WRONG_VERSION_NUMBER)', excerpt: null });
    });
  });

  describe('the excerpt', () => {
    it('a cut inside a multi-byte character drops the partial character, across chunks too', async () => {
      // 5 × '€' (3 bytes each) in one chunk, then 5 more in a second one.
      const r = await server((_, response) => {
        response.writeHead(200, { 'content-length': '30' });
        response.write('€€€€€', () => setTimeout(() => response.end('€€€€€'), 20));
      });
      const s = sender({ excerptBytes: 20 }); // 6 whole characters (18 bytes), then 2 bytes of the 7th
      expect(await s.send(request(r.url))).toMatchObject({ statusCode: 200, excerpt: '€€€€€€' });
    });

    it('a body shorter than the limit is kept whole; one of exactly the limit too', async () => {
      const r = await server((_, response, index) => response.writeHead(200).end(index === 0 ? 'héllo' : 'x'.repeat(8)));
      const s = sender({ excerptBytes: 8 });
      expect((await s.send(request(r.url))).excerpt).toBe('héllo');
      expect((await s.send(request(r.url))).excerpt).toBe('x'.repeat(8));
    });

    it('completeUtf8 holds back exactly what StringDecoder.write holds back', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 }), (noise, text) => {
          const bytes = Buffer.concat([Buffer.from(noise), Buffer.from(text)]);
          for (let end = 0; end <= bytes.length; end++) {
            const cut = bytes.subarray(0, end);
            expect(cut.toString('utf8', 0, completeUtf8(cut, end))).toBe(new StringDecoder('utf8').write(cut));
          }
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('timeout', () => {
    it('covers the wait for a connection: an attempt queued behind a busy one times out on time', async () => {
      const held: ServerResponse[] = [];
      const r = await server((_, response, index) => (index === 0 ? held.push(response) : response.writeHead(200).end('ok')));
      const s = sender({ connectionsPerOrigin: 1 });
      const first = s.send(request(r.url, { timeoutMs: 1000 }));
      await eventually(() => assert.equal(held.length, 1)); // the first holds the only connection
      const started = performance.now();
      const second = await s.send(request(r.url, { timeoutMs: 200 }));
      expect(performance.now() - started).toBeLessThan(600);
      expect(second).toMatchObject({ error: 'timed out after 200 ms', excerpt: null });
      expect(second.durationMs).toBeGreaterThanOrEqual(195);
      for (const response of held) response.writeHead(200).end('ok');
      expect(await first).toMatchObject({ statusCode: 200 });
      // The timed-out attempt never reached the receiver, and the pool carries on.
      expect(await s.send(request(r.url))).toMatchObject({ statusCode: 200 });
      expect(r.requests).toHaveLength(2);
    });
  });

  describe('timeouts of several lengths', () => {
    it('each attempt times out at its own deadline, whatever the order they started in', async () => {
      const r = await server((request, response) => {
        if (request.headers['webhook-id'] === 'msg_answered') response.writeHead(200).end('ok');
      });
      const s = sender({ connectionsPerOrigin: 4 });
      const settled: string[] = [];
      const track = (name: string, attempt: Promise<unknown>) => attempt.then((result) => (settled.push(name), result));
      const long = track('long', s.send(request(r.url, { timeoutMs: 1500 })));
      const short = track('short', s.send(request(r.url, { timeoutMs: 150 })));
      const answered = track('answered', s.send(request(r.url, { headers: { 'webhook-id': 'msg_answered' }, timeoutMs: 150 })));
      expect(await answered).toMatchObject({ statusCode: 200 });
      expect(await short).toMatchObject({ error: 'timed out after 150 ms', excerpt: null });
      expect(await long).toMatchObject({ error: 'timed out after 1500 ms', excerpt: null });
      expect(settled).toEqual(['answered', 'short', 'long']);
      // A later attempt after they all ended has a deadline of its own.
      const later = await s.send(request(r.url, { timeoutMs: 100 }));
      expect(later).toMatchObject({ error: 'timed out after 100 ms' });
      expect(later.durationMs).toBeGreaterThanOrEqual(100);
    });
  });

  describe('headers', () => {
    it('sends content-type and user-agent by default, and the request\'s own when it sets them', async () => {
      const r = await server((_, response) => response.writeHead(200).end());
      const s = sender({ userAgent: 'resthooks-test' });
      await s.send(request(r.url));
      await s.send(request(r.url, { headers: { 'webhook-id': 'msg_2', 'content-type': 'application/cloudevents+json', 'user-agent': 'other' } }));
      expect(r.requests.map((q) => [q.headers['content-type'], q.headers['user-agent'], q.headers['webhook-id']])).toEqual([
        ['application/json', 'resthooks-test', 'msg_1'],
        ['application/cloudevents+json', 'other', 'msg_2'],
      ]);
    });
  });

  describe('shutdown signal', () => {
    it('aborts every attempt in flight through one listener, which goes once they have settled', async () => {
      const r = await server(() => {}); // never answers
      const s = sender({ connectionsPerOrigin: 8 }); // 40 attempts: 8 on the wire, 32 waiting for a connection
      const shutdown = new AbortController();
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on('warning', onWarning);
      closers.push(async () => void process.off('warning', onWarning));
      const attempts = Array.from({ length: 40 }, () => s.send(request(r.url, { timeoutMs: 10_000, signal: shutdown.signal })));
      await eventually(() => assert.equal(r.requests.length, 8));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(r.requests).toHaveLength(8);
      expect(listeners(shutdown.signal)).toBe(1);
      const started = performance.now();
      shutdown.abort(new Error('shutdown deadline'));
      const results = await Promise.all(attempts);
      // At once, not at the 10 s timeout (the bound leaves room for a loaded machine).
      expect(performance.now() - started).toBeLessThan(1000);
      for (const result of results) expect(result).toMatchObject({ aborted: true, error: 'aborted by shutdown', excerpt: null });
      expect(listeners(shutdown.signal)).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
      // The queued ones never reached the receiver; a later attempt under a new signal goes through.
      const later = new AbortController();
      r.requests.length = 0;
      const next = s.send(request(r.url, { timeoutMs: 300, signal: later.signal }));
      expect(await next).toMatchObject({ error: 'timed out after 300 ms' });
      expect(r.requests).toHaveLength(1);
    });

    it('no listener outlives its attempts (a signal per attempt, as a BullMQ worker passes)', async () => {
      const r = await server((_, response) => response.writeHead(200).end('ok'));
      const s = sender();
      const shutdown = new AbortController();
      const signals = Array.from({ length: 5 }, () => AbortSignal.any([shutdown.signal, new AbortController().signal]));
      const results = await Promise.all(signals.map((signal) => s.send(request(r.url, { signal }))));
      for (const result of results) expect(result).toMatchObject({ statusCode: 200 });
      for (const signal of signals) expect(listeners(signal)).toBe(0);
    });

    it('an already aborted signal: no request is sent', async () => {
      const r = await server((_, response) => response.writeHead(200).end());
      const result = await sender().send(request(r.url, { signal: AbortSignal.abort() }));
      expect(result).toMatchObject({ aborted: true, error: 'aborted by shutdown', excerpt: null });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(r.requests).toHaveLength(0);
    });

    it('an abort after the answer changes nothing', async () => {
      const r = await server((_, response) => response.writeHead(200).end('ok'));
      const shutdown = new AbortController();
      const result = await sender().send(request(r.url, { signal: shutdown.signal }));
      shutdown.abort();
      expect(result).toMatchObject({ statusCode: 200, excerpt: 'ok' });
      expect(result.aborted).toBeUndefined();
    });
  });
});
