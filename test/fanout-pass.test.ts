/**
 * On PostgreSQL a dispatcher pass with the default finder is one statement: it reads the due events and
 * their subscriptions, marks the events done and inserts their deliveries claimed. It must do what the
 * pass step by step does (the reference, and what SQLite runs): the same events taken, the same claims,
 * the same rows, the same stop at the queue's room; and two dispatchers at once fan each event out once.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger, StoreDialect } from '../src/index.js';
import { fanOutBatch, type FanOutResult } from '../src/delivery/fanout.js';
import { KyselyStore, type ClaimedDelivery } from '../src/store/kysely-store.js';
import { FAN_OUT_PASS_EVENTS } from '../src/store/postgres/set-based-writes.js';
import type { EventTable, SubscriptionTable } from '../src/store/schema.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';

const T0 = 1_700_000_000_000;
const NOW = T0 + 1_000;
const LEASE_UNTIL = NOW + 75_000;
const pad = (n: number) => String(n).padStart(8, '0');

function subscription(i: number, owner: string, change: Partial<SubscriptionTable> = {}): SubscriptionTable {
  return {
    id: `sub_${pad(i)}`, owner, event: 'book.added', target: `https://example.com/${i}`, active: 1, secret: `whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0${i}`,
    previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0, updated_at: T0, ...change,
  };
}
function event(i: number, owner: string | null, change: Partial<EventTable> = {}): EventTable {
  return { id: `evt_${pad(i)}`, name: 'book.added', model: 'Book', action: 'created', owner, all_owners: 0, data: `{"id":${i},"q":"it's \\"quoted\\""}`, body: null, status: 'pending', error: null, created_at: T0, ...change };
}

const SUBSCRIPTIONS = [
  subscription(1, 'alice'),
  subscription(2, 'alice', { failing_since: T0 - 5, max_per_second: 2.5, previous_secrets: '[{"secret":"whsec_b2xk","expiresAt":1}]' }),
  subscription(3, 'bob'),
  subscription(4, 'alice', { active: 0, disabled_reason: 'off' }),
  subscription(5, 'alice', { created_at: T0 + 10 }), // only events from T0 + 10 on reach it
  subscription(6, 'alice', { event: 'other.event' }),
];
const EVENTS = [
  event(1, 'alice'),
  event(2, null, { all_owners: 1, model: null, action: null, body: ',"changes":["title"]' }),
  event(3, 'bob'),
  event(4, 'alice', { name: 'other.event' }),
  event(5, 'carol'), // reaches nobody
  event(6, 'alice', { created_at: T0 + 20 }),
  event(7, 'alice', { status: 'done' }),
  event(8, 'bob'),
];

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A migrated store on a fresh database, seeded; `oneStatement: false` makes it fan out step by step. */
async function seeded(databases: TestDatabase[], engine: Engine, oneStatement: boolean): Promise<{ store: KyselyStore; dialect: StoreDialect }> {
  const db = new TestDatabase(engine);
  databases.push(db);
  await db.init();
  const base = db.dialect();
  const dialect: StoreDialect = { ...base, capabilities: { ...base.capabilities, fansOutInOneStatement: oneStatement && base.capabilities.fansOutInOneStatement === true } };
  const store = await db.migrated(dialect);
  for (const s of SUBSCRIPTIONS) await store.insertSubscription(s);
  for (const e of EVENTS) await store.append(e);
  // One event waits for a later lookup try: not due yet.
  await store.db.updateTable('resthooks_events').set({ next_fanout_at: NOW + 60_000, fanout_attempts: 1 }).where('id', '=', event(8, 'bob').id).execute();
  return { store, dialect };
}

/** A pass's result and the rows it left, without the delivery ids (fresh on every run). */
async function passOf(store: KyselyStore, limit: number, capacity: number) {
  vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
  let result: FanOutResult;
  try {
    result = await fanOutBatch({ store, customFind: undefined, lookupRetry: { attempts: 3, delayMs: 10, maxDelayMs: 40 }, logger: quiet }, limit, { capacity, leaseUntil: LEASE_UNTIL });
  } finally {
    vi.useRealTimers();
  }
  const claim = ({ id: _id, ...rest }: ClaimedDelivery) => rest;
  const n = (x: unknown) => (x === null ? null : Number(x));
  const deliveries = await store.db.selectFrom('resthooks_deliveries').select(['event_id', 'subscription_id', 'status', 'attempts', 'due_at', 'body', 'created_at', 'updated_at']).orderBy('event_id').orderBy('subscription_id').execute();
  const events = await store.db.selectFrom('resthooks_events').select(['id', 'status', 'next_fanout_at']).orderBy('id').execute();
  return {
    taken: result.taken,
    more: result.more,
    created: result.created,
    deferred: result.deferred,
    eventIds: result.eventIds,
    claims: result.claimed.map(claim).sort((a, b) => `${a.eventId} ${a.subscriptionId}`.localeCompare(`${b.eventId} ${b.subscriptionId}`)),
    deliveries: deliveries.map((d) => ({ ...d, attempts: n(d.attempts), due_at: n(d.due_at), created_at: n(d.created_at), updated_at: n(d.updated_at) })),
    events: events.map((e) => ({ ...e, next_fanout_at: n(e.next_fanout_at) })),
    ids: result.claimed.map((c) => c.id),
  };
}

