/**
 * On PostgreSQL a fan-out pass writes the attempt records waiting out their batch window in its own
 * statement, so that both share one commit (`AttemptRecorder.recordsForPass`). The recorder and the store
 * are real, on a real database; the batch window is long, so that only the pass can have written what the
 * recorder held: each record's `record()` resolves once the pass has written it, `onSent` tells of it once,
 * and a batch the pass hands back is written by the recorder itself, at once.
 */
import { CompiledQuery } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SentInfo } from '../src/config/options.js';
import { AttemptRecorder } from '../src/delivery/attempt-recorder.js';
import type { FinishedAttempt } from '../src/delivery/attempt-runner.js';
import { silentLogger, type Logger } from '../src/logger.js';
import type { AttemptRecord, ClaimedDelivery, KyselyStore } from '../src/store/kysely-store.js';
import { newDeliveryRow } from '../src/store/rows.js';
import type { EventTable } from '../src/store/schema.js';
import { ENGINES, TestDatabase } from './support/database.js';

const T0 = Date.now();
const LONG_WINDOW_MS = 10_000;

function eventRow(i: number, status: EventTable['status']): EventTable {
  return { id: `evt_${i}`, name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: `{"id":${i}}`, body: null, status, error: null, created_at: T0 + i };
}

function delivered(claim: ClaimedDelivery, error: string | null = null): AttemptRecord {
  const attempt = { id: `att_${claim.id}`, delivery_id: claim.id, number: claim.attempt, started_at: T0, duration_ms: 2, status_code: 200, response_excerpt: 'ok', error, outcome: 'delivered' as const };
  return {
    claim: { attempt: claim.attempt, leaseUntil: claim.leaseUntil },
    attempt,
    delivery: { id: claim.id, status: 'delivered', attempts: claim.attempt, due_at: 0, last_status_code: 200, last_error: null },
    streak: { subscriptionId: claim.subscriptionId, failed: false },
  };
}

