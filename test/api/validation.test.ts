import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { apiHarness, TARGET, type ApiHarness } from './api-support.js';

// Every 4xx of CONTRACT §2: the right status and code, the one error shape, and nothing stored.
let h: ApiHarness;
let mine: { id: string };
let bobs: { id: string };
let bobsBefore: unknown;
beforeAll(async () => {
  h = await apiHarness();
  mine = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET } })).json()) as { id: string };
  bobs = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET }, as: 'bob' })).json()) as { id: string };
  bobsBefore = await h.hooks.subscriptions.get(bobs.id);
});
afterAll(() => h.close());

async function expectError(response: Response, status: number, code: string, message?: string | RegExp) {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
  expect(text).not.toMatch(/\n\s+at |\.ts:\d+/);
}

const longTarget = `https://hooks.example.com/${'a'.repeat(2100)}`;
const bodies: Array<[string, unknown, string, RegExp?]> = [
  ['an empty object', {}, 'invalid_field', /`event` is required/],
  ['no target', { event: 'book.added' }, 'invalid_field', /`target` is required/],
  ['no event', { target: TARGET }, 'invalid_field', /`event` is required/],
  ['an event of the wrong type', { event: 42, target: TARGET }, 'invalid_field', /`event` must be a string/],
  ['an event that is null', { event: null, target: TARGET }, 'invalid_field'],
  ['an empty event', { event: '', target: TARGET }, 'invalid_field'],
  ['a target of the wrong type', { event: 'book.added', target: ['x'] }, 'invalid_field', /`target` must be a string/],
  ['a target_url of the wrong type', { event: 'book.added', target_url: 7 }, 'invalid_field', /`target_url` must be a string/],
  ['active not a boolean', { event: 'book.added', target: TARGET, active: 'yes' }, 'invalid_field', /`active` must be true or false/],
  ['an unknown event', { event: 'book.burned', target: TARGET }, 'unknown_event', /^Unexpected event "book\.burned"$/],
  ['the test event', { event: 'hook.test', target: TARGET }, 'unknown_event', /^Unexpected event "hook\.test"$/],
  ['a relative target', { event: 'book.added', target: '/hooks/receive' }, 'invalid_target', /not an absolute URL/],
  ['an ftp target', { event: 'book.added', target: 'ftp://hooks.example.com/x' }, 'invalid_target', /scheme "ftp:"/],
  ['a javascript: target', { event: 'book.added', target: 'javascript:alert(1)' }, 'invalid_target', /scheme "javascript:"/],
  ['a target_url that is relative', { event: 'book.added', target_url: 'hooks' }, 'invalid_target'],
  ['a target over 2048 characters', { event: 'book.added', target: longTarget }, 'invalid_target', /limit is 2048/],
  ['an unresolvable target', { event: 'book.added', target: 'https://nowhere.invalid/x' }, 'target_unresolvable'],
];

describe('POST /hooks rejects bad bodies with 400 and stores nothing', () => {
  test.each(bodies)('%s', async (_name, body, code, message) => {
    const before = h.snapshot();
    await expectError(await h.call('POST', '/hooks', { body }), 400, code, message);
    expect(h.snapshot()).toBe(before);
  });
});

describe('PATCH /hooks/:id rejects bad bodies with 400 and changes nothing', () => {
  // A patch may leave any field out, so only the bodies that are wrong in themselves apply.
  const patches = bodies.filter(([name]) => !['an empty object', 'no target', 'no event'].includes(name));
  test.each(patches.concat([['a null target', { target: null }, 'invalid_field'], ['a null active', { active: null }, 'invalid_field']]))('%s', async (_name, body, code) => {
    const before = h.snapshot();
    await expectError(await h.call('PATCH', `/hooks/${mine.id}`, { body }), 400, code);
    expect(h.snapshot()).toBe(before);
  });
});