const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const db of databases.splice(0)) await db.close();
});

describe.skipIf(!ENGINES.includes('postgres'))('a fan-out pass in one statement on PostgreSQL', () => {
  // Every event due; rooms that end mid-batch, right where an event begins (events 1 and 2 make 2 + 3
  // deliveries) and inside one; a batch smaller than the due events.
  it.each([
    { limit: 500, capacity: 1024 },
    { limit: 500, capacity: 2 },
    { limit: 500, capacity: 5 },
    { limit: 500, capacity: 4 },
    { limit: 2, capacity: 1024 },
  ])('takes the same events, makes the same claims and rows as the pass step by step (limit $limit, room $capacity)', async ({ limit, capacity }) => {
    const one = await seeded(databases, 'postgres', true);
    const statements = vi.spyOn(one.dialect, 'executeBatch');
    const pass = await passOf(one.store, limit, capacity);
    // One statement, named (prepared once per connection), and it did the work (no fallback).
    expect(statements).toHaveBeenCalledTimes(1);
    expect(statements.mock.calls[0]![0]).toEqual([expect.objectContaining({ name: expect.stringMatching(/^resthooks_/) })]);
    expect(pass.claims.length).toBeGreaterThan(0);
    // Fresh, distinct delivery ids in the published format, sorting in the order they were made.
    expect(new Set(pass.ids).size).toBe(pass.ids.length);
    for (const id of pass.ids) expect(id).toMatch(/^dlv_[0-7][0-9a-hjkmnp-tv-z]{25}$/);

    // The reference on the same engine: SQLite keeps fresh events in a table of their own, which the
    // rows compared here would show; its pass is this same step-by-step code.
    const reference = await seeded(databases, 'postgres', false);
    const { ids: _ids, ...expected } = await passOf(reference.store, limit, capacity);
    const { ids: _ours, ...actual } = pass;
    expect(actual).toEqual(expected);
  });

  it('the events it takes and the deliveries it makes, as expected', async () => {
    const { store } = await seeded(databases, 'postgres', true);
    const pass = await passOf(store, 500, 1024);
    const pairs = pass.claims.map((c) => `${c.eventId.slice(-1)}:${c.subscriptionId.slice(-1)}`);
    // Event 2 reaches every owner; 6 is late enough for subscription 5; 5 reaches no one, 7 is done, 8 not due.
    expect(pairs).toEqual(['1:1', '1:2', '2:1', '2:2', '2:3', '3:3', '4:6', '6:1', '6:2', '6:5']);
    expect(pass).toMatchObject({ taken: 6, more: false, created: 10 });
    const second = pass.claims.find((c) => c.subscriptionId === 'sub_00000002')!;
    expect(second).toMatchObject({
      attempt: 1,
      leaseUntil: LEASE_UNTIL,
      body: null,
      subscription: { owner: 'alice', active: true, failingSince: T0 - 5, maxPerSecond: 2.5, previousSecrets: '[{"secret":"whsec_b2xk","expiresAt":1}]' },
    });
    expect(pass.claims.find((c) => c.eventId === 'evt_00000002')!.event).toEqual({
      name: 'book.added', model: null, action: null, owner: null, allOwners: true, data: EVENTS[1]!.data, body: ',"changes":["title"]', createdAt: T0,
    });
  });

  it('reads a bounded number of events per pass, and says when more wait', async () => {
    const db = new TestDatabase('postgres');
    databases.push(db);
    await db.init();
    const store = await db.migrated();
    await store.insertSubscription(subscription(1, 'alice'));
    for (let i = 1; i <= FAN_OUT_PASS_EVENTS + 2; i++) await store.append(event(i, 'alice'));
    const first = await passOf(store, 500, 1024);
    expect(first).toMatchObject({ taken: FAN_OUT_PASS_EVENTS, more: true });
    const second = await passOf(store, 500, 1024);
    expect(second).toMatchObject({ taken: 2, more: false });
  });

  it('two dispatchers at once fan every event out once, each delivery claimed by one of them', async () => {
    const db = new TestDatabase('postgres');
    databases.push(db);
    await db.init();
    const [a, b] = [await db.migrated(), new KyselyStore(db.dialect())];
    await a!.insertSubscription(subscription(1, 'alice'));
    await a!.insertSubscription(subscription(2, 'alice'));
    const count = 300;
    for (let i = 1; i <= count; i++) await a!.append(event(i, 'alice'));
    const claimed: string[] = [];
    const drain = async (store: KyselyStore) => {
      for (;;) {
        const { events, claimed: claims } = await store.fanOutPass(7, Date.now(), { capacity: 1024, leaseUntil: Date.now() + 60_000 });
        claimed.push(...claims.map((c) => `${c.eventId} ${c.subscriptionId}`));
        if (events.length === 0 && !(await store.hasPendingEvents())) return;
      }
    };
    await Promise.all([drain(a!), drain(b!), drain(a!), drain(b!)]);
    expect(claimed).toHaveLength(count * 2);
    expect(new Set(claimed).size).toBe(count * 2);
    const rows = await a!.db.selectFrom('resthooks_deliveries').select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(Number(rows.n)).toBe(count * 2);
  });
});
