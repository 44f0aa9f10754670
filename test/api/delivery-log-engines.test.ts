/**
 * The delivery log over HTTP (`GET /hooks/:id/deliveries`) on SQLite and PostgreSQL, through the real
 * delivery loop: a first attempt that delivered is kept in its delivery's row, not as a row of the attempts
 * table, on both engines; the log shows it as before, and a manual retry's attempt follows it.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { KyselyStore } from '../../src/store/kysely-store.js';
import { ENGINES, TestDatabase } from '../support/database.js';
import { eventually } from '../support/hooks.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { apiHarness, type ApiHarness } from './api-support.js';

type AttemptJson = { id: string; number: number; statusCode: number | null; outcome: string };
type DeliveryJson = { id: string; status: string; attempts: AttemptJson[] };

describe.each(ENGINES)('on %s', (engine) => {
  let db: TestDatabase;
  let h: ApiHarness;
  let receiver: Receiver;
  let reader: KyselyStore;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
    receiver = await startReceiver();
    h = await apiHarness({}, { start: true, hooks: { store: db.dialect() } });
    reader = db.store();
  });
  afterEach(async () => {
    await reader.destroy();
    await h.close();
    await receiver.close();
    await db.close();
  });

  const deliveriesWhen = (id: string, ok: (deliveries: DeliveryJson[]) => boolean) =>
    eventually(async () => {
      const response = await h.call('GET', `/hooks/${id}/deliveries`);
      expect(response.status).toBe(200);
      const deliveries = (await response.json()) as DeliveryJson[];
      if (!ok(deliveries)) throw new Error(`deliveries not there yet: ${JSON.stringify(deliveries)}`);
      return deliveries;
    }, 15_000);
  const attemptRows = (deliveryId: string) => reader.db.selectFrom('resthooks_attempts').select(['id', 'number']).where('delivery_id', '=', deliveryId).orderBy('number').execute();

  test('a delivered first attempt: one delivery row, no attempt row; the log lists it, then the retry after it', async () => {
    const sub = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: `${receiver.url}/in` } })).json()) as { id: string };
    await h.hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' });
    const [delivered] = await deliveriesWhen(sub.id, (d) => d[0]?.status === 'delivered');
    expect(delivered!.attempts).toEqual([expect.objectContaining({ number: 1, statusCode: 200, outcome: 'delivered' })]);
    const first = delivered!.attempts[0]!;
    // The first attempt's id is the delivery's under the attempt prefix.
    expect(first.id).toBe(`att_${delivered!.id.slice('dlv_'.length)}`);
    expect(await attemptRows(delivered!.id)).toEqual([]);
    const row = await reader.db.selectFrom('resthooks_deliveries').select(['first_attempt_id', 'first_attempt_status_code']).where('id', '=', delivered!.id).executeTakeFirstOrThrow();
    // SQLite's row keeps it as '' (the row grows less when the attempt is recorded); PostgreSQL's set-based record writes it out.
    expect({ ...row, first_attempt_status_code: Number(row.first_attempt_status_code) }).toEqual({ first_attempt_id: engine === 'sqlite' ? '' : first.id, first_attempt_status_code: 200 });

    receiver.respond = () => 503;
    expect((await h.call('POST', `/hooks/${sub.id}/deliveries/${delivered!.id}/retry`)).status).toBe(202);
    const [retried] = await deliveriesWhen(sub.id, (d) => d[0]?.attempts.length === 2);
    expect(retried!.attempts).toEqual([first, expect.objectContaining({ number: 2, statusCode: 503, outcome: 'retry' })]);
    expect((await attemptRows(delivered!.id)).map((a) => [a.id, Number(a.number)])).toEqual([[retried!.attempts[1]!.id, 2]]);
  });
});
