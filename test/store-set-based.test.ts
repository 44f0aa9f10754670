/**
 * PostgreSQL writes a fan-out batch and a record batch as one statement each (array parameters, named
 * so the server plans them once per connection); SQLite keeps its statement per row. Both must leave the
 * same rows: the same seeded run of claims, take-overs and records of every outcome goes to a SQLite
 * store and a PostgreSQL store side by side, and every table and result is compared after each batch.
 */
import { CompiledQuery } from 'kysely';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { postgresStore } from '../src/index.js';
import { KyselyStore, type AttemptRecord, type ClaimedDelivery, type RecordedAttempts } from '../src/store/kysely-store.js';
import { newDeliveryRow } from '../src/store/rows.js';
import type { AttemptOutcomeKind, DeliveryStatus, EventTable, SubscriptionTable } from '../src/store/schema.js';
import { ENGINES, TestDatabase } from './support/database.js';

const T0 = 1_700_000_000_000;
const pad = (n: number) => String(n).padStart(8, '0');

function subscriptionRow(i: number): SubscriptionTable {
  return {
    id: `sub_${pad(i)}`, owner: 'alice', event: 'book.added', target: `https://example.com/${i}`, active: 1, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
    previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0, updated_at: T0,
  };
}
function eventRow(i: number, status: EventTable['status'] = 'done'): EventTable {
  return { id: `evt_${pad(i)}`, name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: `{"id":${i}}`, body: null, status, error: null, created_at: T0 };
}

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Outcome = 'delivered' | 'retry' | 'failed' | 'gone' | 'no-attempt';
const OUTCOMES: readonly Outcome[] = ['delivered', 'delivered', 'delivered', 'retry', 'retry', 'failed', 'gone', 'no-attempt'];
const STATUS_CODE: Record<Outcome, number | null> = { delivered: 200, retry: 503, failed: 422, gone: 410, 'no-attempt': null };
const STATUS: Record<Outcome, DeliveryStatus> = { delivered: 'delivered', retry: 'pending', failed: 'failed', gone: 'cancelled', 'no-attempt': 'cancelled' };

/** The record the recorder would write for `outcome`; texts with quotes, backslashes and braces (array literal syntax). */
function recordOf(claim: ClaimedDelivery, outcome: Outcome, now: number, retryInMs: number): AttemptRecord {
  const statusCode = STATUS_CODE[outcome];
  const lastError = outcome === 'retry' ? 'HTTP 503, "retry" {later}' : null;
  return {
    claim: { attempt: claim.attempt, leaseUntil: claim.leaseUntil },
    attempt:
      outcome === 'no-attempt'
        ? undefined
        : {
            id: `att_${claim.id}_${claim.attempt}`, delivery_id: claim.id, number: claim.attempt, started_at: now, duration_ms: 3, status_code: statusCode,
            response_excerpt: `HTTP ${statusCode} 'quoted' \\ {"a":[1]}`, error: lastError, outcome: outcome as AttemptOutcomeKind,
          },
    delivery: { id: claim.id, status: STATUS[outcome], attempts: outcome === 'no-attempt' ? claim.attempt - 1 : claim.attempt, due_at: outcome === 'retry' ? now + retryInMs : 0, last_status_code: statusCode, last_error: lastError },
    ...(outcome === 'gone' ? { goneSubscriptionId: claim.subscriptionId } : outcome === 'no-attempt' ? {} : { streak: { subscriptionId: claim.subscriptionId, failed: outcome !== 'delivered' } }),
  };
}

