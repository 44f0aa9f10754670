/**
 * The admin page through `app.request()`: authorization, every page, every POST action (checked
 * through `hooks`), validation, CSRF, escaping, headers, and links under the mount point.
 */
import { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { basicAuthorization, createAdminPage } from '../../src/api/admin/admin-page.js';
import type { Hooks } from '../../src/index.js';
import { eventually } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { adminHarness, basicAuthorize, BASIC, CHALLENGE, mainOf, type AdminHarness } from './admin-support.js';

let h: AdminHarness;
let receiver: Receiver;
beforeAll(async () => {
  h = await adminHarness();
  receiver = await startReceiver();
});
afterAll(async () => {
  await h.close();
  await receiver.close();
});
afterEach(async () => {
  receiver.respond = () => 200;
  await h.hooks.idle();
  for (const s of (await h.hooks.subscriptions.list({ limit: 100 })).items) await h.hooks.subscriptions.delete(s.id);
});

const create = (owner: string, event: 'book.added' | 'book.changed' | 'book.read' | 'user.logged_in' = 'book.added', target = `${receiver.url}/${owner}`) =>
  h.hooks.subscriptions.create({ owner, event, target });
const html = async (response: Response) => mainOf(await response.text());
const location = (response: Response) => response.headers.get('location') ?? '';

describe('authorization', () => {
  test('every page and action needs it: 401 with the challenge, nothing shown, nothing changed', async () => {
    const s = await create('alice');
    for (const path of ['/admin', '/admin/events', `/admin/subscriptions/${s.id}`, '/admin/subscriptions/new', '/admin/nowhere']) {
      const response = await h.get(path, { authorization: 'Basic d3Jvbmc6d3Jvbmc=' });
      expect(response.status, path).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(CHALLENGE);
      const body = await response.text();
      expect(body).not.toContain(s.id);
      expect(body).not.toContain(s.secret);
    }
    const noAuth = await h.host.request('http://admin.test/admin');
    expect(noAuth.status).toBe(401);
    const deleted = await h.post(`/admin/subscriptions/${s.id}/delete`, {}, { authorization: '' });
    expect(deleted.status).toBe(401);
    expect(await h.hooks.subscriptions.get(s.id)).toBeDefined();
  });

  test('without a challenge the refusal is a 403 (a 401 must name a scheme); authorize may be async', async () => {
    const app = createAdminPage(h.hooks, { authorize: async () => false });
    const response = await app.request('/');
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBeNull();
    expect(await response.text()).not.toContain('href="/events"'); // no navigation for strangers
  });

  test('authorize is required: no default, the page is never open by accident', () => {
    expect(() => createAdminPage(h.hooks, {} as never)).toThrow(/authorize/);
    expect(() => createAdminPage(h.hooks, { authorize: basicAuthorize, pageSize: 0 })).toThrow(/pageSize/);
  });

  test('an authorize that throws is a 500 page: no stack trace shown, the error logged without secrets', async () => {
    const logged: unknown[] = [];
    const app = createAdminPage(h.hooks, { authorize: () => { throw new Error('session store down'); }, logger: { error: (obj) => logged.push(obj) } });
    const response = await app.request('/');
    expect(response.status).toBe(500);
    const body = await response.text();
    expect(body).toContain('Something went wrong');
    expect(body).not.toContain('session store down');
    expect(body).not.toMatch(/at .*\.ts:\d+/);
    expect(JSON.stringify(logged)).toContain('session store down');
  });
});

describe('basicAuthorization', () => {
  const header = (text: string) => new Request('http://admin.test/', { headers: { authorization: `Basic ${Buffer.from(text).toString('base64')}` } });

  test('accepts the right user and password only', async () => {
    const { authorize, challenge } = basicAuthorization({ password: 'correct horse battery staple', realm: 'Ops "desk"' });
    expect(challenge).toBe('Basic realm="Ops desk", charset="UTF-8"');
    expect(await authorize(header('admin:correct horse battery staple'))).toBe(true);
    for (const wrong of ['admin:correct horse battery stapl', 'root:correct horse battery staple', 'admin:', 'admin', ':correct horse battery staple']) {
      expect(await authorize(header(wrong)), wrong).toBe(false);
    }
    for (const malformed of [null, '', 'Bearer abc', 'Basic', 'Basic !!!', 'Basic /w==']) {
      expect(await authorize(new Request('http://admin.test/', malformed === null ? {} : { headers: { authorization: malformed } })), String(malformed)).toBe(false);
    }
    const unicode = basicAuthorization({ username: 'jörg', password: 'pässwörd-ünïcode-1234' });
    expect(await unicode.authorize(header('jörg:pässwörd-ünïcode-1234'))).toBe(true);
  });

  test('refuses short passwords and a ":" in the user name', () => {
    expect(() => basicAuthorization({ password: 'hunter2' })).toThrow(/at least 16/);
    expect(() => basicAuthorization({ username: 'a:b', password: 'x'.repeat(20) })).toThrow(/":"/);
  });
});

describe('subscriptions list', () => {
  test('shows every owner\'s subscriptions: id, owner, event, target, status, created', async () => {
    const a = await create('alice');
    const b = await create('bob', 'book.changed');
    const c = await create('carol', 'user.logged_in');
    await h.hooks.subscriptions.update(c.id, { active: false });
    const page = await html(await h.get('/admin'));
    for (const s of [a, b, c]) {
      expect(page).toContain(`href="/admin/subscriptions/${s.id}"`);
      expect(page).toContain(`>${s.owner}<`);
      expect(page).toContain(`>${s.target}<`);
      expect(page).toContain(`<time datetime="${s.createdAt.toISOString()}">`);
    }
    expect(page).toContain('>book.changed<');
    expect(page.match(/badge ok">active</g)).toHaveLength(2);
    expect(page.match(/badge bad">disabled</g)).toHaveLength(1);
    // Newest first.
    expect(page.indexOf(c.id)).toBeLessThan(page.indexOf(a.id));
  });

  test('filters by owner, event and status through the query string, and keeps them in the form', async () => {
    const a = await create('alice');
    const a2 = await create('alice', 'book.read');
    const b = await create('bob');
    await h.hooks.subscriptions.update(a2.id, { active: false });
    const ids = (page: string) => [...page.matchAll(/href="\/admin\/subscriptions\/(sub_[^"]+)"/g)].map((m) => m[1]);

    expect(ids(await html(await h.get('/admin?owner=alice')))).toEqual([a2.id, a.id]);
    expect(ids(await html(await h.get('/admin?event=book.added')))).toEqual([b.id, a.id]);
    expect(ids(await html(await h.get('/admin?active=false')))).toEqual([a2.id]);
    const both = await html(await h.get('/admin?owner=alice&active=true'));
    expect(ids(both)).toEqual([a.id]);
    expect(both).toContain('name="owner" value="alice"');
    expect(both).toMatch(/<option value="true" selected="">active<\/option>/);
    expect(both).toContain('Clear filters');
    expect(await html(await h.get('/admin?owner=nobody'))).toContain('No subscription matches these filters.');
  });

  test('pages with the cursor, keeping the filters', async () => {
    const small = new Hono();
    small.route('/admin', createAdminPage(h.hooks, { authorize: basicAuthorize, pageSize: 2 }));
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await create('paging'));
    await create('other');
    const seen: string[] = [];
    let path: string | undefined = '/admin?owner=paging';
    while (path) {
      const page = mainOf(await (await small.request(`http://admin.test${path}`, { headers: { authorization: BASIC } })).text());
      seen.push(...[...page.matchAll(/href="\/admin\/subscriptions\/(sub_[^"]+)"/g)].map((m) => m[1]!));
      path = /href="([^"]+)" rel="next"/.exec(page)?.[1]?.replaceAll('&amp;', '&');
      if (path) expect(path).toContain('owner=paging');
    }
    expect(seen).toEqual(made.map((s) => s.id).reverse());
  });
});

describe('subscription detail', () => {
  test('shows the fields, the secret masked in a <details>, and deliveries newest first with every attempt', async () => {
    const s = await h.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/detail`, metadata: { team: 'billing' } });
    let calls = 0;
    receiver.respond = () => (calls++ === 0 ? { status: 503, body: 'busy <b>now</b>' } : { status: 200, body: 'ok' });
    await h.hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' });
    await eventually(async () => expect((await h.hooks.deliveries.list(s.id))[0]?.status).toBe('delivered'));
    await h.hooks.model('Book', 'created', { id: 2, title: 'Emma', ownerId: 'alice' });
    await eventually(async () => expect((await h.hooks.deliveries.list(s.id)).map((d) => d.status)).toEqual(['delivered', 'delivered']));
    const [newest, oldest] = await h.hooks.deliveries.list(s.id);

    const page = await html(await h.get(`/admin/subscriptions/${s.id}`));
    expect(page).toContain(`>${s.owner}<`);
    expect(page).toContain(`>${s.target}<`);
    expect(page).toContain('&quot;team&quot;: &quot;billing&quot;');
    // The secret is in the page only inside a closed <details>, after a masked summary.
    expect(page).toMatch(new RegExp(`<details><summary><code>whsec_•+</code>[^]*?</summary><code class="wrap">${s.secret.replace(/[+/=]/g, '\\$&')}</code></details>`));
    expect(page.indexOf(newest!.id)).toBeLessThan(page.indexOf(oldest!.id));
    // The oldest delivery: 503 then 200, each attempt with its number, time, status, latency, outcome, excerpt.
    const oldestBlock = page.slice(page.indexOf(`data-delivery-id="${oldest!.id}"`));
    const [first, second] = oldest!.attemptLog;
    expect(first!.statusCode).toBe(503);
    expect(oldestBlock).toContain(`<time datetime="${first!.startedAt.toISOString()}">`);
    expect(oldestBlock).toMatch(/<td>1<\/td><td><time[^]*?<\/td><td class="mono">503<\/td><td>\d+ ms<\/td><td><span class="badge warn">retry<\/span>/);
    expect(oldestBlock).toMatch(/<td>2<\/td><td><time[^]*?<\/td><td class="mono">200<\/td><td>\d+ ms<\/td><td><span class="badge ok">delivered<\/span>/);
    expect(oldestBlock).toContain('<pre>busy &lt;b&gt;now&lt;/b&gt;</pre>');
    expect(second!.outcome).toBe('delivered');
    expect(page).toContain('2 attempts');
  });

  test('an unknown subscription is a 404 page', async () => {
    const response = await h.get('/admin/subscriptions/sub_nope');
    expect(response.status).toBe(404);
    expect(await html(response)).toContain('There is no subscription sub_nope');
  });
});

describe('actions (POST forms)', () => {
  test('create: the event is a <select> of the declared events; the new subscription is stored', async () => {
    const form = await html(await h.get('/admin/subscriptions/new'));
    expect(form).toContain('<select id="event" name="event" required="">');
    for (const name of ['book.added', 'book.changed', 'book.read', 'user.logged_in']) expect(form).toContain(`<option value="${name}">`);
    expect(form).toContain('name="owner"');
    expect(form).toContain('name="target"');

    const response = await h.post('/admin/subscriptions', { owner: 'dave', event: 'book.read', target: `${receiver.url}/dave`, metadata: '{"plan":"pro"}' });
    expect(response.status).toBe(303);
    const [stored] = (await h.hooks.subscriptions.list({ owner: 'dave' })).items;
    expect(stored).toMatchObject({ owner: 'dave', event: 'book.read', target: `${receiver.url}/dave`, active: true, metadata: { plan: 'pro' } });
    expect(location(response)).toBe(`/admin/subscriptions/${stored!.id}?done=created`);
    expect(await html(await h.get(location(response)))).toContain('Subscription created.');
  });

  test('edit: target, event, status and metadata', async () => {
    const s = await create('erin');
    const response = await h.post(`/admin/subscriptions/${s.id}/edit`, { event: 'book.changed', target: `${receiver.url}/new`, active: 'false', metadata: '' });
    expect(response.status).toBe(303);
    expect(location(response)).toBe(`/admin/subscriptions/${s.id}?done=updated`);
    expect(await h.hooks.subscriptions.get(s.id)).toMatchObject({ event: 'book.changed', target: `${receiver.url}/new`, active: false, metadata: null });
    await h.post(`/admin/subscriptions/${s.id}/edit`, { event: 'book.changed', target: `${receiver.url}/new`, active: 'true', metadata: '{"a":1}' });
    expect(await h.hooks.subscriptions.get(s.id)).toMatchObject({ active: true, metadata: { a: 1 } });
  });

  test('delete: a confirm step (GET shows, nothing deleted), then the POST deletes', async () => {
    const s = await create('frank');
    const confirm = await html(await h.get(`/admin/subscriptions/${s.id}/delete`));
    expect(confirm).toContain(`<form method="post" action="/admin/subscriptions/${s.id}/delete"`);
    expect(confirm).toContain('Delete subscription');
    expect(await h.hooks.subscriptions.get(s.id)).toBeDefined();
    const response = await h.post(`/admin/subscriptions/${s.id}/delete`);
    expect(response.status).toBe(303);
    expect(location(response)).toBe('/admin?done=deleted');
    expect(await h.hooks.subscriptions.get(s.id)).toBeUndefined();
    expect(await html(await h.get(location(response)))).toContain('Subscription deleted');
    expect((await h.post(`/admin/subscriptions/${s.id}/delete`)).status).toBe(404);
  });

  test('rotate secret', async () => {
    const s = await create('gina');
    const response = await h.post(`/admin/subscriptions/${s.id}/rotate-secret`);
    expect(response.status).toBe(303);
    const after = await h.hooks.subscriptions.get(s.id);
    expect(after!.secret).toMatch(/^whsec_/);
    expect(after!.secret).not.toBe(s.secret);
    expect(await html(await h.get(location(response)))).toContain(after!.secret);
  });

  test('send test: the receiver gets a hook.test, and the delivery shows on the page', async () => {
    const s = await create('hank');
    const before = receiver.received.length;
    const response = await h.post(`/admin/subscriptions/${s.id}/test`);
    expect(response.status).toBe(303);
    expect(location(response)).toBe(`/admin/subscriptions/${s.id}?done=tested`);
    const [received] = (await receiver.waitFor(before + 1)).slice(before);
    expect(received!.json.hook).toEqual({ id: s.id, event: 'hook.test', target: s.target });
    await eventually(async () => expect((await h.hooks.deliveries.list(s.id))[0]?.status).toBe('delivered'));
    const page = await html(await h.get(location(response)));
    expect(page).toContain('Test delivery queued');
    expect(page).toMatch(/data-status="delivered"><div class="spread"><div><span class="badge ok">delivered<\/span> <span class="mono">hook.test<\/span>/);
  });

  test('retry a delivery: attempted again with the same webhook-id', async () => {
    const s = await create('ivy');
    const { deliveryId } = await h.hooks.sendTest(s.id);
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.status).toBe('delivered'));
    const page = await html(await h.get(`/admin/subscriptions/${s.id}`));
    expect(page).toContain(`action="/admin/subscriptions/${s.id}/deliveries/${deliveryId}/retry"`);
    const response = await h.post(`/admin/subscriptions/${s.id}/deliveries/${deliveryId}/retry`);
    expect(response.status).toBe(303);
    expect(location(response)).toBe(`/admin/subscriptions/${s.id}?done=retried`);
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.attemptLog).toHaveLength(2));
    const ids = receiver.received.filter((r) => r.headers['webhook-id'] === deliveryId);
    expect(ids).toHaveLength(2);
    // A delivery of another subscription is not found through this one.
    const other = await create('ivy2');
    expect((await h.post(`/admin/subscriptions/${other.id}/deliveries/${deliveryId}/retry`)).status).toBe(404);
  });

  test('recover failed deliveries since a date', async () => {
    const s = await create('jack');
    receiver.respond = () => 500;
    const { deliveryId } = await h.hooks.sendTest(s.id);
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.status).toBe('failed'));
    receiver.respond = () => 200;
    const since = new Date(Date.now() - 3_600_000).toISOString().slice(0, 16);
    const response = await h.post(`/admin/subscriptions/${s.id}/recover`, { since });
    expect(response.status).toBe(303);
    expect(location(response)).toBe(`/admin/subscriptions/${s.id}?done=recovered&count=1`);
    expect(await html(await h.get(location(response)))).toContain('1 failed delivery re-queued.');
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.status).toBe('delivered'));
  });
});

describe('validation errors re-render the form: 400, values kept, error beside the field, nothing stored', () => {
  const cases: Array<[string, Record<string, string>, string, RegExp]> = [
    ['unknown event', { owner: 'kim', event: 'book.burned', target: 'https://example.com/hooks' }, 'event', /Unexpected event &quot;book.burned&quot;/],
    ['bad target', { owner: 'kim', event: 'book.added', target: 'not a url' }, 'target', /target/i],
    ['ftp target', { owner: 'kim', event: 'book.added', target: 'ftp://example.com/x' }, 'target', /http/],
    ['empty owner', { owner: '  ', event: 'book.added', target: 'https://example.com/hooks' }, 'owner', /owner/],
    ['metadata not JSON', { owner: 'kim', event: 'book.added', target: 'https://example.com/hooks', metadata: '{nope' }, 'metadata', /JSON/],
    ['metadata an array', { owner: 'kim', event: 'book.added', target: 'https://example.com/hooks', metadata: '[1]' }, 'metadata', /object/],
  ];
  test.each(cases)('create: %s', async (_name, fields, field, message) => {
    const response = await h.post('/admin/subscriptions', fields);
    expect(response.status).toBe(400);
    const page = await html(response);
    expect(page).toMatch(new RegExp(`<span class="error" id="${field}-error">[^<]*${message.source}`));
    expect(page).toContain(`aria-describedby="${field}-error"`);
    expect(page).toContain(`value="${fields.target!.replaceAll('&', '&amp;')}"`);
    if (fields.owner!.trim()) expect(page).toContain(`value="${fields.owner}"`);
    if (fields.metadata) expect(page).toContain(`>${fields.metadata}</textarea>`);
    expect(page).not.toMatch(/at .*\.(ts|js):\d+/);
    expect((await h.hooks.subscriptions.list({ owner: 'kim' })).items).toHaveLength(0);
  });

  test('a private target when private targets are refused', async () => {
    const strict = await adminHarness({}, { allowPrivateTargets: false });
    try {
      const response = await strict.post('/admin/subscriptions', { owner: 'kim', event: 'book.added', target: 'http://127.0.0.1:9/x' });
      expect(response.status).toBe(400);
      expect(await html(response)).toMatch(/<span class="error" id="target-error">[^<]+<\/span>/);
      expect((await strict.hooks.subscriptions.list()).items).toHaveLength(0);
    } finally {
      await strict.close();
    }
  });

  test('edit: the detail page comes back with the edit form as entered, the subscription unchanged', async () => {
    const s = await create('lou');
    const response = await h.post(`/admin/subscriptions/${s.id}/edit`, { event: 'book.burned', target: 'https://example.com/changed', active: 'false', metadata: '' });
    expect(response.status).toBe(400);
    const page = await html(response);
    expect(page).toContain('<span class="error" id="event-error">Unexpected event &quot;book.burned&quot;</span>');
    expect(page).toContain('value="https://example.com/changed"');
    expect(page).toMatch(/<option value="false" selected="">disabled<\/option>/);
    expect(await h.hooks.subscriptions.get(s.id)).toMatchObject({ event: s.event, target: s.target, active: true });
  });

  test('recover: a bad date comes back beside the date field', async () => {
    const s = await create('max');
    const response = await h.post(`/admin/subscriptions/${s.id}/recover`, { since: 'yesterday' });
    expect(response.status).toBe(400);
    const page = await html(response);
    expect(page).toContain('value="yesterday"');
    expect(page).toMatch(/<span class="error">Give a date and time/);
  });

  test('forms must be form-encoded (415), readable (400) and small (413); multipart is fine', async () => {
    const json = await h.host.request('http://admin.test/admin/subscriptions', {
      method: 'POST',
      headers: { authorization: BASIC, origin: 'http://admin.test', 'content-type': 'application/json' },
      body: JSON.stringify({ owner: 'x', event: 'book.added', target: 'https://example.com' }),
    });
    expect(json.status).toBe(415);
    const big = await h.post('/admin/subscriptions', { owner: 'x', event: 'book.added', target: 'https://example.com', metadata: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    const broken = await h.host.request('http://admin.test/admin/subscriptions', {
      method: 'POST',
      headers: { authorization: BASIC, origin: 'http://admin.test', 'content-type': 'multipart/form-data; boundary=x' },
      body: '--y\r\nnot a part',
    });
    expect(broken.status).toBe(400);
    expect(await broken.text()).toContain('Malformed form');
    expect((await h.hooks.subscriptions.list()).items).toHaveLength(0);
    // multipart/form-data is a form encoding too.
    const multipart = new FormData();
    for (const [name, value] of Object.entries({ owner: 'multi', event: 'book.added', target: 'https://example.com/m' })) multipart.append(name, value);
    const created = await h.host.request('http://admin.test/admin/subscriptions', { method: 'POST', headers: { authorization: BASIC, origin: 'http://admin.test' }, body: multipart });
    expect(created.status).toBe(303);
    expect((await h.hooks.subscriptions.list({ owner: 'multi' })).items).toHaveLength(1);
  });
});

describe('CSRF: a POST must come from the page\'s own host', () => {
  test.each([
    ['another origin', { origin: 'http://evil.example' }],
    ['the same host name on another port', { origin: 'http://admin.test:8080' }],
    ['Origin null', { origin: 'null' }],
    ['no Origin, a Referer from elsewhere', { origin: '', referer: 'http://evil.example/page' }],
    ['neither Origin nor Referer', { origin: '' }],
  ])('refused: %s (403, nothing changed)', async (_name, headers) => {
    const s = await create('nina');
    const response = await h.post(`/admin/subscriptions/${s.id}/delete`, {}, headers);
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('not sent from the admin page itself');
    expect(await h.hooks.subscriptions.get(s.id)).toBeDefined();
    const created = await h.post('/admin/subscriptions', { owner: 'nina', event: 'book.added', target: 'https://example.com/x' }, headers);
    expect(created.status).toBe(403);
    expect((await h.hooks.subscriptions.list({ owner: 'nina' })).items).toHaveLength(1);
  });

  test('accepted: same-host Referer without Origin; an origin listed in trustedOrigins', async () => {
    const s = await create('olga');
    expect((await h.post(`/admin/subscriptions/${s.id}/rotate-secret`, {}, { origin: '', referer: `http://admin.test/admin/subscriptions/${s.id}` })).status).toBe(303);
    const proxied = new Hono();
    proxied.route('/admin', createAdminPage(h.hooks, { authorize: basicAuthorize, trustedOrigins: ['https://ops.example.com'] }));
    const response = await proxied.request(`http://internal:3000/admin/subscriptions/${s.id}/delete`, {
      method: 'POST',
      headers: { authorization: BASIC, origin: 'https://ops.example.com', 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(response.status).toBe(303);
    expect(await h.hooks.subscriptions.get(s.id)).toBeUndefined();
  });
});

describe('escaping and headers', () => {
  const evil = '<script>alert(1)</script>';

  test('a <script> in an owner, target, metadata or response excerpt comes out escaped on every page', async () => {
    receiver.respond = () => ({ status: 200, body: evil });
    const s = await h.hooks.subscriptions.create({ owner: evil, event: 'book.added', target: `${receiver.url}/?q=${evil}`, metadata: { note: evil, [evil]: 1 } });
    await h.hooks.model('Book', 'created', { id: 3, ownerId: evil });
    await eventually(async () => expect((await h.hooks.deliveries.list(s.id))[0]?.status).toBe('delivered'));
    const pages = [
      await h.get('/admin'),
      await h.get(`/admin?owner=${encodeURIComponent(evil)}`),
      await h.get(`/admin/subscriptions/${s.id}`),
      await h.get(`/admin/subscriptions/${s.id}/delete`),
      await h.post('/admin/subscriptions', { owner: evil, event: evil, target: evil, metadata: evil }),
      await h.post(`/admin/subscriptions/${s.id}/edit`, { event: evil, target: evil, active: 'true', metadata: '' }),
    ];
    for (const response of pages) {
      const body = await response.text();
      expect(body).not.toMatch(/<script/i);
      expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    }
  });

  test('strict headers: a CSP allowing only the page\'s own stylesheet, no framing, no caching', async () => {
    for (const response of [await h.get('/admin'), await h.get('/admin/nope'), await h.host.request('http://admin.test/admin')]) {
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toMatch(/default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'/);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("form-action 'self'");
      expect(csp).not.toContain('script-src');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('referrer-policy')).toBe('same-origin');
    }
    // The hash matches the inlined stylesheet exactly.
    const page = await (await h.get('/admin')).text();
    const css = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!;
    const digest = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(css))).toString('base64');
    expect((await h.get('/admin')).headers.get('content-security-policy')).toContain(`'sha256-${digest}'`);
  });

  test('no external assets and no script at all', async () => {
    const page = await (await h.get('/admin')).text();
    expect(page).toMatch(/^<!doctype html>/);
    // The one <link> is an empty inline icon, so the browser does not ask for /favicon.ico.
    const icon = '<link rel="icon" href="data:,"/>';
    expect(page).toContain(icon);
    expect(page.replace(icon, '')).not.toMatch(/<(script|link|img|iframe)\b/i);
    expect(page).not.toMatch(/(src|href)="(https?:)?\/\//);
  });
});

describe('links follow the mount point', () => {
  const hrefs = (page: string) => [...page.matchAll(/(?:href|action)="([^"]+)"/g)].map((m) => m[1]!).filter((href) => !href.startsWith('data:'));
  const check = async (app: { request(url: string, init?: RequestInit): Response | Promise<Response> }, url: string, prefix: string, hooks: Hooks) => {
    const s = await hooks.subscriptions.create({ owner: 'pat', event: 'book.added', target: 'https://example.com/x' });
    const list = await (await app.request(url, { headers: { authorization: BASIC } })).text();
    expect(hrefs(list)).toContain(`${prefix}/subscriptions/${s.id}`);
    for (const href of hrefs(list)) expect(href.startsWith(prefix || '/')).toBe(true);
    const detail = await (await app.request(`${url.replace(/\/$/, '')}/subscriptions/${s.id}`, { headers: { authorization: BASIC } })).text();
    expect(hrefs(detail)).toContain(`${prefix}/subscriptions/${s.id}/edit`);
    expect(hrefs(detail)).toContain(prefix || '/');
    await hooks.subscriptions.delete(s.id);
  };

  test('mounted with app.route(\'/admin\', page), under a parameterised prefix, at the root, and with basePath', async () => {
    await check(h.host, 'http://admin.test/admin', '/admin', h.hooks);
    const tenant = new Hono();
    tenant.route('/t/:tenant/ops', createAdminPage(h.hooks, { authorize: basicAuthorize }));
    await check(tenant, 'http://admin.test/t/acme/ops', '/t/acme/ops', h.hooks);
    await check(createAdminPage(h.hooks, { authorize: basicAuthorize }), 'http://admin.test/', '', h.hooks);
    await check(createAdminPage(h.hooks, { authorize: basicAuthorize, basePath: '/ops/admin' }), 'http://admin.test/ops/admin', '/ops/admin', h.hooks);
  });

  test('a trailing slash redirects to the page, never to another host', async () => {
    const slash = await h.get('/admin/');
    expect(slash.status).toBe(308);
    expect(location(slash)).toBe('/admin');
    const root = createAdminPage(h.hooks, { authorize: basicAuthorize });
    const sneaky = await root.request('http://admin.test//evil.example/', { headers: { authorization: BASIC } });
    expect(sneaky.status).toBe(404);
    expect(sneaky.headers.get('location')).toBeNull();
  });
});

test('the event catalog: name, Model.action, + for every owner, raw', async () => {
  const page = await html(await h.get('/admin/events'));
  expect(page).toMatch(/<td class="mono">book.added<\/td><td><span class="mono">Book.created<\/span><\/td><td>the owner&#39;s subscriptions<\/td>/);
  expect(page).toMatch(/<td class="mono">book.changed<\/td><td><span class="mono">Book.updated\+<\/span><\/td><td><span class="badge warn">\+<\/span> every owner&#39;s subscriptions<\/td>/);
  expect(page).toMatch(/<td class="mono">book.read<\/td><td><span class="mono">Book.read<\/span>/);
  expect(page).toMatch(/<td class="mono">user.logged_in<\/td><td><span class="badge">raw<\/span>/);
  expect(page).toContain('href="/admin?event=user.logged_in"');
});
