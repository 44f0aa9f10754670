/**
 * The admin page as the bookstore demo mounts it at /admin: HTTP Basic with the start-up password,
 * every user's subscriptions, same-origin forms only.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createBookstore, type Bookstore } from '../../examples/bookstore/bookstore.js';
import { readConfig } from '../../examples/bookstore/config.js';
import { loopbackResolver, tempDir } from '../support/hooks.js';
import { mainOf } from './admin-support.js';

let bookstore: Bookstore;
let dir: ReturnType<typeof tempDir>;
const origin = 'http://127.0.0.1:3000';
beforeAll(async () => {
  dir = tempDir();
  bookstore = await createBookstore(readConfig({ RESTHOOKS_DB: join(dir.path, 'bookstore.db') }, ['--no-tour']), { resolver: loopbackResolver });
});
afterAll(async () => {
  await bookstore.close();
  dir.cleanup();
});

const admin = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const api = (key: string, body: unknown) =>
  bookstore.app.request(`${origin}/api/hooks`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('the demo mounts the page at /admin behind HTTP Basic with its start-up password', async () => {
  expect(bookstore.adminKey).toMatch(/^adm_[\w-]{24}$/);
  const anonymous = await bookstore.app.request(`${origin}/admin`);
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="bookstore admin", charset="UTF-8"');
  for (const wrong of [admin('admin', 'guess'), admin('alice', bookstore.adminKey), `Bearer ${bookstore.keys.alice}`]) {
    expect((await bookstore.app.request(`${origin}/admin`, { headers: { authorization: wrong } })).status).toBe(401);
  }
  // The admin password is not an API key.
  expect((await bookstore.app.request(`${origin}/api/hooks`, { headers: { authorization: `Bearer ${bookstore.adminKey}` } })).status).toBe(401);
});

test('the operator sees every user\'s subscriptions and acts on them with same-origin forms only', async () => {
  const alice = (await (await api(bookstore.keys.alice, { event: 'book.added', target: 'http://127.0.0.1:9/alice' })).json()) as { id: string };
  const bob = (await (await api(bookstore.keys.bob, { event: 'book.changed', target: 'http://127.0.0.1:9/bob' })).json()) as { id: string };
  const authorization = admin('admin', bookstore.adminKey);
  const page = await bookstore.app.request(`${origin}/admin`, { headers: { authorization } });
  expect(page.status).toBe(200);
  const list = mainOf(await page.text());
  for (const [id, owner] of [[alice.id, 'alice'], [bob.id, 'bob']]) {
    expect(list).toContain(`href="/admin/subscriptions/${id}"`);
    expect(list).toContain(`>${owner}<`);
  }
  const form = { 'content-type': 'application/x-www-form-urlencoded', authorization };
  const forged = await bookstore.app.request(`${origin}/admin/subscriptions/${bob.id}/delete`, { method: 'POST', headers: { ...form, origin: 'http://evil.example' } });
  expect(forged.status).toBe(403);
  expect(await bookstore.hooks.subscriptions.get(bob.id)).toBeDefined();
  const deleted = await bookstore.app.request(`${origin}/admin/subscriptions/${bob.id}/delete`, { method: 'POST', headers: { ...form, origin } });
  expect(deleted.status).toBe(303);
  expect(await bookstore.hooks.subscriptions.get(bob.id)).toBeUndefined();
});
