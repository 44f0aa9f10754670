import { afterEach, describe, expect, test } from 'vitest';
import { apiHarness, type ApiHarness } from './api-support.js';

let h: ApiHarness;
afterEach(() => h.close());

const get = async (path: string, as: 'alice' | 'bob' = 'alice') => {
  const response = await h.call('GET', path, { as });
  expect(response.status).toBe(200);
  return response.json() as Promise<Array<Record<string, unknown>>>;
};

test('GET /events lists the declared events', async () => {
  h = await apiHarness();
  expect(await get('/events')).toEqual([
    { name: 'book.added', model: 'Book', action: 'created', allOwners: false },
    { name: 'book.changed', model: 'Book', action: 'updated', allOwners: true },
    { name: 'book.removed', model: 'Book', action: 'deleted', allOwners: false },
    { name: 'book.read', model: 'Book', action: 'read', allOwners: false },
    { name: 'user.logged_in', model: null, action: null, allOwners: false },
  ]);
});

describe('GET /events/:name/sample', () => {
  test("the caller's latest real events, newest first, shaped like the delivered data", async () => {
    h = await apiHarness();
    for (let id = 1; id <= 4; id++) await h.hooks.model('Book', 'created', { id, title: `Book ${id}`, ownerId: 'alice', at: new Date(0) });
    await h.hooks.model('Book', 'created', { id: 99, title: "Bob's", ownerId: 'bob' });
    expect(await get('/events/book.added/sample')).toEqual([
      { id: 4, title: 'Book 4', ownerId: 'alice', at: '1970-01-01T00:00:00.000Z' },
      { id: 3, title: 'Book 3', ownerId: 'alice', at: '1970-01-01T00:00:00.000Z' },
      { id: 2, title: 'Book 2', ownerId: 'alice', at: '1970-01-01T00:00:00.000Z' },
    ]);
    expect((await get('/events/book.added/sample?limit=10')).map((s) => s.id)).toEqual([4, 3, 2, 1]);
    expect(await get('/events/book.added/sample', 'bob')).toEqual([{ id: 99, title: "Bob's", ownerId: 'bob' }]);
  });

  test("all-owners (+) events are samples for every owner; data without an id gets the event's", async () => {
    h = await apiHarness();
    await h.hooks.model('Book', 'updated', { id: 7, title: 'Shared', ownerId: 'bob' });
    expect(await get('/events/book.changed/sample', 'alice')).toEqual([{ id: 7, title: 'Shared', ownerId: 'bob' }]);
    await h.hooks.raw('user.logged_in', { username: 'alice' }, { owner: 'alice' });
    await h.hooks.raw('user.logged_in', 'plain text', { owner: 'alice' });
    const [text, object] = await get('/events/user.logged_in/sample');
    expect(text).toEqual({ id: expect.stringMatching(/^evt_/), data: 'plain text' });
    expect(object).toEqual({ id: expect.stringMatching(/^evt_/), username: 'alice' });
  });

  test('with no events yet: the app-given example, else a marked placeholder', async () => {
    h = await apiHarness({ examples: { 'book.added': { id: 1, title: 'The Hobbit', pages: 310 }, 'user.logged_in': 'x' } });
    expect(await get('/events/book.added/sample')).toEqual([{ id: 1, title: 'The Hobbit', pages: 310 }]);
    expect(await get('/events/user.logged_in/sample')).toEqual([{ id: 'example_user.logged_in', data: 'x' }]);
    expect(await get('/events/book.removed/sample')).toEqual([
      { id: 'example_book.removed', event: 'book.removed', model: 'Book', action: 'deleted', sample: true },
    ]);
  });

  test('?limit= is 1–25', async () => {
    h = await apiHarness();
    expect((await h.call('GET', '/events/book.added/sample?limit=26')).status).toBe(400);
    expect((await h.call('GET', '/events/book.added/sample?limit=0')).status).toBe(400);
  });
});

test('GET /openapi.json is an OpenAPI 3.1 document of every route, with the declared events', async () => {
  h = await apiHarness({ openapi: { title: 'Bookstore hooks', version: '2.0.0' } });
  const doc = (await (await h.call('GET', '/openapi.json')).json()) as {
    openapi: string;
    info: { title: string; version: string };
    paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
    components: { schemas: Record<string, { properties?: Record<string, { enum?: string[] }>; required?: string[] }> };
  };
  expect(doc.openapi).toBe('3.1.0');
  expect(doc.info).toEqual({ title: 'Bookstore hooks', version: '2.0.0' });
  const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((k) => k !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`));
  expect(operations.sort()).toEqual([
    'DELETE /hooks/{id}', 'GET /events', 'GET /events/{name}/sample', 'GET /hooks', 'GET /hooks/{id}', 'GET /hooks/{id}/deliveries',
    'GET /outbox', 'GET /outbox/{eventId}',
    'PATCH /hooks/{id}', 'POST /hooks', 'POST /hooks/{id}/deliveries/{deliveryId}/retry', 'POST /hooks/{id}/recover', 'POST /hooks/{id}/rotate-secret', 'POST /hooks/{id}/test',
    'POST /outbox/{eventId}/retry',
  ]);
  const schemas = doc.components.schemas;
  expect(schemas.CreateSubscription?.properties?.event?.enum).toEqual(['book.added', 'book.changed', 'book.removed', 'book.read', 'user.logged_in']);
  expect(schemas.Subscription?.required).toEqual(['id', 'event', 'target', 'active', 'secret', 'createdAt', 'updatedAt']);
  // Every $ref points at a component.
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
  for (const ref of refs) expect(Object.keys(schemas)).toContain(ref.split('/').pop()!.replace('"', ''));
  expect(JSON.stringify(doc)).not.toMatch(/"additionalProperties":false|\$schema/);
});
