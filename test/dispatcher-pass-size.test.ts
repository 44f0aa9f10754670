/**
 * A fan-out pass takes at most FAN_OUT_BATCH events. When the queue had room for more, the dispatcher
 * used to run another pass at once for whatever room was left, however little: a commit of its own for
 * a few dozen deliveries. For a remainder under a quarter of the pass it now waits until the queue asks
 * for more (room for a batch), and every event is still delivered.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KyselyStore } from '../src/store/kysely-store.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { testHooks } from './support/hooks.js';
import { startReceiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
// A queue of 16 × 33 = 528 claims: the first pass takes 500 events (FAN_OUT_BATCH), leaving room for 28.
const CONCURRENCY = 33;
const SAVED = 1_000;

describe.each(ENGINES)('fan-out pass size on %s', (engine) => {
  let db: TestDatabase;
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    vi.restoreAllMocks();
    await db.close();
  });

  it('after a pass cut short by its batch size, no pass runs for the few slots left; every event is still delivered once', async () => {
    // Every answer is held until released: nothing finishes, so the queue's room is what the passes left.
    const held: ServerResponse[] = [];
    let holding = true;
    const receiver = await startReceiver((_, __, response) => {
      if (!holding) return 200;
      held.push(response);
      return 'handled';
    });
    cleanups.push(() => receiver.close());
    const t = await testHooks(
      {
        events: EVENTS,
        store: db.dialect(),
        delivery: { concurrency: CONCURRENCY, connectionsPerOrigin: CONCURRENCY, concurrencyPerSubscription: CONCURRENCY, ownerShare: 1, pollInterval: '1h' },
      },
      { start: false },
    );
    cleanups.unshift(() => t.close());
    await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    for (let i = 0; i < SAVED; i++) await t.hooks.model('Book', 'created', { id: i, ownerId: 'alice' });

    // What each pass asked for and took: the step-by-step fan-out reads events with `pendingEvents`,
    // PostgreSQL's one-statement pass (at most its own batch of events) with `fanOutPass`.
    const passes: Array<{ asked: number; took: number }> = [];
    const pendingEvents = KyselyStore.prototype.pendingEvents;
    vi.spyOn(KyselyStore.prototype, 'pendingEvents').mockImplementation(async function (this: KyselyStore, limit, now) {
      const events = await pendingEvents.call(this, limit, now);
      passes.push({ asked: limit, took: events.length });
      return events;
    });
    const fanOutPass = KyselyStore.prototype.fanOutPass;
    vi.spyOn(KyselyStore.prototype, 'fanOutPass').mockImplementation(async function (this: KyselyStore, limit, now, handoff, recordsForPass) {
      const pass = await fanOutPass.call(this, limit, now, handoff, recordsForPass);
      passes.push({ asked: limit, took: pass.events.length });
      return pass;
    });

    await t.hooks.start();
    await receiver.waitFor(CONCURRENCY);
    // Let any pass that would follow run (it needs no answer from the receiver).
    await new Promise((resolve) => setTimeout(resolve, 200));
    // No pass for a remainder under a quarter of the pass before it: SQLite takes 500 and stops (the old
    // dispatcher went on with a pass of 28); PostgreSQL's passes of its own size fill the queue.
    expect(passes.length).toBeGreaterThan(0);
    expect(passes[0]!.took).toBeGreaterThan(0);
    for (let i = 1; i < passes.length; i++) expect(passes[i]!.asked * 4).toBeGreaterThanOrEqual(passes[i - 1]!.took);
    if (engine === 'sqlite') expect(passes).toEqual([{ asked: 500, took: 500 }]);

    holding = false;
    for (const response of held.splice(0)) response.writeHead(200).end('');
    await receiver.waitFor(SAVED, 20_000);
    await t.hooks.idle({ timeout: '10s' });
    // Every event once (a pass held back is not a pass lost).
    expect(new Set(receiver.received.map((r) => r.json.data.id)).size).toBe(SAVED);
    expect(receiver.received).toHaveLength(SAVED);
  });
});