/** Every row of the tables a batch writes, with the engines' difference (bigint read as text) taken out. */
async function snapshot(store: KyselyStore) {
  const n = (x: unknown) => (x === null ? null : Number(x));
  const subscriptions = await store.db.selectFrom('resthooks_subscriptions').select(['id', 'active', 'failing_since', 'disabled_reason', 'updated_at']).orderBy('id').execute();
  const deliveries = await store.db.selectFrom('resthooks_deliveries').select(['id', 'status', 'attempts', 'due_at', 'last_status_code', 'last_error', 'updated_at']).orderBy('id').execute();
  // An attempt is written where the statements per row write it: a first attempt that delivered in its
  // delivery's row (migration 0007), every other one as a row of its own (`keptInRow` says which).
  const kept = await store.db
    .selectFrom('resthooks_deliveries')
    .select(['first_attempt_id as id', 'id as delivery_id', 'first_attempt_started_at as started_at', 'first_attempt_duration_ms as duration_ms', 'first_attempt_status_code as status_code', 'first_attempt_excerpt as response_excerpt'])
    .where('first_attempt_id', 'is not', null)
    .execute();
  const attempts = [
    ...(await store.db.selectFrom('resthooks_attempts').selectAll().execute()),
    ...kept.map((k) => ({ ...k, id: k.id!, number: 1, error: null, outcome: 'delivered' as const, started_at: k.started_at!, duration_ms: k.duration_ms! })),
  ].sort((x, y) => x.delivery_id.localeCompare(y.delivery_id) || Number(x.number) - Number(y.number));
  const events = await store.db.selectFrom('resthooks_events').select(['id', 'status']).orderBy('id').execute();
  return {
    subscriptions: subscriptions.map((s) => ({ ...s, active: n(s.active), failing_since: n(s.failing_since), updated_at: n(s.updated_at) })),
    deliveries: deliveries.map((d) => ({ ...d, attempts: n(d.attempts), due_at: n(d.due_at), last_status_code: n(d.last_status_code), updated_at: n(d.updated_at) })),
    attempts: attempts.map((a) => ({ ...a, number: n(a.number), started_at: n(a.started_at), duration_ms: n(a.duration_ms), status_code: n(a.status_code) })),
    events,
    keptInRow: kept.map((k) => k.delivery_id).sort(),
  };
}

type Coverage = Record<'stale' | 'disabled' | 'gone' | 'retry' | 'firstDeliveredOnly', number>;

/** The records written by a fan-out pass's statement (`recordsForPass`), as `recordAttempts` would report them. */
async function recordedByAPass(store: KyselyStore, records: readonly AttemptRecord[], now: number, disableAfterMs: number | null): Promise<RecordedAttempts> {
  if (records.length === 0) return store.recordAttempts(records, now, disableAfterMs);
  let recorded: RecordedAttempts | undefined;
  let handedBack = false;
  await store.fanOutPass(10, now, { capacity: 100, leaseUntil: now + 60_000 }, () => ({
    records,
    disableAfterMs,
    written: (result) => void (recorded = result),
    notWritten: () => void (handedBack = true),
  }));
  expect(handedBack).toBe(false);
  return recorded!;
}

/**
 * Twelve rounds on both stores at once: new events with a delivery to every subscription left, a claim of
 * everything due (lapsed leases taken over, leaving the older claims stale), and a shuffled batch of
 * records of random outcomes under random outstanding claims, with a random disabling window.
 */
