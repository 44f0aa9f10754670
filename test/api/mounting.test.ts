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

test('mounted with app.route(), unknown paths under the mount answer the JSON not_found, not the host\'s text 404', async () => {
  h = await apiHarness();
  const host = new Hono();
  host.get('/api/status', (c) => c.text('host route under /api'));
  host.route('/api', h.api);
  host.get('/after', (c) => c.text('host route after the mount'));
  for (const [method, path] of [['GET', '/api/nothing'], ['GET', '/api/hooks/sub_1/nothing'], ['PUT', '/api/hooks'], ['POST', '/api/events']] as const) {
    const response = await host.request(path, { method, headers: auth });
    expect(response.status, `${method} ${path}`).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ error: { code: 'not_found', message: `No route ${method} ${path}.` } });
  }
  // Still authenticated first: a stranger learns nothing about which paths exist.
  expect((await host.request('/api/nothing')).status).toBe(401);
  // The host's own routes and its 404 outside the mount are untouched.
  expect(await (await host.request('/api/status')).text()).toBe('host route under /api');
  expect(await (await host.request('/after')).text()).toBe('host route after the mount');
  const outside = await host.request('/elsewhere');
  expect(outside.status).toBe(404);
  expect(await outside.text()).toBe('404 Not Found');
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