if (ENGINES.includes('postgres')) {
  describe('attempt records written by a fan-out pass (postgres)', () => {
    let db: TestDatabase;
    let store: KyselyStore;
    let told: string[];
    let warnings: string[];
    let recorder: AttemptRecorder;
    beforeEach(async () => {
      db = new TestDatabase('postgres');
      await db.init();
      store = await db.migrated(db.dialect({ batchWindowMs: LONG_WINDOW_MS }));
      told = [];
      warnings = [];
      const logger: Logger = { debug() {}, info() {}, warn: (_, msg = '') => void warnings.push(msg), error: (_, msg = '') => void warnings.push(msg) };
      recorder = new AttemptRecorder({ store, disableAfterMs: null, onSent: (info) => void told.push(info.deliveryId), onSubscriptionDisabled: undefined, logger });
    });
    afterEach(async () => {
      await store.destroy();
      await db.close();
    });

    /** Two events delivered to two subscriptions each, claimed; two more saved, waiting for the next pass. */
    async function claimedAndWaiting(): Promise<ClaimedDelivery[]> {
      for (const i of [0, 1]) {
        await store.insertSubscription({
          id: `sub_${i}`, owner: 'alice', event: 'book.added', target: `https://example.com/${i}`, active: 1, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
          previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0 - 1, updated_at: T0 - 1,
        });
      }
      for (const i of [1, 2]) await store.append(eventRow(i, 'done'), [0, 1].map((s) => ({ ...newDeliveryRow(`evt_${i}`, `sub_${s}`, T0), id: `dlv_${i}_${s}`, due_at: T0 - 10 })));
      const claims = await store.claimDue(100, T0, T0 + 60_000);
      expect(claims).toHaveLength(4);
      for (const i of [3, 4]) await store.append(eventRow(i, 'pending'));
      return claims;
    }

    const finished = (record: AttemptRecord): FinishedAttempt => ({ record, sent: () => ({ deliveryId: record.delivery.id }) as SentInfo });
    const statuses = async (ids: readonly string[]) => {
      const rows = await store.db.selectFrom('resthooks_deliveries').select(['id', 'status']).where('id', 'in', ids).execute();
      return ids.map((id) => rows.find((r) => r.id === id)?.status);
    };
    const pass = (take: () => ReturnType<AttemptRecorder['recordsForPass']>) => store.fanOutPass(10, Date.now(), { capacity: 100, leaseUntil: Date.now() + 60_000 }, take);

    it('the batch waiting out its window is written by the next pass; each record resolves then, and is told of once', async () => {
      const claims = await claimedAndWaiting();
      let resolved = 0;
      const records = claims.map((c) => recorder.record(finished(delivered(c))).then(() => void resolved++));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(resolved).toBe(0); // waiting out the window
      const shared = recorder.recordsForPass();
      expect(shared?.records.map((r) => r.delivery.id).sort()).toEqual(claims.map((c) => c.id).sort());
      expect(recorder.recordsForPass()).toBeUndefined(); // taken once
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(resolved).toBe(0); // until the pass has written them
      const { events, claimed } = await pass(() => shared);
      expect(events.map((e) => e.id)).toEqual(['evt_3', 'evt_4']);
      expect(claimed).toHaveLength(4);
      // Well within the ten-second window: the pass wrote them, the recorder did not wait for the window again.
      await Promise.all(records);
      expect(await statuses(claims.map((c) => c.id))).toEqual(Array(4).fill('delivered'));
      expect(told.sort()).toEqual(claims.map((c) => c.id).sort());
      // The next attempt that finishes waits out a window of its own, and may ride the next pass.
      const next = recorder.record(finished(delivered(claimed[0]!)));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const again = recorder.recordsForPass();
      expect(again?.records.map((r) => r.delivery.id)).toEqual([claimed[0]!.id]);
      await pass(() => again);
      await next;
      expect(await statuses([claimed[0]!.id])).toEqual(['delivered']);
      await recorder.settled();
      expect(warnings).toEqual([]);
    });

    it('a batch the pass hands back (the database refused it with the pass) is written by the recorder at once, taken apart', async () => {
      const claims = await claimedAndWaiting();
      await store.db.executeQuery(
        CompiledQuery.raw(`create function refuse_poison() returns trigger language plpgsql as $$ begin if new.first_attempt_excerpt is not null and exists (select 1 from resthooks_deliveries where id = new.id and last_error = 'poison') then raise exception 'refused by the test'; end if; return new; end $$`),
      );
      await store.db.executeQuery(CompiledQuery.raw('create trigger refuse_poison before update on resthooks_deliveries for each row execute function refuse_poison()'));
      await store.db.updateTable('resthooks_deliveries').set({ last_error: 'poison' }).where('id', '=', claims[0]!.id).execute();
      const records = claims.map((c) => recorder.record(finished(delivered(c))));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const shared = recorder.recordsForPass()!;
      const { events } = await pass(() => shared);
      expect(events.map((e) => e.id)).toEqual(['evt_3', 'evt_4']); // the pass, alone
      // Written by the recorder's own path well within the window: the refused batch taken apart, the
      // refused record written without its texts (the trigger refuses a first attempt kept with them).
      await Promise.all(records);
      expect(await statuses(claims.map((c) => c.id))).toEqual(Array(4).fill('delivered'));
      expect(told.sort()).toEqual(claims.map((c) => c.id).sort());
      expect(warnings).toContain('resthooks: the database refused a batch of attempt records; wrote them one by one');
    });

    it('while passes take the batches, a batch waits up to three windows for the next pass', async () => {
      const claims = await claimedAndWaiting();
      const windowMs = 500;
      const riding = new AttemptRecorder({ store: await db.migrated(db.dialect({ batchWindowMs: windowMs })), disableAfterMs: null, onSent: undefined, onSubscriptionDisabled: undefined, logger: silentLogger });
      const first = riding.record(finished(delivered(claims[0]!)));
      const shared = riding.recordsForPass()!;
      await pass(() => shared);
      await first;
      const second = riding.record(finished(delivered(claims[1]!)));
      // Past one window, well before three: still waiting for a pass, not written on its own.
      await new Promise((resolve) => setTimeout(resolve, windowMs + 200));
      const again = riding.recordsForPass();
      expect(again?.records.map((r) => r.delivery.id)).toEqual([claims[1]!.id]);
      await pass(() => again);
      await second;
      expect(await statuses([claims[0]!.id, claims[1]!.id])).toEqual(['delivered', 'delivered']);
    });

    it('no batch rides with a claim to give back in it, or without a batch window', async () => {
      const claims = await claimedAndWaiting();
      const withRelease = new AttemptRecorder({ store: await db.migrated(db.dialect({ batchWindowMs: 100 })), disableAfterMs: null, onSent: undefined, onSubscriptionDisabled: undefined, logger: silentLogger });
      const release = { id: claims[1]!.id, claim: { attempt: claims[1]!.attempt, leaseUntil: claims[1]!.leaseUntil }, dueAt: T0 };
      const written = [withRelease.record(finished(delivered(claims[0]!))), withRelease.record({ release })];
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(withRelease.recordsForPass()).toBeUndefined();
      await Promise.all(written); // by the recorder, after its window
      const noWindow = new AttemptRecorder({ store: await db.migrated(db.dialect({ batchWindowMs: 0 })), disableAfterMs: null, onSent: undefined, onSubscriptionDisabled: undefined, logger: silentLogger });
      const alone = noWindow.record(finished(delivered(claims[2]!)));
      expect(noWindow.recordsForPass()).toBeUndefined();
      await alone;
      expect(await statuses([claims[0]!.id, claims[1]!.id, claims[2]!.id])).toEqual(['delivered', 'pending', 'delivered']);
    });
  });
}
