import { createServer, type Server } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toExpress } from '../../src/adapters/http/express-adapter.js';
import { toFastify } from '../../src/adapters/http/fastify-adapter.js';
import { toNodeHandler } from '../../src/adapters/http/node-adapter.js';
import { closeServer, listen } from '../support/receiver.js';
import { apiHarness, KEYS, TARGET, type ApiHarness } from './api-support.js';

// The same API behind each adapter, on a real server on 127.0.0.1, called over real HTTP.
let h: ApiHarness;
const servers: Array<() => Promise<void>> = [];
beforeAll(async () => {
  h = await apiHarness({ maxBodyBytes: 1024 });
});
afterAll(async () => {
  for (const close of servers) await close();
  await h.close();
});

async function serve(server: Server): Promise<string> {
  servers.push(() => closeServer(server));
  return listen(server);
}

const mounts: Array<[string, () => Promise<string>]> = [
  ['node:http', async () => serve(createServer(toNodeHandler(h.api)))],
  ['express', async () => {
    const app = express();
    app.use('/api', toExpress(h.api));
    return `${await serve(createServer(app))}/api`;
  }],
  ['express behind express.json()', async () => {
    const app = express();
    app.use(express.json());
    app.use('/api', toExpress(h.api));
    return `${await serve(createServer(app))}/api`;
  }],
  ['fastify', async () => {
    const app = Fastify();
    await app.register(toFastify(h.api), { prefix: '/api' });
    const origin = await app.listen({ port: 0, host: '127.0.0.1' });
    servers.push(() => app.close());
    return `${origin}/api`;
  }],
];

describe.each(mounts)('%s', (_name, mount) => {
  let base: string;
  beforeAll(async () => {
    base = await mount();
  });
  const call = (method: string, path: string, body?: unknown, key: string = KEYS.alice) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });

  test('create, list, get, delete over real HTTP', async () => {
    const created = await call('POST', '/hooks', { event: 'book.added', target_url: TARGET, ignored: true });
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toMatch(/^application\/json/);
    const sub = (await created.json()) as { id: string; target: string; secret: string };
    expect(sub.target).toBe(TARGET);
    const list = (await (await call('GET', '/hooks?limit=100')).json()) as Array<{ id: string }>;
    expect(list.map((s) => s.id)).toContain(sub.id);
    const got = await call('GET', `/hooks/${sub.id}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(sub);
    const deleted = await call('DELETE', `/hooks/${sub.id}`);
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe('');
    expect((await call('GET', `/hooks/${sub.id}`)).status).toBe(404);
  });

  test('an unknown path under the mount is the JSON not_found', async () => {
    for (const path of ['/nothing', '/hooks/sub_1/nothing/else']) {
      const response = await call('GET', path);
      expect(response.status, path).toBe(404);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ error: { code: 'not_found', message: expect.stringMatching(/^No route GET \//) } });
    }
  });

  test('errors keep their shape: 400, 401, 404, 413', async () => {
    const bad = await call('POST', '/hooks', { event: 'book.burned', target: TARGET });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { code: 'unknown_event', message: 'Unexpected event "book.burned"' } });
    const anonymous = await call('GET', '/hooks', undefined, 'nope');
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    expect((await call('GET', '/hooks/sub_missing')).status).toBe(404);
    const before = h.snapshot();
    const big = await call('POST', '/hooks', { event: 'book.added', target: TARGET, pad: 'x'.repeat(4096) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    expect(h.snapshot()).toBe(before);
  });
});

test('the adapters leave the global Request and Response alone, and other routes of the host app work', async () => {
  const NativeRequest = globalThis.Request;
  const expressApp = express();
  expressApp.use('/api', toExpress(h.api));
  expressApp.get('/other', (_req, res) => { res.send('other route'); });
  const base = await serve(createServer(expressApp));
  expect(await (await fetch(`${base}/other`)).text()).toBe('other route');
  expect((await fetch(`${base}/api/events`, { headers: { authorization: `Bearer ${KEYS.bob}` } })).status).toBe(200);
  expect(globalThis.Request).toBe(NativeRequest);

  const fastify = Fastify();
  await fastify.register(toFastify(h.api), { prefix: '/api' });
  fastify.post('/other', async (request) => ({ parsed: request.body }));
  const fastifyBase = await fastify.listen({ port: 0, host: '127.0.0.1' });
  servers.push(() => fastify.close());
  // The plugin's raw-body parser stays inside its scope: the host's own routes still get parsed JSON.
  const other = await fetch(`${fastifyBase}/other`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  expect(await other.json()).toEqual({ parsed: { a: 1 } });
});
