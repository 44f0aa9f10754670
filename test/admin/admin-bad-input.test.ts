/**
 * The admin page under input it cannot use: form posts without a Content-Length (chunked), text no
 * store can keep (NUL, unpaired surrogates) in its URLs and forms, and a retry of a delivery whose
 * attempt is still running. Each gets a clear 4xx page, never a 500 or a silent redirect.
 */
import { createServer, request as httpRequest, type ServerResponse } from 'node:http';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { toExpress } from '../../src/adapters/http/express-adapter.js';
import { toNodeHandler } from '../../src/adapters/http/node-adapter.js';
import { ENGINES, TestDatabase } from '../support/database.js';
import { eventually } from '../support/hooks.js';
import { closeServer, listen, startReceiver, type Receiver } from '../support/receiver.js';
import { adminHarness, BASIC, mainOf, type AdminHarness } from './admin-support.js';

/** A form POST over real HTTP whose body is streamed chunked (no Content-Length), as some proxies and clients send it. */
function chunkedPost(url: string, chunks: readonly string[]): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, {
      method: 'POST',
      headers: { authorization: BASIC, origin: new URL(url).origin, 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' },
    }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, location: response.headers.location, body }));
    });
    request.on('error', reject);
    for (const chunk of chunks) request.write(chunk);
    request.end();
  });
}

describe('a chunked form post (no Content-Length) is read like any other', () => {
  let h: AdminHarness;
  const servers: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    h = await adminHarness();
  });
  afterAll(async () => {
    for (const close of servers) await close();
    await h.close();
  });

  const mounts: Array<[string, () => Promise<string>]> = [
    ['node:http', async () => {
      const server = createServer(toNodeHandler(h.host));
      servers.push(() => closeServer(server));
      return listen(server);
    }],
    ['express', async () => {
      const app = express();
      app.use(toExpress(h.host));
      const server = createServer(app);
      servers.push(() => closeServer(server));
      return listen(server);
    }],
  ];

  test.each(mounts)('%s: create (303, stored), a rejected form (400), and over the limit (413)', async (name, mount) => {
    const origin = await mount();
    const owner = `chunked-${name.replace(/\W/g, '')}`;
    const created = await chunkedPost(`${origin}/admin/subscriptions`, [`owner=${owner}&event=book.added&`, 'target=https%3A%2F%2Fexample.com%2Fchunked']);
    expect(created.status, created.body.slice(-300)).toBe(303);
    const [stored] = (await h.hooks.subscriptions.list({ owner })).items;
    expect(stored).toMatchObject({ event: 'book.added', target: 'https://example.com/chunked' });
    expect(created.location).toBe(`/admin/subscriptions/${stored!.id}?done=created`);

    const rejected = await chunkedPost(`${origin}/admin/subscriptions`, [`owner=${owner}&event=book.burned&`, 'target=https%3A%2F%2Fexample.com%2Fx']);
    expect(rejected.status).toBe(400);
    expect(mainOf(rejected.body)).toContain('Unexpected event &quot;book.burned&quot;');

    const tooLarge = await chunkedPost(`${origin}/admin/subscriptions`, [`owner=${owner}&event=book.added&metadata=`, ...Array.from({ length: 10 }, () => 'x'.repeat(8 * 1024))]);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toContain('Form too large');

    const recovered = await chunkedPost(`${origin}/admin/subscriptions/${stored!.id}/recover`, ['since=2020-01-01T00', ':00']);
    expect(recovered.status).toBe(303);
    expect((await h.hooks.subscriptions.list({ owner })).items).toHaveLength(1);
  });
});

