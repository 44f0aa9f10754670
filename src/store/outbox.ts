/**
 * The outbox as the operator sees it: events waiting for fan-out or given up on, with why. Read-only,
 * beside the store (like recent-events.ts); the transitions (`refanEvent`, setbacks) are the store's.
 * @module
 */
import { sql } from 'kysely';
import type { KyselyStore } from './kysely-store.js';
import { toStoredEvent, type StoredEvent } from './records.js';
import type { EventRow, EventStatus } from './schema.js';

/** The statuses the outbox lists: events not fanned out (yet). */
export type OutboxStatus = Extract<EventStatus, 'pending' | 'undeliverable'>;
export const OUTBOX_STATUSES: readonly OutboxStatus[] = ['pending', 'undeliverable'];

/** An event with its fan-out state. */
export interface OutboxEvent extends StoredEvent {
  readonly status: EventStatus;
  /** Why it is not fanned out: the last failed subscription lookup, or `no owner: …`; null when none failed. */
  readonly error: string | null;
  /** Subscription lookups tried so far, failed ones included. */
  readonly fanOutAttempts: number;
  /** When a pending event's next fan-out try is due; null for an event that is done or undeliverable. */
  readonly nextFanOutAt: Date | null;
  /**
   * Whether `hooks.outbox.retry` applies: pending, or undeliverable because its finder kept failing.
   * An event with no owner (and not for every owner) can reach no subscription: fire it again with one.
   */
  readonly retryable: boolean;
}

export interface OutboxFilter {
  readonly status: OutboxStatus;
  /** Only events addressed to this owner or to every owner. */
  readonly owner?: string;
  readonly limit: number;
  /** Only events older than this id (newest-first paging). */
  readonly before?: string;
}

// Literals, so SQLite reads the partial index of the status (see kysely-store.ts on PENDING).
const STATUS_LITERAL = { pending: sql.lit<'pending'>('pending'), undeliverable: sql.lit<'undeliverable'>('undeliverable') } as const;

/** Newest first. Served by the partial indexes on pending and undeliverable events. */
export async function listOutbox(store: KyselyStore, filter: OutboxFilter): Promise<OutboxEvent[]> {
  let query = store.db.selectFrom('resthooks_events').selectAll().where('status', '=', STATUS_LITERAL[filter.status]).orderBy('id', 'desc').limit(filter.limit);
  if (filter.owner !== undefined) {
    const owner = filter.owner;
    query = query.where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]));
  }
  if (filter.before !== undefined) query = query.where('id', '<', filter.before);
  return (await query.execute()).map(toOutboxEvent);
}

/** One event, if it exists and (with `owner`) is addressed to that owner or to every owner. */
export async function getOutboxEvent(store: KyselyStore, id: string, owner?: string): Promise<OutboxEvent | undefined> {
  let query = store.db.selectFrom('resthooks_events').selectAll().where('id', '=', id);
  if (owner !== undefined) query = query.where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]));
  const row = await query.executeTakeFirst();
  return row && toOutboxEvent(row);
}

/** An event that reaches no subscription whatever the finder says: no owner, and not for every owner. */
export function hasNoOwner(row: Pick<EventRow, 'owner' | 'all_owners'>): boolean {
  return row.owner === null && Number(row.all_owners) !== 1;
}

export function toOutboxEvent(row: EventRow): OutboxEvent {
  const pending = row.status === 'pending';
  const next = Number(row.next_fanout_at);
  return {
    ...toStoredEvent(row),
    status: row.status,
    error: row.error,
    fanOutAttempts: Number(row.fanout_attempts),
    nextFanOutAt: pending ? new Date(next > 0 ? next : Number(row.created_at)) : null,
    retryable: !hasNoOwner(row) && (pending || row.status === 'undeliverable'),
  };
}
