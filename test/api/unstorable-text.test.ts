/**
 * Text no store can keep as given — a NUL (`%00`, `\u0000`), which PostgreSQL refuses, and an unpaired
 * surrogate, which both drivers turn into U+FFFD — is refused with a 400 in the one error shape, on
 * every route and in the programmatic API, before it reaches the store. On SQLite and PostgreSQL.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ValidationError } from '../../src/index.js';
import { ENGINES, TestDatabase } from '../support/database.js';
import { apiHarness, TARGET, type ApiHarness } from './api-support.js';

const NUL = '\u0000';
const LONE = '\ud800';

describe.each(ENGINES)('on %s', (engine) => {
  let db: TestDatabase;
  let h: ApiHarness;
  let sub: { id: string };
  let deliveryId: string;
  beforeAll(async () => {
    db = new TestDatabase(engine);
    await db.init();
    h = await apiHarness({}, { hooks: { store: db.dialect() } });
    sub = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET } })).json()) as { id: string };
    ({ deliveryId } = await h.hooks.sendTest(sub.id));
  });
  afterAll(async () => {
    await h.close();
    await db.close();
  });

  /** Every subscription and delivery, to show a refused request changed nothing. */
  const state = async () => {
    const subscriptions = (await h.hooks.subscriptions.list({ limit: 100 })).items;
    return JSON.stringify({ subscriptions, deliveries: await h.hooks.deliveries.list(sub.id, { limit: 100 }) });
  };

  async function expect400(response: Response, code: string, message: RegExp) {
    const text = await response.text();
    expect(response.status, text).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(text) as { error: { code: string; message: string } };
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
    expect(body.error.code).toBe(code);
    expect(body.error.message).toMatch(message);
  }

  const urls = (): Array<[string, string, unknown?]> => [
    ['GET', '/hooks/%00'],
    ['GET', '/hooks/sub%00x'],
    ['PATCH', '/hooks/%00', { active: false }],
    ['DELETE', '/hooks/%00'],
    ['POST', '/hooks/%00/rotate-secret'],
    ['POST', '/hooks/%00/test'],
    ['GET', '/hooks/%00/deliveries'],
    ['POST', '/hooks/%00/recover', { since: '2020-01-01T00:00:00Z' }],
    ['POST', `/hooks/${sub.id}/deliveries/%00/retry`],
    ['POST', `/hooks/%00/deliveries/${deliveryId}/retry`],
    ['GET', '/events/book%00/sample'],
    ['GET', '/nowhere/%00'],
  ];
  test('a NUL in the path: 400 invalid_field naming the path, nothing changed', async () => {
    const before = await state();
    for (const [method, path, body] of urls()) {
      await expect400(await h.call(method, path, body === undefined ? {} : { body }), 'invalid_field', /^The path contains a NUL character \(U\+0000\)/);
    }
    expect(await state()).toBe(before);
  });

  test('a NUL in a query parameter (cursors, limits): 400 naming the parameter', async () => {
    for (const path of ['/hooks?cursor=%00', `/hooks/${sub.id}/deliveries?cursor=sub%00`, '/hooks?limit=1%00', '/events/book.added/sample?x%00=1']) {
      await expect400(await h.call('GET', path), 'invalid_field', /contains a NUL character \(U\+0000\), which cannot be stored/);
    }
    await expect400(await h.call('GET', '/hooks?cursor=%00'), 'invalid_field', /^`cursor` contains a NUL/);
  });

  test.each([
    ['a NUL', `${TARGET}${NUL}`, /^`target` contains a NUL character \(U\+0000\), which cannot be stored\.$/],
    ['a NUL in the query', `${TARGET}?a=${NUL}`, /NUL character/],
    ['an unpaired high surrogate', `${TARGET}${LONE}`, /^`target` contains an unpaired surrogate \(U\+D800, not valid Unicode\), which cannot be stored\.$/],
    ['an unpaired low surrogate', `${TARGET}?q=\udc00`, /unpaired surrogate \(U\+DC00/],
  ])('a target with %s: POST and PATCH answer 400 invalid_target and store nothing', async (_name, target, message) => {
    const before = await state();
    await expect400(await h.call('POST', '/hooks', { body: { event: 'book.added', target } }), 'invalid_target', message);
    await expect400(await h.call('POST', '/hooks', { body: { event: 'book.added', target_url: target } }), 'invalid_target', message);
    await expect400(await h.call('PATCH', `/hooks/${sub.id}`, { body: { target } }), 'invalid_target', message);
    expect(await state()).toBe(before);
  });

  test('a well-formed astral character is fine: stored and echoed byte for byte', async () => {
    const target = `${TARGET}/\u{1F4DA}`;
    const created = (await (await h.call('POST', '/hooks', { body: { event: 'book.read', target } })).json()) as { id: string; target: string };
    expect(created.target).toBe(target);
    expect(((await (await h.call('GET', `/hooks/${created.id}`)).json()) as { target: string }).target).toBe(target);
    expect((await h.hooks.subscriptions.get(created.id))?.target).toBe(target);
    await h.hooks.subscriptions.delete(created.id);
  });

  describe('the programmatic API throws ValidationError before the store sees the text', () => {
    const rejects = async (promise: Promise<unknown>, field: string, code = 'invalid_field') => {
      const error = await promise.then(() => undefined, (e: unknown) => e);
      expect(error, field).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code, field });
    };

    test('subscriptions: create, get, list, update, delete, rotateSecret', async () => {
      const before = await state();
      const s = h.hooks.subscriptions;
      for (const bad of [NUL, LONE]) {
        await rejects(s.create({ owner: `alice${bad}`, event: 'book.added', target: TARGET }), 'owner');
        await rejects(s.create({ owner: 'alice', event: 'book.added', target: `${TARGET}${bad}` }), 'target', 'invalid_target');
        await rejects(s.get(`sub${bad}`), 'id');
        await rejects(s.list({ owner: bad }), 'owner');
        await rejects(s.list({ event: `book.added${bad}` as 'book.added' }), 'event');
        await rejects(s.list({ cursor: bad }), 'cursor');
        await rejects(s.update(`sub${bad}`, { active: false }), 'id');
        await rejects(s.update(sub.id, { target: `${TARGET}${bad}` }), 'target', 'invalid_target');
        await rejects(s.delete(`sub${bad}`), 'id');
        await rejects(s.rotateSecret(`sub${bad}`), 'id');
        await rejects(s.rotateSecret(sub.id, { owner: `alice${bad}` }), 'owner');
      }
      expect(await state()).toBe(before);
    });

    test('an owner longer than the column (255) is refused, not cut or failed by the database', async () => {
      await rejects(h.hooks.subscriptions.create({ owner: 'o'.repeat(256), event: 'book.added', target: TARGET }), 'owner');
      const longest = await h.hooks.subscriptions.create({ owner: 'o'.repeat(255), event: 'book.added', target: TARGET });
      expect((await h.hooks.subscriptions.get(longest.id))?.owner).toBe('o'.repeat(255));
      await h.hooks.subscriptions.delete(longest.id);
    });

    test('deliveries: get, list, retry, recover; recentEvents; sendTest', async () => {
      const before = await state();
      for (const bad of [NUL, LONE]) {
        await rejects(h.hooks.deliveries.get(`dlv${bad}`), 'deliveryId');
        await rejects(h.hooks.deliveries.list(`sub${bad}`), 'id');
        await rejects(h.hooks.deliveries.list(sub.id, { cursor: `dlv${bad}` }), 'cursor');
        await rejects(h.hooks.deliveries.retry(`dlv${bad}`), 'deliveryId');
        await rejects(h.hooks.deliveries.retry(deliveryId, { subscriptionId: `sub${bad}` }), 'subscriptionId');
        await rejects(h.hooks.deliveries.recover(`sub${bad}`, { since: 0 }), 'id');
        await rejects(h.hooks.recentEvents(`book.added${bad}` as 'book.added', { owner: 'alice' }), 'event');
        await rejects(h.hooks.recentEvents('book.added', { owner: `alice${bad}` }), 'owner');
        await rejects(h.hooks.sendTest(`sub${bad}`), 'id');
      }
      expect(await state()).toBe(before);
    });
  });

  test('random text with NUL, unpaired surrogates and odd escapes, in bodies, paths and queries: never a 5xx', async () => {
    const piece = fc.constantFrom(NUL, LONE, '\udfff', '\u{1F4DA}', 'a', '/', '%', '?', '\\', '\u00e9');
    const text = fc.array(piece, { maxLength: 8 }).map((parts) => parts.join(''));
    const rawSegment = fc.array(fc.constantFrom('%00', '%ff', '%C0%80', '%ED%A0%80', '%25', '%2F', 'a', 'sub_1'), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(''));
    const request = fc.oneof(
      text.map((t) => ['POST', '/hooks', { event: 'book.added', target: `${TARGET}${t}` }] as const),
      text.map((t) => ['PATCH', `/hooks/${sub.id}`, { target: `${TARGET}/${t}` }] as const),
      rawSegment.map((segment) => ['GET', `/hooks/${segment}`, undefined] as const),
      rawSegment.map((segment) => ['DELETE', `/hooks/${segment}`, undefined] as const),
      rawSegment.map((segment) => ['GET', `/hooks?cursor=${segment}`, undefined] as const),
      rawSegment.map((segment) => ['POST', `/hooks/${sub.id}/deliveries/${segment}/retry`, undefined] as const),
    );
    await fc.assert(
      fc.asyncProperty(request, async ([method, path, body]) => {
        const response = await h.call(method, path, body === undefined ? {} : { body });
        const answer = await response.text();
        expect(response.status < 500, `${method} ${path} ${JSON.stringify(body)} → ${response.status} ${answer}`).toBe(true);
        if (body !== undefined && response.status < 300) {
          // Accepted: echoed, and stored, exactly as sent.
          const { id, target } = JSON.parse(answer) as { id: string; target: string };
          expect(target).toBe(body.target);
          expect((await h.hooks.subscriptions.get(id))?.target).toBe(body.target);
        }
      }),
      { numRuns: 150 },
    );
    for (const stored of (await h.hooks.subscriptions.list({ limit: 100 })).items) {
      const echoed = (await (await h.call('GET', `/hooks/${stored.id}`)).json()) as { target: string };
      expect(echoed.target).toBe(stored.target);
      // Survives UTF-8 (no unpaired surrogate) and holds no NUL.
      expect(Buffer.from(stored.target, 'utf8').toString('utf8')).toBe(stored.target);
      expect(stored.target).not.toContain(NUL);
    }
  });

  test('metadata is stored as JSON text, so NUL and unpaired surrogates in it round-trip exactly', async () => {
    const metadata = { note: `a${NUL}b${LONE}c\udc00`, [`key${NUL}${LONE}`]: [`x${NUL}`] };
    const created = await h.hooks.subscriptions.create({ owner: 'carol', event: 'book.added', target: TARGET, metadata });
    expect(created.metadata).toEqual(metadata);
    expect((await h.hooks.subscriptions.get(created.id))?.metadata).toEqual(metadata);
    const updated = await h.hooks.subscriptions.update(created.id, { metadata: { again: LONE } });
    expect((await h.hooks.subscriptions.get(updated.id))?.metadata).toEqual({ again: LONE });
    await h.hooks.subscriptions.delete(created.id);
  });
});
