/**
 * The Sender on its own, against real servers on 127.0.0.1: what test/faults.test.ts does not pin
 * (it drives the Sender through the whole dispatcher): the shared shutdown signal, timeouts while an
 * attempt waits for a connection, the excerpt's cut inside a character, informational responses.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import type { ServerResponse } from 'node:http';
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

  it('never rejects: an unparseable URL is an error result', async () => {
    const result = await sender().send(request('not a url'));
    expect(result).toMatchObject({ excerpt: null });
    expect(result.statusCode).toBeUndefined();
    expect(result.error).toMatch(/Invalid URL/);
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
