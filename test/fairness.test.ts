/**
 * One tenant must not hurt another: an owner whose 100 receivers (100 distinct origins) accept the
 * connection and never answer must not delay another owner's deliveries by the attempt timeout.
 * Real receivers on 127.0.0.1 (the distinct origins are host names that the test resolver pins to
 * 127.0.0.1: one connection pool each, as for 100 customers' endpoints), on SQLite and PostgreSQL.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveryOptions } from '../src/index.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';
import { eventually, testHooks, type TestHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';

const HANGING_ORIGINS = 100;
/** The hanging receivers' attempts end only at this timeout; the other owner's must arrive long before. */
const TIMEOUT_MS = 20_000;

describe.each(ENGINES)('fairness between owners (%s)', (engine: Engine) => {
  let db: TestDatabase;
  let hanging: Receiver;
  let healthy: Receiver;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
    hanging = await startReceiver(() => 'hang');
    healthy = await startReceiver(() => 200);
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await hanging.close();
    await healthy.close();
    await db.close();
  });

  async function tenants(delivery: DeliveryOptions): Promise<TestHooks<'book.added'>> {
    const setup = await testHooks({ events: { 'book.added': 'Book.created' }, store: db.dialect(), delivery: { timeout: TIMEOUT_MS, ...delivery } });
    closers.push(() => setup.close());
    const { hooks } = setup;
    const port = new URL(hanging.url).port;
    for (let i = 0; i < HANGING_ORIGINS; i++) {
      await hooks.subscriptions.create({ owner: 'mallory', event: 'book.added', target: `http://receiver-${i}.mallory.test:${port}/hook` });
    }
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${healthy.url}/alice` });
    return setup;
  }

  /** Triggers `count` events for alice one after another; resolves to each one's time from trigger to arrival. */
  async function aliceLatencies(hooks: TestHooks<'book.added'>['hooks'], count: number): Promise<number[]> {
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      const before = healthy.received.length;
      const started = Date.now();
      await hooks.model('Book', 'created', { id: `a${i}`, ownerId: 'alice' });
      await healthy.waitFor(before + 1, TIMEOUT_MS);
      latencies.push(Date.now() - started);
    }
    return latencies;
  }

  it(`${HANGING_ORIGINS} hanging receivers of one owner leave another owner's deliveries on time (default limits)`, { timeout: 60_000 }, async () => {
    const { hooks } = await tenants({});
    const hangStarted = Date.now();
    for (let i = 0; i < 2; i++) await hooks.model('Book', 'created', { id: `m${i}`, ownerId: 'mallory' });
    await eventually(() => expect(hanging.received.length).toBeGreaterThanOrEqual(32), 10_000);
    const latencies = await aliceLatencies(hooks, 10);
    // Not one of the hanging attempts has ended: alice's deliveries did not wait for their timeout.
    expect(Date.now() - hangStarted).toBeLessThan(TIMEOUT_MS);
    // Normal here is a few ms; the bound is generous for a loaded machine, and far below the 20 s timeout.
    for (const latency of latencies) expect(latency).toBeLessThan(3_000);
    // Mallory's attempts held every slot they were allowed: half of 64 (more would take the others' too).
    expect(hanging.received.length).toBe(32);
  });

  it('a queue filled with claims of hanging receivers gives them back, so the other owner is still claimed and delivered', { timeout: 60_000 }, async () => {
    // 8 slots and room for 128 claims: mallory's 300 deliveries fill it, 4 attempts hang, the rest cannot start.
    const { hooks } = await tenants({ concurrency: 8 });
    const hangStarted = Date.now();
    for (let i = 0; i < 3; i++) await hooks.model('Book', 'created', { id: `m${i}`, ownerId: 'mallory' });
    await eventually(() => expect(hanging.received.length).toBeGreaterThanOrEqual(4), 10_000);
    const latencies = await aliceLatencies(hooks, 5);
    expect(Date.now() - hangStarted).toBeLessThan(TIMEOUT_MS);
    // Claims that cannot start are given back after a second of waiting in a full queue; then alice's event
    // is fanned out and sent. Bounded by seconds, not by the hanging receivers' 20 s timeout.
    for (const latency of latencies) expect(latency).toBeLessThan(8_000);
    expect(hanging.received.length).toBe(4);
    // The given-back deliveries: pending, no attempt recorded, due again about one timeout after they went back.
    const now = Date.now();
    const mallorys = (await hooks.subscriptions.list({ owner: 'mallory', limit: 100 })).items.map((subscription) => subscription.id);
    const deliveries = (await Promise.all(mallorys.map((id) => hooks.deliveries.list(id)))).flat();
    const givenBack = deliveries.filter((d) => d.status === 'pending' && d.attempts === 0 && d.nextAttemptAt!.getTime() > now + TIMEOUT_MS / 2);
    expect(givenBack.length).toBeGreaterThan(0);
    for (const delivery of givenBack) {
      expect(delivery.attemptLog).toEqual([]);
      expect(delivery.nextAttemptAt!.getTime()).toBeLessThanOrEqual(now + TIMEOUT_MS);
    }
  });
});
