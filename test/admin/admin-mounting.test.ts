/**
 * The admin page behind each HTTP adapter, over real HTTP on 127.0.0.1: Express and Fastify strip the
 * mount path before the page sees the request, so `basePath` puts it back; node:http passes it through.
 * Every link and redirect must carry the mount path.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toExpress } from '../../src/adapters/http/express-adapter.js';
import { toFastify } from '../../src/adapters/http/fastify-adapter.js';
import { toNodeHandler } from '../../src/adapters/http/node-adapter.js';
import { createAdminPage } from '../../src/api/admin/admin-page.js';
import { testHooks, type TestHooks } from '../support/hooks.js';
import { closeServer, listen } from '../support/receiver.js';
import { BASIC, basicAuthorize, EVENTS, mainOf } from './admin-support.js';

let t: TestHooks<keyof typeof EVENTS>;
const closers: Array<() => Promise<void>> = [];
beforeAll(async () => {
  t = await testHooks({ events: EVENTS });
});
afterAll(async () => {
  for (const close of closers) await close();
  await t.close();
});

async function serve(server: Server): Promise<string> {
  closers.push(() => closeServer(server));
  return listen(server);
}

const page = () => createAdminPage(t.hooks, { authorize: basicAuthorize, basePath: '/admin' });
const mounts: Array<[string, () => Promise<string>]> = [
  ['express: server.use(\'/admin\', toExpress(page))', async () => {
    const server = express();
    server.use('/admin', toExpress(page()));
    server.get('/other', (_req, res) => void res.send('other route'));
    return serve(createServer(server));
  }],
  ['fastify: register(toFastify(page), { prefix: \'/admin\' })', async () => {
    const server = Fastify();
    await server.register(toFastify(page()), { prefix: '/admin' });
    server.get('/other', async () => 'other route');
    const origin = await server.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => server.close());
    return origin;
  }],
  ['node:http, the page\'s own server', async () => {
    const handler = toNodeHandler(page());
    return serve(createServer((req, res) => (req.url?.startsWith('/other') ? res.end('other route') : handler(req, res))));
  }],
];

describe.each(mounts)('%s', (_name, mount) => {
  let origin: string;
  beforeAll(async () => {
    origin = await mount();
  });
  const get = (path: string) => fetch(`${origin}${path}`, { headers: { authorization: BASIC }, redirect: 'manual' });
  const links = (html: string) => [...html.matchAll(/(?:href|action)="([^"]+)"/g)].map((m) => m[1]!);

  test('pages and links under /admin; the host\'s other routes untouched', async () => {
    const s = await t.hooks.subscriptions.create({ owner: 'quinn', event: 'book.added', target: 'https://example.com/q' });
    for (const path of ['/admin', '/admin/']) {
      // At most one redirect (a trailing slash added or removed), never out of /admin.
      let response = await get(path);
      if (response.status === 308) {
        expect(response.headers.get('location')).toMatch(/^\/admin\/?$/);
        response = await get(response.headers.get('location')!);
      }
      expect(response.status, path).toBe(200);
      const list = mainOf(await response.text());
      expect(links(list)).toContain(`/admin/subscriptions/${s.id}`);
      for (const href of links(list)) expect(href.startsWith('/admin'), href).toBe(true);
    }
    const detail = await get(`/admin/subscriptions/${s.id}`);
    expect(detail.status).toBe(200);
    expect(links(await detail.text())).toEqual(expect.arrayContaining(['/admin', '/admin/events', `/admin/subscriptions/${s.id}/edit`, `/admin/subscriptions/${s.id}/delete`]));
    expect((await get('/admin/events')).status).toBe(200);
    expect(await (await fetch(`${origin}/other`)).text()).toBe('other route');
    await t.hooks.subscriptions.delete(s.id);
  });

  test('a form POST works and redirects under /admin', async () => {
    const response = await fetch(`${origin}/admin/subscriptions`, {
      method: 'POST',
      headers: { authorization: BASIC, origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ owner: 'rita', event: 'book.read', target: 'https://example.com/r' }),
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    const [created] = (await t.hooks.subscriptions.list({ owner: 'rita' })).items;
    expect(response.headers.get('location')).toBe(`/admin/subscriptions/${created!.id}?done=created`);
    const refused = await fetch(`${origin}/admin/subscriptions/${created!.id}/delete`, { method: 'POST', headers: { authorization: BASIC, origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual' });
    expect(refused.status).toBe(403);
    await t.hooks.subscriptions.delete(created!.id);
  });
});
