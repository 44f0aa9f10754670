/**
 * The backlog as the store sees it, for metrics and health: deliveries waiting, due and in flight,
 * events waiting for fan-out, and subscriptions by state. Shared by every process on the store, so
 * any one of them reports the whole.
 * @module
 */
import { sql } from 'kysely';
import type { KyselyStore } from './kysely-store.js';

export interface Backlog {
  /** When it was read (ms since the epoch). */
  readonly readAt: number;
  /** Deliveries waiting for an attempt (due now or scheduled for later). */
  readonly pending: number;
  /** Of those, the ones due by `readAt`. */
  readonly due: number;
  /** Deliveries claimed by some process and not yet recorded. */
  readonly inFlight: number;
  /** How long the longest-waiting due delivery has been due, in ms; 0 when none is due. */
  readonly oldestDueAgeMs: number;
  /** Events in the outbox not yet fanned out (including those waiting for another lookup try). */
  readonly outboxPending: number;
  /** Age of the oldest of those events, in ms; 0 when there is none. */
  readonly outboxOldestAgeMs: number;
  readonly subscriptions: {
    readonly active: number;
    /** Active, and their last attempt failed (a failure streak is running). */
    readonly failing: number;
    /** Turned off by the engine for failing continuously (`delivery.disableAfter`). */
    readonly disabled: number;
    /** Turned off by their owner or the app. */
    readonly inactive: number;
  };
}

const count = (value: unknown) => Number(value ?? 0);
const ageOf = (earliest: unknown, now: number) => (earliest == null ? 0 : Math.max(0, now - Number(earliest)));

/**
 * Three aggregate reads. The deliveries' is limited to the rows of the partial due index (pending and
 * in flight: the backlog, not the log) and the events' to the partial pending index and the fresh table, so their cost
 * follows the backlog, not the history; the subscriptions' reads the subscriptions table.
 */
export async function readBacklog(store: KyselyStore, now: number): Promise<Backlog> {
  const { db } = store;
  const [deliveries, events, subscriptions] = await Promise.all([
    db
      .selectFrom('resthooks_deliveries')
      .select([
        sql<string | number>`sum(case when status = 'pending' then 1 else 0 end)`.as('pending'),
        sql<string | number>`sum(case when status = 'pending' and due_at <= ${now} then 1 else 0 end)`.as('due'),
        sql<string | number>`sum(case when status = 'in_flight' then 1 else 0 end)`.as('in_flight'),
        sql<string | number | null>`min(case when status = 'pending' and due_at <= ${now} then due_at end)`.as('earliest_due'),
      ])
      // Literals, as in the index's own predicate, so SQLite can use the partial index.
      .where('status', 'in', [sql.lit<'pending'>('pending'), sql.lit<'in_flight'>('in_flight')])
      .executeTakeFirst(),
    // Pending events: those in the pending index, and the fresh ones (migration 0006), in one statement so
    // that an event moved from one to the other meanwhile is counted once.
    db
      .selectFrom(
        db
          .selectFrom('resthooks_events')
          .select(['created_at'])
          .where('status', '=', sql.lit<'pending'>('pending'))
          .unionAll(db.selectFrom('resthooks_outbox').select(['created_at']))
          .as('waiting'),
      )
      .select([sql<string | number>`count(*)`.as('pending'), sql<string | number | null>`min(created_at)`.as('earliest')])
      .executeTakeFirst(),
    db
      .selectFrom('resthooks_subscriptions')
      .select([
        sql<string | number>`sum(case when active = 1 then 1 else 0 end)`.as('active'),
        sql<string | number>`sum(case when active = 1 and failing_since is not null then 1 else 0 end)`.as('failing'),
        sql<string | number>`sum(case when active = 0 and disabled_reason is not null then 1 else 0 end)`.as('disabled'),
        sql<string | number>`sum(case when active = 0 and disabled_reason is null then 1 else 0 end)`.as('inactive'),
      ])
      .executeTakeFirst(),
  ]);
  return {
    readAt: now,
    pending: count(deliveries?.pending),
    due: count(deliveries?.due),
    inFlight: count(deliveries?.in_flight),
    oldestDueAgeMs: ageOf(deliveries?.earliest_due, now),
    outboxPending: count(events?.pending),
    outboxOldestAgeMs: ageOf(events?.earliest, now),
    subscriptions: {
      active: count(subscriptions?.active),
      failing: count(subscriptions?.failing),
      disabled: count(subscriptions?.disabled),
      inactive: count(subscriptions?.inactive),
    },
  };
}

/** Whether the store answers a trivial query. */
export async function pingStore(store: KyselyStore): Promise<void> {
  await sql`select 1`.execute(store.db);
}