test('mounted with app.route(), an unknown path under the mount is the page\'s own 404, not the host\'s plain text', async () => {
  const h = await adminHarness();
  try {
    for (const path of ['/admin/nowhere', '/admin/subscriptions/x/y/z']) {
      for (const response of [await h.get(path), await h.post(path)]) {
        expect(response.status, path).toBe(404);
        expect(response.headers.get('content-type')).toMatch(/^text\/html/);
        expect(response.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
        expect(mainOf(await response.text())).toContain(`There is no admin page at ${path}.`);
      }
    }
    // A trailing slash still redirects to the page without it.
    const slash = await h.get('/admin/events/');
    expect(slash.status).toBe(308);
    expect(slash.headers.get('location')).toBe('/admin/events');
  } finally {
    await h.close();
  }
});

describe.each(ENGINES)('on %s', (engine) => {
  let db: TestDatabase;
  let h: AdminHarness;
  let receiver: Receiver;
  const held: ServerResponse[] = [];
  beforeAll(async () => {
    db = new TestDatabase(engine);
    await db.init();
    receiver = await startReceiver();
    // Attempts may run long: the in-flight test holds one open on purpose.
    h = await adminHarness({}, { store: db.dialect(), delivery: { timeout: '60s' } });
  });
  afterEach(() => {
    receiver.respond = () => 200;
    for (const response of held.splice(0)) response.destroy();
  });
  afterAll(async () => {
    await receiver.close();
    await h.close();
    await db.close();
  });

  test('a NUL in a page\'s path or query: a 400 page that says so, not a 500', async () => {
    const s = await h.hooks.subscriptions.create({ owner: 'nul', event: 'book.added', target: `${receiver.url}/nul` });
    for (const path of ['/admin/subscriptions/%00', '/admin/subscriptions/sub%00/delete', `/admin/subscriptions/${s.id}?cursor=%00`, '/admin?owner=%00', '/admin?event=book%00', '/admin?cursor=%00']) {
      const response = await h.get(path);
      expect(response.status, path).toBe(400);
      expect(mainOf(await response.text()), path).toContain('NUL character (U+0000)');
    }
    for (const path of ['/admin/subscriptions/%00/rotate-secret', '/admin/subscriptions/%00/test', '/admin/subscriptions/%00/delete', `/admin/subscriptions/${s.id}/deliveries/%00/retry`]) {
      expect((await h.post(path)).status, path).toBe(400);
    }
    expect(await h.hooks.subscriptions.get(s.id)).toEqual(s);
  });

  test.each([
    ['owner', { owner: 'kim\u0000', event: 'book.added', target: 'https://example.com/hooks' }, /`owner` contains a NUL character/],
    ['target', { owner: 'kim', event: 'book.added', target: 'https://example.com/\u0000' }, /`target` contains a NUL character/],
    ['owner', { owner: 'k'.repeat(256), event: 'book.added', target: 'https://example.com/hooks' }, /the limit is 255/],
  ])('create with a bad %s: the form comes back (400) with the error beside the field, nothing stored', async (field, fields, message) => {
    const before = (await h.hooks.subscriptions.list({ limit: 100 })).items.length;
    const response = await h.post('/admin/subscriptions', fields);
    expect(response.status).toBe(400);
    const page = mainOf(await response.text());
    expect(page).toMatch(message);
    expect(page).toMatch(new RegExp(`name="${field}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*name="${field}"`));
    expect((await h.hooks.subscriptions.list({ limit: 100 })).items).toHaveLength(before);
  });

  test('retry of a delivery in flight: a 409 page that says why, with the log; nothing queued', async () => {
    receiver.respond = (_request, _index, response) => {
      held.push(response);
      return 'handled';
    };
    const s = await h.hooks.subscriptions.create({ owner: 'busy', event: 'book.added', target: `${receiver.url}/busy` });
    const before = receiver.received.length;
    const { deliveryId } = await h.hooks.sendTest(s.id);
    await receiver.waitFor(before + 1, 15_000);
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.status).toBe('in_flight'), 15_000);

    const response = await h.post(`/admin/subscriptions/${s.id}/deliveries/${deliveryId}/retry`);
    expect(response.status).toBe(409);
    expect(response.headers.get('location')).toBeNull();
    const page = mainOf(await response.text());
    expect(page).toMatch(new RegExp(`<p class="card problem" role="alert">Delivery ${deliveryId} is in flight \\(an attempt of it is queued or running right now\\), so it was not queued again`));
    expect(page).not.toContain('Delivery queued for another attempt');
    expect(page).toContain(`data-delivery-id="${deliveryId}" data-status="in_flight"`);
    expect(await h.hooks.deliveries.get(deliveryId)).toMatchObject({ status: 'in_flight', attempts: 0 });

    held.shift()!.writeHead(200).end();
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.status).toBe('delivered'), 15_000);
    const retried = await h.post(`/admin/subscriptions/${s.id}/deliveries/${deliveryId}/retry`);
    expect(retried.status).toBe(303);
    expect(retried.headers.get('location')).toBe(`/admin/subscriptions/${s.id}?done=retried`);
  });
});
