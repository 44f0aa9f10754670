import { Hono } from 'hono';
import { afterEach, expect, test } from 'vitest';
import { apiHarness, KEYS, TARGET, type ApiHarness } from './api-support.js';

let h: ApiHarness;
afterEach(() => h.close());
const auth = { authorization: `Bearer ${KEYS.alice}`, 'content-type': 'application/json' };

test('mounted in a Hono app with app.route(), errors keep their shape', async () => {
  h = await apiHarness();
  const host = new Hono();
  host.get('/', (c) => c.text('home'));
  host.route('/api', h.api);
  const created = await host.request('/api/hooks', { method: 'POST', headers: auth, body: JSON.stringify({ event: 'book.added', target: TARGET }) });
  expect(created.status).toBe(201);
  const bad = await host.request('/api/hooks', { method: 'POST', headers: auth, body: '{' });
  expect(bad.status).toBe(400);
  expect(await bad.json()).toEqual({ error: { code: 'invalid_json', message: 'The body is not valid JSON.' } });
  expect((await host.request('/api/hooks', { headers: {} })).status).toBe(401);
  expect(await (await host.request('/')).text()).toBe('home');
});

test('with basePath, as Next.js route handlers see full URLs', async () => {
  h = await apiHarness({ basePath: '/api/webhooks' });
  // app/api/webhooks/[...path]/route.ts
  const handler = (request: Request) => h.api.fetch(request);
  const [GET, POST, PATCH, DELETE] = [handler, handler, handler, handler];
  const url = (path: string) => `https://shop.example.com/api/webhooks${path}`;
  const created = await POST(new Request(url('/hooks'), { method: 'POST', headers: auth, body: JSON.stringify({ event: 'book.read', target: TARGET }) }));
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect((await GET(new Request(url(`/hooks/${id}`), { headers: auth }))).status).toBe(200);
  expect((await PATCH(new Request(url(`/hooks/${id}`), { method: 'PATCH', headers: auth, body: '{"active":false}' }))).status).toBe(200);
  expect((await DELETE(new Request(url(`/hooks/${id}`), { method: 'DELETE', headers: auth }))).status).toBe(204);
  const missing = await GET(new Request(url('/nothing'), { headers: auth }));
  expect(missing.status).toBe(404);
  expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
  const doc = (await (await GET(new Request(url('/openapi.json'), { headers: auth }))).json()) as { servers: unknown };
  expect(doc.servers).toEqual([{ url: '/api/webhooks' }]);
});