async function seededRun(seed: number, stores: readonly [KyselyStore, KyselyStore], seen: Coverage, byAPass = false, outcomeList: readonly Outcome[] = OUTCOMES): Promise<void> {
  const next = random(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;
  const both = <T>(run: (store: KyselyStore) => Promise<T>) => Promise.all([run(stores[0]), run(stores[1])]);
  const sameOnBoth = async <T>(run: (store: KyselyStore) => Promise<T>): Promise<T> => {
    const [sqlite, postgres] = await both(run);
    expect(postgres).toEqual(sqlite);
    return sqlite;
  };
  const byId = (list: readonly ClaimedDelivery[]) => [...list].sort((x, y) => x.id.localeCompare(y.id));

  for (let i = 0; i < 6; i++) await both((s) => s.insertSubscription(subscriptionRow(i)));
  // One subscription failing since long ago: a failure with disabling on may disable it at once.
  await both((s) => s.updateSubscription(subscriptionRow(0).id, { failing_since: T0 - 10_000 }));
  let now = T0;
  let events = 0;
  let due = 0;
  // Claims made on both stores (SQLite's, PostgreSQL's), kept after a take-over: records under them are stale.
  const outstanding: Array<readonly [ClaimedDelivery, ClaimedDelivery]> = [];
  for (let round = 0; round < 12; round++) {
    now += 1_000;
    for (let e = 0; e < 2; e++) {
      const event = eventRow(++events);
      const live = await sameOnBoth(async (s) => (await s.db.selectFrom('resthooks_subscriptions').select('id').orderBy('id').execute()).map((r) => r.id));
      // Distinct due times, so that both engines claim in the same order.
      await both((s) => s.append(event, live.map((sub) => ({ ...newDeliveryRow(event.id, sub, now), id: `dlv_${event.id}_${sub}`, due_at: now - 500 + ++due }))));
    }
    const lease = now + pick([500, 1_500, 60_000]);
    const [sqliteClaims, postgresClaims] = await both((s) => s.claimDue(1_000, now, lease));
    const [a, b] = [byId(sqliteClaims), byId(postgresClaims)];
    expect(b.map((c) => [c.id, c.attempt, c.leaseUntil])).toEqual(a.map((c) => [c.id, c.attempt, c.leaseUntil]));
    a.forEach((claim, i) => outstanding.push([claim, b[i]!]));

    const chosen = new Map<string, number>(); // at most one record per delivery in a batch
    for (let i = 0; i < outstanding.length; i++) if (next() < 0.6) chosen.set(outstanding[i]![0].id, i);
    const batch = [...chosen.values()].sort(() => next() - 0.5).map((i) => outstanding[i]!);
    for (const i of [...chosen.values()].sort((x, y) => y - x)) outstanding.splice(i, 1);
    const outcomes = batch.map(() => pick(outcomeList));
    const retries = batch.map(() => pick([200, 2_000]));
    const disableAfter = pick([null, 0, 1_500, 5_000, 1e9]);
    now += 10;
    const [sqliteResult, postgresResult] = await both((s) => {
      const records = batch.map((pair, i) => recordOf(pair[s === stores[0] ? 0 : 1], outcomes[i]!, now, retries[i]!));
      return byAPass && s === stores[1] ? recordedByAPass(s, records, now, disableAfter) : s.recordAttempts(records, now, disableAfter);
    });
    const after = await sameOnBoth(snapshot);
    // A subscription a 410 deleted in the same batch is reported disabled by the statements per row when
    // its failure came first in the batch, and not by the set-based statement: either way it is gone, and
    // the recorder tells the app of no deleted subscription.
    const existing = new Set(after.subscriptions.map((x) => x.id));
    const summary = (r: typeof sqliteResult) => ({
      disabled: r.disabled.filter((id) => existing.has(id)).sort(),
      stale: r.stale.map((x) => x.delivery.id),
      withoutTexts: r.withoutTexts.length,
      released: r.released.length,
    });
    expect(summary(postgresResult)).toEqual(summary(sqliteResult));
    const stale = new Set(postgresResult.stale.map((r) => r.delivery.id));
    seen.stale += stale.size;
    seen.disabled += summary(postgresResult).disabled.length;
    seen.gone += outcomes.filter((o, i) => o === 'gone' && !stale.has(batch[i]![1].id)).length;
    seen.retry += outcomes.filter((o, i) => o === 'retry' && !stale.has(batch[i]![1].id)).length;
    // Batches of first attempts that all delivered (PostgreSQL writes them with a statement of their own).
    if (batch.length > 0 && batch.every(([claim], i) => claim.attempt === 1 && outcomes[i] === 'delivered')) seen.firstDeliveredOnly++;
  }
}

if (ENGINES.includes('postgres')) {
  describe('set-based writes on PostgreSQL', () => {
    let postgres: TestDatabase;
    beforeEach(async () => {
      postgres = new TestDatabase('postgres');
      await postgres.init();
    });
    afterEach(() => postgres.close());

    /** A PostgreSQL store whose pool notes every statement it sends (its text, and its name when it has one) but its plan mode. */
    function countingPostgres(): { store: KyselyStore; sent: Array<{ text: string; name?: string }> } {
      const sent: Array<{ text: string; name?: string }> = [];
      const pool = postgres.pool();
      pool.on('connect', (client: pg.PoolClient) => {
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
          const first = args[0] as string | { text: string; name?: string };
          // A connection's plan mode, set when it changes (at most once per connection here), not per statement.
          if (typeof first === 'string' && /^(set|reset) plan_cache_mode/.test(first)) return query(...args);
          sent.push(typeof first === 'string' ? { text: first } : { text: first.text, ...(first.name === undefined ? {} : { name: first.name }) });
          return query(...args);
        };
      });
      return { store: new KyselyStore(postgresStore(pool)), sent };
    }

    it('an outbox insert is a named statement, and a fan-out batch and a record batch are one named statement each, whatever their size', async () => {
      const { store, sent } = countingPostgres();
      expect((await store.migrate()).error).toBeUndefined();
      for (let i = 0; i < 50; i++) await store.insertSubscription(subscriptionRow(i));
      const events = [eventRow(1, 'pending'), eventRow(2, 'pending')];
      sent.length = 0;
      for (const event of events) await store.append(event);
      // A save's outbox INSERT too: prepared once per connection, not parsed and planned per save.
      expect(sent).toEqual([expect.objectContaining({ name: expect.stringMatching(/^resthooks_/) }), expect.objectContaining({ name: sent[0]!.name })]);
      const subscriptions = await store.activeSubscriptionRowsFor('book.added', 'alice');
      const items = events.map((e) => ({ eventId: e.id, deliveries: subscriptions.map((s) => newDeliveryRow(e.id, s.id, T0)) }));

      sent.length = 0;
      expect((await store.commitFanOut(items)).size).toBe(100);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.name).toMatch(/^resthooks_/);
      // Repeated: nothing new, through the same prepared statement.
      expect((await store.commitFanOut(items)).size).toBe(0);
      expect(sent.map((s) => s.name)).toEqual([sent[0]!.name, sent[0]!.name]);
      expect((await store.db.selectFrom('resthooks_events').select('status').execute()).map((e) => e.status)).toEqual(['done', 'done']);

      const claims = await store.claimDue(200, T0, T0 + 60_000);
      expect(claims).toHaveLength(100);
      sent.length = 0;
      const result = await store.recordAttempts(claims.map((c, i) => recordOf(c, i % 10 === 0 ? 'retry' : 'delivered', T0 + 1, 5_000)), T0 + 1, 60_000);
      expect(result).toEqual({ disabled: [], stale: [], withoutTexts: [], released: [] });
      expect(sent).toHaveLength(1);
      expect(sent[0]!.name).toMatch(/^resthooks_/);
      const counts = await store.db.selectFrom('resthooks_deliveries').select(['status', (eb) => eb.fn.countAll<string>().as('n')]).groupBy('status').orderBy('status').execute();
      expect(counts.map((c) => [c.status, Number(c.n)])).toEqual([['delivered', 90], ['pending', 10]]);
      // The 90 first attempts that delivered are kept in their deliveries' rows; only the 10 retries are attempt rows.
      expect((await store.db.selectFrom('resthooks_attempts').select('outcome').execute()).map((a) => a.outcome)).toEqual(Array(10).fill('retry'));
      expect(await store.db.selectFrom('resthooks_deliveries').select('id').where('first_attempt_id', 'is not', null).execute()).toHaveLength(90);
      await store.destroy();
    });

    it.each([
      ['its own statement', false],
      ["a fan-out pass's statement", true],
    ])("records of every outcome, stale ones among them, written by %s, leave the same rows as SQLite's statements per row (seeded runs)", async (_, byAPass) => {
      const seen: Coverage = { stale: 0, disabled: 0, gone: 0, retry: 0, firstDeliveredOnly: 0 };
      for (let seed = 1; seed <= 6; seed++) {
        const databases = [new TestDatabase('sqlite'), new TestDatabase('postgres')] as const;
        try {
          await Promise.all(databases.map((d) => d.init()));
          await seededRun(seed, [await databases[0].migrated(), await databases[1].migrated()], seen, byAPass);
        } finally {
          for (const d of databases) await d.close();
        }
      }
      // The runs covered what they are meant to: stale records, disabling, deletions (410), retries.
      const { firstDeliveredOnly: mayBeNone, ...covered } = seen;
      void mayBeNone;
      expect(Object.values(covered).every((count) => count > 0), JSON.stringify(seen)).toBe(true);
    }, 180_000);

    it.each([
      ['its own statement', false],
      ["a fan-out pass's statement", true],
    ])("batches of deliveries only (first attempts kept in their rows, later attempts, stale ones, a failing subscription's streak ended), written by %s, leave the same rows as SQLite's statements per row (seeded runs)", async (_, byAPass) => {
      const seen: Coverage = { stale: 0, disabled: 0, gone: 0, retry: 0, firstDeliveredOnly: 0 };
      for (let seed = 1; seed <= 4; seed++) {
        const databases = [new TestDatabase('sqlite'), new TestDatabase('postgres')] as const;
        try {
          await Promise.all(databases.map((d) => d.init()));
          const stores = [await databases[0].migrated(), await databases[1].migrated()] as const;
          await seededRun(seed, stores, seen, byAPass, ['delivered']);
          // The subscription failing since long ago (see seededRun) succeeded since: its streak is over on both.
          expect((await stores[1].db.selectFrom('resthooks_subscriptions').select('failing_since').where('id', '=', subscriptionRow(0).id).executeTakeFirstOrThrow()).failing_since).toBeNull();
        } finally {
          for (const d of databases) await d.close();
        }
      }
      expect(seen.stale > 0 && seen.firstDeliveredOnly > 0, JSON.stringify(seen)).toBe(true);
    }, 180_000);

    /** Two events fanned out to `subscriptions`, claimed; then two more saved, waiting for the next pass. */
    async function claimedAndWaiting(store: KyselyStore, subscriptions: number) {
      expect((await store.migrate()).error).toBeUndefined();
      for (let i = 0; i < subscriptions; i++) await store.insertSubscription(subscriptionRow(i));
      for (const event of [eventRow(1), eventRow(2)]) {
        await store.append(event, Array.from({ length: subscriptions }, (_, i) => ({ ...newDeliveryRow(event.id, subscriptionRow(i).id, T0), id: `dlv_${event.id}_${i}`, due_at: T0 - 1 })));
      }
      const claims = await store.claimDue(100, T0, T0 + 60_000);
      expect(claims).toHaveLength(2 * subscriptions);
      for (const event of [eventRow(3, 'pending'), eventRow(4, 'pending')]) await store.append({ ...event, created_at: T0 + 1 });
      return claims;
    }

    it("a fan-out pass writes the record batch it is given in its own statement: one named statement, one commit, the retry counted once it has ended", async () => {
      const { store, sent } = countingPostgres();
      const claims = await claimedAndWaiting(store, 3);
      const records = claims.map((c, i) => recordOf(c, i === 0 ? 'retry' : 'delivered', T0 + 10, 5_000));
      const dueWrites = store.dueWrites;
      let recorded: RecordedAttempts | undefined;
      let dueWritesAsWritten = Number.NaN;
      sent.length = 0;
      const pass = await store.fanOutPass(10, T0 + 10, { capacity: 100, leaseUntil: T0 + 70_000 }, () => ({
        records,
        disableAfterMs: 60_000,
        written: (result) => {
          recorded = result;
          dueWritesAsWritten = store.dueWrites;
        },
        notWritten: () => expect.unreachable('the records were written'),
      }));
      expect(sent).toHaveLength(1);
      expect(sent[0]!.name).toMatch(/^resthooks_/);
      expect(recorded).toEqual({ disabled: [], stale: [], withoutTexts: [], released: [] });
      // A retry made due: counted after the write (a read of the next due time made during it is not kept).
      expect(dueWritesAsWritten).toBe(dueWrites + 1);
      expect(pass.events.map((e) => e.id)).toEqual(['evt_00000003', 'evt_00000004']);
      expect(pass.claimed).toHaveLength(6);
      const rows = await store.db.selectFrom('resthooks_deliveries').select(['event_id', 'status']).orderBy('id').execute();
      const byEvent = (...ids: string[]) => rows.filter((r) => ids.includes(r.event_id)).map((r) => r.status).sort();
      expect(byEvent('evt_00000001', 'evt_00000002')).toEqual(['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'pending']);
      expect([...byEvent('evt_00000003'), ...byEvent('evt_00000004')]).toEqual(Array(6).fill('in_flight'));
      expect((await store.db.selectFrom('resthooks_events').select('status').execute()).map((e) => e.status)).toEqual(['done', 'done', 'done', 'done']);
      await store.destroy();
    });

    it('a record batch the database refuses goes back to its owner, and the pass runs alone', async () => {
      const { store, sent } = countingPostgres();
      const claims = await claimedAndWaiting(store, 2);
      await store.db.executeQuery(CompiledQuery.raw(`create function refuse_poison() returns trigger language plpgsql as $$ begin if new.error like '%poison%' then raise exception 'refused by the test'; end if; return new; end $$`));
      await store.db.executeQuery(CompiledQuery.raw('create trigger refuse_poison before insert on resthooks_attempts for each row execute function refuse_poison()'));
      const poisoned = (c: ClaimedDelivery, i: number): AttemptRecord => {
        const record = recordOf(c, 'retry', T0 + 10, 5_000);
        return i === 0 ? { ...record, attempt: { ...record.attempt!, error: 'poison' } } : record;
      };
      let handedBack = 0;
      sent.length = 0;
      const pass = await store.fanOutPass(10, T0 + 10, { capacity: 100, leaseUntil: T0 + 70_000 }, () => ({
        records: claims.map(poisoned),
        disableAfterMs: null,
        written: () => expect.unreachable('the database refused the records'),
        notWritten: () => void handedBack++,
      }));
      expect(handedBack).toBe(1);
      expect(sent).toHaveLength(2); // the pass with the records, refused; then the pass alone
      expect(pass.events.map((e) => e.id)).toEqual(['evt_00000003', 'evt_00000004']);
      expect(pass.claimed).toHaveLength(4);
      // Nothing of the refused statement was written: the claimed deliveries are still in flight.
      const claimed = await store.db.selectFrom('resthooks_deliveries').select('status').where('id', 'in', claims.map((c) => c.id)).execute();
      expect(claimed.map((d) => d.status)).toEqual(Array(4).fill('in_flight'));
      // A batch that names a delivery twice is not tried with the pass at all.
      handedBack = 0;
      sent.length = 0;
      await store.fanOutPass(10, T0 + 20, { capacity: 100, leaseUntil: T0 + 70_000 }, () => ({
        records: [recordOf(claims[1]!, 'delivered', T0 + 20, 0), recordOf(claims[1]!, 'delivered', T0 + 20, 0)],
        disableAfterMs: null,
        written: () => expect.unreachable('a batch with a delivery twice is not written by a pass'),
        notWritten: () => void handedBack++,
      }));
      expect(handedBack).toBe(1);
      expect(sent).toHaveLength(1);
      await store.destroy();
    });
  });
}
