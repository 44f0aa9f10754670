/**
 * An event the fan-out has not reached yet sits in the fresh table (SQLite, migration 0006): the API
 * serves it as it served a pending event before, by id, in the pending list and as a sample, and the
 * same event fanned out answers in the same shape.
 */
import Database from 'better-sqlite3';
import { afterEach, expect, test } from 'vitest';
import { eventually } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { apiHarness, type ApiHarness } from './api-support.js';

let h: ApiHarness;
let receiver: Receiver;
afterEach(async () => {
  await h.close();
  await receiver.close();
});

const where = (file: string, id: string) => {
  const db = new Database(file, { readonly: true });
  try {
    const fresh = db.prepare('select count(*) as n from resthooks_outbox where id = ?').get(id) as { n: number };
    const indexed = db.prepare('select count(*) as n from resthooks_events where id = ?').get(id) as { n: number };
    return { fresh: fresh.n, indexed: indexed.n };
  } finally {
    db.close();
  }
};

test('a fresh event is served by id, in the pending list and as a sample before its fan-out, and in the same shape after it', async () => {
  receiver = await startReceiver();
  h = await apiHarness({}, { hooks: { resolver: async () => [{ address: '127.0.0.1', family: 4 }] } });
  expect((await h.call('POST', '/hooks', { body: { event: 'book.added', target: `${receiver.url}/hook` } })).status).toBe(201);
  const result = await h.hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' });
  if (result.status !== 'queued') throw new Error(`not queued: ${result.status}`);
  const { eventId } = result;
  expect(where(h.file, eventId)).toEqual({ fresh: 1, indexed: 0 });

  const response = await h.call('GET', `/outbox/${eventId}`);
  expect(response.status).toBe(200);
  const fresh = (await response.json()) as Record<string, unknown>;
  expect(fresh).toEqual({
    id: eventId, event: 'book.added', model: 'Book', action: 'created', owner: 'alice', allOwners: false,
    status: 'pending', error: null, fanOutAttempts: 0, nextFanOutAt: fresh['createdAt'], retryable: true,
    data: { id: 1, title: 'Dune', ownerId: 'alice' }, createdAt: expect.stringMatching(/^\d{4}-/),
  });
  expect((await h.call('GET', `/outbox/${eventId}`, { as: 'bob' })).status).toBe(404);
  expect(await (await h.call('GET', '/outbox?status=pending')).json()).toEqual([fresh]);
  expect(await (await h.call('GET', '/outbox?status=pending', { as: 'bob' })).json()).toEqual([]);
  expect(await (await h.call('GET', '/events/book.added/sample')).json()).toEqual([{ id: 1, title: 'Dune', ownerId: 'alice' }]);
  // Already due: a retry has nothing to reset, and is accepted as it was for a pending event.
  expect((await h.call('POST', `/outbox/${eventId}/retry`)).status).toBe(202);

  await h.hooks.start();
  await eventually(async () => expect(((await (await h.call('GET', `/outbox/${eventId}`)).json()) as { status: string }).status).toBe('done'), 15_000);
  expect(where(h.file, eventId)).toEqual({ fresh: 0, indexed: 1 });
  await receiver.waitFor(1);
  expect(await (await h.call('GET', `/outbox/${eventId}`)).json()).toEqual({ ...fresh, status: 'done', nextFanOutAt: null, retryable: false });
  expect(await (await h.call('GET', '/outbox?status=pending')).json()).toEqual([]);
  expect(await (await h.call('GET', '/events/book.added/sample')).json()).toEqual([{ id: 1, title: 'Dune', ownerId: 'alice' }]);
});
