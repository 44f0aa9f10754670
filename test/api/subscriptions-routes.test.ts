import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { apiHarness, TARGET, type ApiHarness } from './api-support.js';

let h: ApiHarness;
beforeEach(async () => {
  h = await apiHarness();
});
afterEach(() => h.close());

const create = async (body: object = { event: 'book.added', target: TARGET }, as: 'alice' | 'bob' = 'alice') => {
  const response = await h.call('POST', '/hooks', { body, as });
  expect(response.status).toBe(201);
  return (await response.json()) as Record<string, unknown> & { id: string; secret: string };
};

describe('POST /hooks', () => {
  test('201 with exactly the subscription fields', async () => {
    const created = await create();
    expect(Object.keys(created).sort()).toEqual(['active', 'createdAt', 'event', 'id', 'secret', 'target', 'updatedAt']);
    expect(created).toMatchObject({ event: 'book.added', target: TARGET, active: true });
    expect(created.id).toEqual(expect.any(String));
    expect(created.secret).toMatch(/^whsec_/);
    expect(new Date(created.createdAt as string).toISOString()).toBe(created.createdAt);
  });

  test('responses are not cacheable: they carry secrets', async () => {
    const created = await create();
    for (const path of ['/hooks', `/hooks/${created.id}`]) expect((await h.call('GET', path)).headers.get('cache-control')).toBe('no-store');
  });

  test('accepts target_url as an alias, ignores unknown fields, honours active', async () => {
    const created = await create({ event: 'book.read', target_url: TARGET, active: false, owner: 'mallory', secret: 'whsec_mine', id: 'x' });
    expect(created).toMatchObject({ event: 'book.read', target: TARGET, active: false });
    expect(created.id).not.toBe('x');
    expect(created.secret).not.toBe('whsec_mine');
    const stored = await h.hooks.subscriptions.get(created.id);
    expect(stored?.owner).toBe('alice');
  });

  test('accepts application/*+json and a JSON body without a content type', async () => {
    const withSuffix = await h.call('POST', '/hooks', { raw: JSON.stringify({ event: 'book.added', target: TARGET }), headers: { 'content-type': 'application/vnd.api+json; charset=utf-8' } });
    expect(withSuffix.status).toBe(201);
    const bare = await h.call('POST', '/hooks', { raw: new TextEncoder().encode(JSON.stringify({ event: 'book.added', target: TARGET })) });
    expect(bare.status).toBe(201);
  });
});

describe('GET /hooks', () => {
  test("the caller's subscriptions only, newest first", async () => {
    const a1 = await create();
    const b1 = await create({ event: 'book.added', target: TARGET }, 'bob');
    const a2 = await create({ event: 'book.removed', target: TARGET });
    const response = await h.call('GET', '/hooks');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-next-cursor')).toBeNull();
    const list = (await response.json()) as Array<{ id: string }>;
    expect(list.map((s) => s.id)).toEqual([a2.id, a1.id]);
    expect(list[0]).toEqual(a2);
    const bobs = (await (await h.call('GET', '/hooks', { as: 'bob' })).json()) as Array<{ id: string }>;
    expect(bobs.map((s) => s.id)).toEqual([b1.id]);
  });

  test('pages with ?limit= and ?cursor=, announcing the next page', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create()).id);
    const seen: string[] = [];
    let query = '?limit=2';
    for (let page = 0; page < 5; page++) {
      const response = await h.call('GET', `/hooks${query}`);
      seen.push(...((await response.json()) as Array<{ id: string }>).map((s) => s.id));
      const cursor = response.headers.get('x-next-cursor');
      if (cursor === null) break;
      expect(response.headers.get('link')).toBe(`<?limit=2&cursor=${cursor}>; rel="next"`);
      query = `?limit=2&cursor=${encodeURIComponent(cursor)}`;
    }
    expect(seen).toEqual(ids.reverse());
  });
});

describe('GET/PATCH/DELETE /hooks/:id', () => {
  test('GET returns the subscription with its secret', async () => {
    const created = await create();
    const response = await h.call('GET', `/hooks/${created.id}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(created);
  });

  test('PATCH changes target (or target_url), event and active', async () => {
    const created = await create();
    const other = 'https://other.example.com/in';
    const patched = await h.call('PATCH', `/hooks/${created.id}`, { body: { target: other, event: 'book.changed', active: false, secret: 'ignored' } });
    expect(patched.status).toBe(200);
    const json = (await patched.json()) as Record<string, unknown>;
    expect(json).toMatchObject({ id: created.id, target: other, event: 'book.changed', active: false, secret: created.secret });
    const aliased = (await (await h.call('PATCH', `/hooks/${created.id}`, { body: { target_url: TARGET } })).json()) as Record<string, unknown>;
    expect(aliased.target).toBe(TARGET);
    expect(await (await h.call('GET', `/hooks/${created.id}`)).json()).toEqual(aliased);
  });

  test('shows disabledReason only when disabled, and re-enabling clears it', async () => {
    const created = await create();
    expect(created).not.toHaveProperty('disabledReason');
    // What the dispatcher does after continuous failures; no API writes this column.
    await h.hooks.subscriptions.update(created.id, { active: false });
    const db = new Database(h.file);
    db.prepare('UPDATE resthooks_subscriptions SET disabled_reason = ? WHERE id = ?').run('failing since yesterday', created.id);
    db.close();
    const disabled = (await (await h.call('GET', `/hooks/${created.id}`)).json()) as Record<string, unknown>;
    expect(disabled).toMatchObject({ active: false, disabledReason: 'failing since yesterday' });
    const enabled = (await (await h.call('PATCH', `/hooks/${created.id}`, { body: { active: true } })).json()) as Record<string, unknown>;
    expect(enabled.active).toBe(true);
    expect(enabled).not.toHaveProperty('disabledReason');
  });

  test('DELETE answers 204 with no body, then GET is 404', async () => {
    const created = await create();
    const deleted = await h.call('DELETE', `/hooks/${created.id}`);
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe('');
    const after = await h.call('GET', `/hooks/${created.id}`);
    expect(after.status).toBe(404);
    expect(await after.json()).toEqual({ error: { code: 'not_found', message: `No subscription ${created.id}.` } });
    expect((await h.call('DELETE', `/hooks/${created.id}`)).status).toBe(404);
  });
});

describe('POST /hooks/:id/rotate-secret and /test', () => {
  test('rotate-secret returns exactly the new secret, which GET then shows', async () => {
    const created = await create();
    const response = await h.call('POST', `/hooks/${created.id}/rotate-secret`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { secret: string };
    expect(Object.keys(body)).toEqual(['secret']);
    expect(body.secret).toMatch(/^whsec_/);
    expect(body.secret).not.toBe(created.secret);
    expect(((await (await h.call('GET', `/hooks/${created.id}`)).json()) as { secret: string }).secret).toBe(body.secret);
  });

  test('test answers 202 with the delivery id, listed under deliveries as hook.test', async () => {
    const created = await create();
    const response = await h.call('POST', `/hooks/${created.id}/test`);
    expect(response.status).toBe(202);
    const { deliveryId } = (await response.json()) as { deliveryId: string };
    const deliveries = (await (await h.call('GET', `/hooks/${created.id}/deliveries`)).json()) as Array<{ id: string; event: string; attempts: unknown[] }>;
    expect(deliveries).toEqual([expect.objectContaining({ id: deliveryId, event: 'hook.test', subscriptionId: created.id, status: 'pending', attempts: [] })]);
  });
});
