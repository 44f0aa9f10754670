import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { apiHarness, TARGET, type ApiHarness } from './api-support.js';

// Random JSON at the two write routes: the answer is always 2xx or 4xx (never 5xx), always JSON
// with the one error shape on 4xx, and a 4xx never changes the store.
let h: ApiHarness;
let mine: string;
beforeAll(async () => {
  h = await apiHarness();
  mine = ((await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET } })).json()) as { id: string }).id;
});
afterAll(() => h.close());

const event = fc.oneof(fc.constantFrom('book.added', 'book.changed', 'user.logged_in', 'hook.test', 'book.burned', ''), fc.jsonValue());
const target = fc.oneof(
  fc.constantFrom(TARGET, 'https://other.example.com/x?y=1', 'http://hooks.example.com:8080/', '/relative', 'ftp://hooks.example.com/', 'javascript:alert(1)', 'https://nowhere.invalid/', 'https://intranet.example.com/'),
  fc.webUrl(),
  fc.string(),
  fc.jsonValue(),
);
const active = fc.oneof(fc.boolean(), fc.jsonValue());
const shaped = fc.record({ event, target, target_url: target, active, extra: fc.jsonValue() }, { requiredKeys: [] });
// Mostly valid bodies with random extras, so that successes are common too.
const nearlyValid = fc.record({ event: fc.constantFrom('book.added', 'book.read', 'book.burned'), target: fc.constantFrom(TARGET, 'https://other.example.com/x', 'ftp://x'), active: fc.boolean(), extra: fc.jsonValue() }, { requiredKeys: ['event', 'target'] });
const anyBody = fc.oneof(
  nearlyValid.map((b) => ({ raw: JSON.stringify(b) })),
  shaped.map((b) => ({ raw: JSON.stringify(b) })),
  fc.jsonValue().map((v) => ({ raw: JSON.stringify(v) })),
  fc.string().map((raw) => ({ raw })),
);

const statuses = new Map<number, number>();

async function check(method: string, path: string, raw: string | undefined) {
  const before = h.snapshot();
  const response = await h.call(method, path, { raw: raw ?? '', headers: { 'content-type': 'application/json' } });
  statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  const text = await response.text();
  expect(response.status === 200 || response.status === 201 || (response.status >= 400 && response.status < 500), `${response.status} ${text}`).toBe(true);
  const body = JSON.parse(text) as { error?: { code: string; message: string } };
  if (response.status >= 400) {
    expect(Object.keys(body.error ?? {}).sort()).toEqual(['code', 'message']);
    expect(h.snapshot()).toBe(before);
  }
}

test('POST /hooks with random JSON', async () => {
  statuses.clear();
  await fc.assert(fc.asyncProperty(anyBody, ({ raw }) => check('POST', '/hooks', raw)), { numRuns: 300 });
  // The generators reach both sides: some bodies are valid.
  expect(statuses.get(201)).toBeGreaterThan(0);
  expect(statuses.get(400)).toBeGreaterThan(0);
});

test('PATCH /hooks/:id with random JSON, on an own, a foreign and a missing id', async () => {
  const bobs = ((await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET }, as: 'bob' })).json()) as { id: string }).id;
  const id = fc.constantFrom(mine, bobs, 'sub_missing');
  statuses.clear();
  await fc.assert(fc.asyncProperty(anyBody, id, ({ raw }, which) => check('PATCH', `/hooks/${which}`, raw)), { numRuns: 300 });
  expect(statuses.get(200)).toBeGreaterThan(0);
  expect(statuses.get(404)).toBeGreaterThan(0);
  expect((await h.hooks.subscriptions.get(bobs))?.target).toBe(TARGET);
});