describe('bodies that are not a JSON object', () => {
  const raws: Array<[string, string, number, string, Record<string, string>?]> = [
    ['invalid JSON → 400', '{"event": "book.added",', 400, 'invalid_json'],
    ['an empty body → 400', '', 400, 'invalid_json'],
    ['a JSON array → 400', '[{"event":"book.added"}]', 400, 'invalid_json'],
    ['JSON null → 400', 'null', 400, 'invalid_json'],
    ['a JSON string → 400', '"book.added"', 400, 'invalid_json'],
    ['a form body → 415', 'event=book.added&target=x', 415, 'unsupported_media_type', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['text/plain → 415', '{"event":"book.added"}', 415, 'unsupported_media_type', { 'content-type': 'text/plain' }],
  ];
  test.each(raws)('%s', async (_name, raw, status, code, headers = { 'content-type': 'application/json' }) => {
    const before = h.snapshot();
    await expectError(await h.call('POST', '/hooks', { raw, headers }), status, code);
    await expectError(await h.call('PATCH', `/hooks/${mine.id}`, { raw, headers }), status, code);
    expect(h.snapshot()).toBe(before);
  });
});

describe('413 for bodies over the limit', () => {
  const tenMegabytes = JSON.stringify({ event: 'book.added', target: TARGET, padding: 'x'.repeat(10 * 1024 * 1024) });
  test('a declared 10 MB body', async () => {
    const before = h.snapshot();
    await expectError(await h.call('POST', '/hooks', { raw: tenMegabytes, headers: { 'content-type': 'application/json', 'content-length': String(tenMegabytes.length) } }), 413, 'payload_too_large');
    await expectError(await h.call('PATCH', `/hooks/${mine.id}`, { raw: tenMegabytes, headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
    expect(h.snapshot()).toBe(before);
  });

  test('a streamed body with no length, read only up to the limit', async () => {
    let pulled = 0;
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"event":"book.added","target":"' + TARGET + '","pad":"'));
      },
      pull(controller) {
        if (++pulled > 160) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const before = h.snapshot();
    await expectError(await h.call('POST', '/hooks', { raw: stream, headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
    expect(pulled).toBeLessThan(5);
    expect(h.snapshot()).toBe(before);
  });

  test('maxBodyBytes sets the limit', async () => {
    const small = await apiHarness({ maxBodyBytes: 100 });
    try {
      const body = { event: 'book.added', target: TARGET, note: 'x'.repeat(100) };
      await expectError(await small.call('POST', '/hooks', { body }), 413, 'payload_too_large', /limit of 100 bytes/);
      expect((await small.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET } })).status).toBe(201);
    } finally {
      await small.close();
    }
  });
});

describe('404 for unknown ids and for other owners', () => {
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/hooks/:id'],
    ['PATCH', '/hooks/:id', { active: false, target: 'https://other.example.com/stolen' }],
    ['DELETE', '/hooks/:id'],
    ['POST', '/hooks/:id/rotate-secret'],
    ['POST', '/hooks/:id/test'],
    ['GET', '/hooks/:id/deliveries'],
  ];
  test.each(routes)('%s %s', async (method, path, body) => {
    const before = h.snapshot();
    for (const id of ['sub_doesnotexist', bobs.id]) {
      await expectError(await h.call(method, path.replace(':id', id), body === undefined ? {} : { body }), 404, 'not_found', new RegExp(`No subscription ${id}`));
    }
    expect(h.snapshot()).toBe(before);
    expect(await h.hooks.subscriptions.get(bobs.id)).toEqual(bobsBefore);
  });

  test("retrying another owner's delivery, or one of another subscription, is 404", async () => {
    const { deliveryId } = await h.hooks.sendTest(bobs.id);
    const before = h.snapshot();
    await expectError(await h.call('POST', `/hooks/${bobs.id}/deliveries/${deliveryId}/retry`), 404, 'not_found');
    await expectError(await h.call('POST', `/hooks/${mine.id}/deliveries/${deliveryId}/retry`), 404, 'not_found');
    await expectError(await h.call('POST', `/hooks/${mine.id}/deliveries/dlv_nope/retry`), 404, 'not_found');
    expect(h.snapshot()).toBe(before);
  });

  test('unknown routes and events', async () => {
    await expectError(await h.call('GET', '/nothing-here'), 404, 'not_found', /No route GET \/nothing-here/);
    await expectError(await h.call('PUT', `/hooks/${mine.id}`, { body: {} }), 404, 'not_found');
    await expectError(await h.call('GET', '/events/book.burned/sample'), 404, 'not_found', /No event "book.burned"/);
  });
});

describe('401 without a valid key, on every route', () => {
  const every: Array<[string, string]> = [
    ['POST', '/hooks'], ['GET', '/hooks'], ['GET', '/hooks/x'], ['PATCH', '/hooks/x'], ['DELETE', '/hooks/x'],
    ['POST', '/hooks/x/rotate-secret'], ['POST', '/hooks/x/test'], ['GET', '/hooks/x/deliveries'],
    ['POST', '/hooks/x/deliveries/y/retry'], ['GET', '/events'], ['GET', '/events/book.added/sample'], ['GET', '/openapi.json'],
  ];
  test.each(every)('%s %s', async (method, path) => {
    const before = h.snapshot();
    const real = path.replace('/x', `/${mine.id}`);
    const body = method === 'POST' || method === 'PATCH' ? { body: { event: 'book.added', target: TARGET } } : {};
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: 'key-alice' }, { authorization: 'Basic a2V5LWFsaWNlOg==' }]) {
      const response = await h.call(method, real, { ...body, headers, as: null });
      await expectError(response, 401, 'unauthorized');
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(h.snapshot()).toBe(before);
  });
});

describe('query parameters', () => {
  test.each(['0', '101', 'abc', '1.5', '-1', ''])('?limit=%s is 400', async (limit) => {
    await expectError(await h.call('GET', `/hooks?limit=${limit}`), 400, 'invalid_field', /`limit` must be an integer/);
    await expectError(await h.call('GET', `/hooks/${mine.id}/deliveries?limit=${limit}`), 400, 'invalid_field');
  });
});

describe('targets on refused networks, when private targets are not allowed', () => {
  test.each(['http://127.0.0.1:8080/in', 'http://localhost/in', 'http://[::1]/in', 'http://10.0.0.7/in', 'https://intranet.example.com/in', 'http://169.254.169.254/latest/meta-data'])('%s', async (target) => {
    const strict = await apiHarness({}, { hooks: { allowPrivateTargets: false } });
    try {
      const before = strict.snapshot();
      await expectError(await strict.call('POST', '/hooks', { body: { event: 'book.added', target } }), 400, 'target_refused', /refused/);
      expect(strict.snapshot()).toBe(before);
      expect((await strict.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET } })).status).toBe(201);
    } finally {
      await strict.close();
    }
  });
});

describe('unexpected errors', () => {
  test('are a bare 500, logged, with no stack trace', async () => {
    const logged: unknown[] = [];
    const broken = await apiHarness({ logger: { error: (obj, msg) => logged.push([msg, obj]) } });
    try {
      broken.hooks.subscriptions.list = async () => {
        throw new Error('database on fire at /srv/app/secret.ts:12');
      };
      await expectError(await broken.call('GET', '/hooks'), 500, 'internal', /^Internal error$/);
      expect(JSON.stringify(logged)).toMatch(/database on fire/);
    } finally {
      await broken.close();
    }
  });

  test('a throwing authenticate is a 500 too', async () => {
    const broken = await apiHarness({ authenticate: () => { throw new Error('auth backend down'); } });
    try {
      await expectError(await broken.call('GET', '/hooks'), 500, 'internal');
    } finally {
      await broken.close();
    }
  });

  test('createApi without authenticate is refused at once', async () => {
    const { createApi } = await import('../../src/api/index.js');
    expect(() => createApi(h.hooks, {} as never)).toThrow(/authenticate/);
  });
});
