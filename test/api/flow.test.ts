import { afterEach, beforeEach, expect, test } from 'vitest';
import { eventually } from '../support/hooks.js';
import { startReceiver, verify, type Receiver } from '../support/receiver.js';
import { apiHarness, type ApiHarness } from './api-support.js';

// The whole path through the API: subscribe → a model change → a signed delivery at a real receiver
// → the delivery log → manual retry, rotation and test events.
let h: ApiHarness;
let receiver: Receiver;
beforeEach(async () => {
  h = await apiHarness({}, { start: true });
  receiver = await startReceiver();
});
afterEach(async () => {
  await h.close();
  await receiver.close();
});

type DeliveryJson = { id: string; status: string; event: string; attempts: Array<{ number: number; statusCode: number | null; outcome: string }> };

async function subscribe(event = 'book.added') {
  const response = await h.call('POST', '/hooks', { body: { event, target: `${receiver.url}/in` } });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; secret: string };
}

async function deliveriesOf(id: string): Promise<DeliveryJson[]> {
  const response = await h.call('GET', `/hooks/${id}/deliveries`);
  expect(response.status).toBe(200);
  return (await response.json()) as DeliveryJson[];
}

/** The delivery log is written just after the receiver answers, so poll it until `ok` holds. */
const deliveriesWhen = (id: string, ok: (deliveries: DeliveryJson[]) => boolean) =>
  eventually(async () => {
    const deliveries = await deliveriesOf(id);
    if (!ok(deliveries)) throw new Error(`deliveries not there yet: ${JSON.stringify(deliveries)}`);
    return deliveries;
  });

test('create via the API → model change → signed delivery → log → retry with the same webhook-id', async () => {
  const sub = await subscribe();
  await h.hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' });
  const [first] = await receiver.waitFor(1);
  expect(first!.path).toBe('/in');
  expect(verify(sub.secret, first!)).toEqual({
    hook: { id: sub.id, event: 'book.added', target: `${receiver.url}/in` },
    data: { id: 1, title: 'Dune', ownerId: 'alice' },
  });

  const delivered = await deliveriesWhen(sub.id, (d) => d[0]?.status === 'delivered');
  expect(delivered).toHaveLength(1);
  expect(delivered[0]).toMatchObject({ id: first!.headers['webhook-id'], event: 'book.added', status: 'delivered' });
  expect(delivered[0]!.attempts).toEqual([expect.objectContaining({ number: 1, statusCode: 200, outcome: 'delivered' })]);

  const retried = await h.call('POST', `/hooks/${sub.id}/deliveries/${delivered[0]!.id}/retry`);
  expect(retried.status).toBe(202);
  expect(await retried.json()).toEqual({ deliveryId: delivered[0]!.id });
  const [, second] = await receiver.waitFor(2);
  expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
  expect(second!.body).toBe(first!.body);
  verify(sub.secret, second!);
  const again = await deliveriesWhen(sub.id, (d) => d[0]?.attempts.length === 2 && d[0].status === 'delivered');
  expect(again[0]!.attempts.map((a) => a.outcome)).toEqual(['delivered', 'delivered']);
});

test('rotate-secret: the next delivery verifies with the new secret and with the old one', async () => {
  const sub = await subscribe();
  const response = await h.call('POST', `/hooks/${sub.id}/rotate-secret`);
  expect(response.status).toBe(200);
  const { secret } = (await response.json()) as { secret: string };
  expect(secret).not.toBe(sub.secret);
  await h.hooks.model('Book', 'created', { id: 2, title: 'Emma', ownerId: 'alice' });
  const [delivery] = await receiver.waitFor(1);
  expect((delivery!.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
  for (const key of [secret, sub.secret]) expect(verify(key, delivery!)).toMatchObject({ data: { id: 2 } });
  expect(() => verify('whsec_' + Buffer.from('not the secret at all, 32 bytes!').toString('base64'), delivery!)).toThrow();
});

test('POST /hooks/:id/test sends hook.test to that subscription only', async () => {
  const sub = await subscribe();
  const other = await subscribe('book.removed');
  const response = await h.call('POST', `/hooks/${sub.id}/test`);
  expect(response.status).toBe(202);
  const { deliveryId } = (await response.json()) as { deliveryId: string };
  const [received] = await receiver.waitFor(1);
  expect(received!.headers['webhook-id']).toBe(deliveryId);
  const payload = verify(sub.secret, received!) as { hook: { id: string; event: string } };
  expect(payload.hook).toEqual({ id: sub.id, event: 'hook.test', target: `${receiver.url}/in` });
  await h.hooks.idle();
  expect(receiver.received).toHaveLength(1);
  expect(await deliveriesOf(other.id)).toEqual([]);
});

test('POST /hooks/:id/recover {since} re-queues failed deliveries, which then arrive with their original webhook-id', async () => {
  const sub = await subscribe();
  receiver.respond = () => 503;
  const since = new Date().toISOString();
  await h.hooks.model('Book', 'created', { id: 7, title: 'Dune', ownerId: 'alice' });
  const failed = await deliveriesWhen(sub.id, (list) => list[0]?.status === 'failed');
  expect(failed[0]!.status).toBe('failed');
  const firstId = receiver.received[0]!.headers['webhook-id'];

  receiver.respond = () => 200;
  const bad = await h.call('POST', `/hooks/${sub.id}/recover`, { body: { since: 'yesterday' } });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_field');
  expect((await h.call('POST', `/hooks/${sub.id}/recover`, { body: { since }, as: 'bob' })).status).toBe(404);
  const recovered = await h.call('POST', `/hooks/${sub.id}/recover`, { body: { since } });
  expect(recovered.status).toBe(202);
  expect(await recovered.json()).toEqual({ requeued: 1 });
  const delivered = await deliveriesWhen(sub.id, (list) => list[0]?.status === 'delivered');
  expect(delivered[0]!.status).toBe('delivered');
  expect(receiver.received.at(-1)!.headers['webhook-id']).toBe(firstId);
});
