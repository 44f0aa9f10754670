/**
 * The attempt recorder on a real store (a SQLite file and a PostgreSQL database): what a batch of finished
 * attempts writes, and what becomes of a batch the database cannot take while its attempts' signal aborts.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sqliteStore, type Logger } from '../src/index.js';
import { AttemptRecorder } from '../src/delivery/attempt-recorder.js';
import type { FinishedAttempt } from '../src/delivery/attempt-runner.js';
import { newId } from '../src/ids.js';
import { KyselyStore, type ClaimedDelivery } from '../src/store/kysely-store.js';
import { newDeliveryRow } from '../src/store/rows.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { eventually, tempDir } from './support/hooks.js';

const T0 = 1_700_000_000_000;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** `count` deliveries of one event to one subscription each, claimed. */
async function claimed(store: KyselyStore, count: number): Promise<ClaimedDelivery[]> {
  const subscriptions = Array.from({ length: count }, () => newId('sub'));
  for (const id of subscriptions) {
    await store.insertSubscription({
      id, owner: 'alice', event: 'book.added', target: 'https://example.com/h', active: 1, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
      previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0, updated_at: T0,
    });
  }
  const event = { id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{}', body: null, status: 'done' as const, error: null, created_at: T0 };
  await store.append(event, subscriptions.map((s) => newDeliveryRow(event.id, s, T0)));
  return store.claimDue(count, T0, T0 + 60_000);
}

function delivered(claim: ClaimedDelivery): FinishedAttempt {
  return {
    record: {
      claim: { attempt: claim.attempt, leaseUntil: claim.leaseUntil },
      attempt: { id: newId('att'), delivery_id: claim.id, number: 1, started_at: T0, duration_ms: 3, status_code: 200, response_excerpt: 'ok', error: null, outcome: 'delivered' },
      delivery: { id: claim.id, status: 'delivered', attempts: 1, due_at: 0, last_status_code: 200, last_error: null },
    },
  };
}

function givenBack(claim: ClaimedDelivery): FinishedAttempt {
  return { release: { id: claim.id, claim: { attempt: claim.attempt, leaseUntil: claim.leaseUntil }, dueAt: T0 + 1 } };
}

describe.each(ENGINES)('the attempt recorder (%s)', (engine) => {
  it('writes a batch of delivered attempts without asking the store to give any claim back, and gives back only those handed back', async () => {
    const db = new TestDatabase(engine);
    await db.init();
    cleanups.push(() => db.close());
    const store = await db.migrated();
    cleanups.unshift(() => store.destroy());
    const claims = await claimed(store, 3);
    const releaseClaims = vi.spyOn(store, 'releaseClaims');
    const recorder = new AttemptRecorder({ store, disableAfterMs: null, onSent: undefined, onSubscriptionDisabled: undefined, logger: quiet });

    await Promise.all(claims.slice(0, 2).map((claim) => recorder.record(delivered(claim))));
    expect(releaseClaims).not.toHaveBeenCalled();
    await recorder.record(givenBack(claims[2]!));
    expect(releaseClaims).toHaveBeenCalledTimes(1);

    const statuses = await store.db.selectFrom('resthooks_deliveries').select(['id', 'status']).execute();
    expect(Object.fromEntries(statuses.map((row) => [row.id, row.status]))).toEqual({ [claims[0]!.id]: 'delivered', [claims[1]!.id]: 'delivered', [claims[2]!.id]: 'pending' });
  });
});

// SQLite is made unavailable by another connection holding its write lock (PostgreSQL restarts are pg-restart.test.ts's).
describe('the attempt recorder while the database cannot take its batch (sqlite)', () => {
  it('writes the batch once the database takes it again, unless its attempts\' signal aborted meanwhile: then it gives up', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const file = join(dir.path, 'store.db');
    const store = new KyselyStore(sqliteStore(new Database(file), { busyTimeoutMs: 20, checkpointer: false }));
    cleanups.unshift(() => store.destroy());
    await store.ready(true);
    const claims = await claimed(store, 2);
    const errors: string[] = [];
    const logger: Logger = { ...quiet, error: (_obj, msg = '') => void errors.push(msg) };
    const recorder = new AttemptRecorder({ store, disableAfterMs: null, onSent: undefined, onSubscriptionDisabled: undefined, logger });
    const locker = new Database(file);
    cleanups.unshift(() => locker.close());
    const statusOf = async (id: string) => (await store.db.selectFrom('resthooks_deliveries').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;

    // Kept while its signal holds: written once the lock goes.
    const running = new AbortController();
    locker.exec('begin immediate');
    const kept = recorder.record(delivered(claims[0]!), running.signal);
    await eventually(() => expect(errors).toContain('resthooks: could not record attempts; retrying'));
    locker.exec('commit');
    await kept;
    expect(await statusOf(claims[0]!.id)).toBe('delivered');

    // Given up once its signal aborts (the shutdown deadline): its lease brings the delivery back.
    const shuttingDown = new AbortController();
    locker.exec('begin immediate');
    const dropped = recorder.record(delivered(claims[1]!), shuttingDown.signal);
    await eventually(() => expect(errors.filter((msg) => msg === 'resthooks: could not record attempts; retrying')).toHaveLength(2));
    shuttingDown.abort(new Error('shutdown deadline'));
    await eventually(() => expect(errors).toContain('resthooks: could not record attempts at shutdown; their leases bring them back'));
    await dropped;
    locker.exec('commit');
    await recorder.settled();
    expect(await statusOf(claims[1]!.id)).toBe('in_flight');
  });
});
