/**
 * A manual retry of a delivery whose attempt is still running is refused with a 409 that says why
 * (over HTTP, and as ConflictError in the programmatic API), instead of a 202 "queued" that did
 * nothing. Once the attempt ends, the same retry goes through. On SQLite and PostgreSQL, with a real
 * receiver that holds the request open.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ConflictError } from '../../src/index.js';
import { ENGINES, TestDatabase } from '../support/database.js';
import { eventually } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { apiHarness, type ApiHarness } from './api-support.js';

describe.each(ENGINES)('on %s', (engine) => {
  let db: TestDatabase;
  let h: ApiHarness;
  let receiver: Receiver;
  const held: ServerResponse[] = [];
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
    // The receiver holds the first request open; the attempt's timeout is far beyond the test.
    receiver = await startReceiver((_request, index, response) => {
      if (index > 0) return 200;
      held.push(response);
      return 'handled';
    });
    h = await apiHarness({}, { start: true, hooks: { store: db.dialect(), delivery: { timeout: '60s' } } });
  });
  afterEach(async () => {
    for (const response of held.splice(0)) response.destroy();
    await receiver.close();
    await h.close();
    await db.close();
  });

  test('409 conflict while in flight (API and hooks.deliveries.retry), nothing queued; retried once the attempt ends', async () => {
    const sub = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: `${receiver.url}/in` } })).json()) as { id: string };
    const { deliveryId } = await h.hooks.sendTest(sub.id);
    await receiver.waitFor(1, 15_000);
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.status).toBe('in_flight'), 15_000);

    const response = await h.call('POST', `/hooks/${sub.id}/deliveries/${deliveryId}/retry`);
    expect(response.status).toBe(409);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      error: { code: 'conflict', message: expect.stringMatching(new RegExp(`^Delivery ${deliveryId} is in flight \\(an attempt of it is queued or running right now\\), so it was not queued again`)) },
    });
    const error = await h.hooks.deliveries.retry(deliveryId).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ code: 'conflict', message: expect.stringContaining('is in flight') });
    // Still the one attempt in flight: the refused retries changed nothing.
    expect(await h.hooks.deliveries.get(deliveryId)).toMatchObject({ status: 'in_flight', attempts: 0 });

    held.shift()!.writeHead(200).end();
    await eventually(async () => expect((await h.hooks.deliveries.get(deliveryId))?.status).toBe('delivered'), 15_000);
    const retried = await h.call('POST', `/hooks/${sub.id}/deliveries/${deliveryId}/retry`);
    expect(retried.status).toBe(202);
    const [, second] = await receiver.waitFor(2, 15_000);
    expect(second!.headers['webhook-id']).toBe(deliveryId);
  });

  test('the OpenAPI document lists the 409', async () => {
    const doc = (await (await h.call('GET', '/openapi.json')).json()) as { paths: Record<string, { post: { responses: Record<string, unknown> } }> };
    expect(Object.keys(doc.paths['/hooks/{id}/deliveries/{deliveryId}/retry']!.post.responses)).toContain('409');
  });

  test('a missing delivery is still 404, not 409', async () => {
    const sub = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: `${receiver.url}/in` } })).json()) as { id: string };
    const response = await h.call('POST', `/hooks/${sub.id}/deliveries/dlv_missing/retry`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});
