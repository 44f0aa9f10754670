/**
 * The outbox as the operator sees it: events waiting for fan-out or given up on, with why. Read-only,
 * beside the store (like recent-events.ts); the transitions (`refanEvent`, setbacks) are the store's.
 * @module
 */
import { sql } from 'kysely';
import type { KyselyStore } from './kysely-store.js';
import { FRESH_EVENT_COLUMNS, freshEventRow, toStoredEvent, type StoredEvent } from './records.js';
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

/**
 * Newest first. Served by the partial indexes on pending and undeliverable events; pending ones also
 * come from the fresh table (migration 0006), which has no index but its key and holds only the events
 * the fan-out has not reached yet. The fresh table is read first: an event the fan-out moves between the
 * two reads is then seen twice (kept once), never missed.
 */
export async function listOutbox(store: KyselyStore, filter: OutboxFilter): Promise<OutboxEvent[]> {
  const { owner, before, limit } = filter;
  const rows: EventRow[] = [];
  if (filter.status === 'pending') {
    let fresh = store.db.selectFrom('resthooks_outbox').select(FRESH_EVENT_COLUMNS).orderBy('id', 'desc').limit(limit);
    if (owner !== undefined) fresh = fresh.where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]));
    if (before !== undefined) fresh = fresh.where('id', '<', before);
    rows.push(...(await fresh.execute()).map(freshEventRow));
  }
  let query = store.db.selectFrom('resthooks_events').selectAll().where('status', '=', STATUS_LITERAL[filter.status]).orderBy('id', 'desc').limit(limit);
  if (owner !== undefined) query = query.where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]));
  if (before !== undefined) query = query.where('id', '<', before);
  const indexed = await query.execute();
  const moved = new Set(indexed.map((row) => row.id));
  const merged = [...rows.filter((row) => !moved.has(row.id)), ...indexed].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return merged.slice(0, limit).map(toOutboxEvent);
}

/**
 * One event, if it exists and (with `owner`) is addressed to that owner or to every owner. An event not
 * in `resthooks_events` may still be fresh. The fan-out moves an event in one transaction, and only from
 * the fresh table into `resthooks_events`: one found in neither was moved between the two reads, and is
 * read again where it went.
 */
export async function getOutboxEvent(store: KyselyStore, id: string, owner?: string): Promise<OutboxEvent | undefined> {
  let query = store.db.selectFrom('resthooks_events').selectAll().where('id', '=', id);
  if (owner !== undefined) query = query.where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]));
  const row = await query.executeTakeFirst();
  if (row) return toOutboxEvent(row);
  let fresh = store.db.selectFrom('resthooks_outbox').select(FRESH_EVENT_COLUMNS).where('id', '=', id);
  if (owner !== undefined) fresh = fresh.where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]));
  const freshRow = await fresh.limit(1).executeTakeFirst();
  if (freshRow) return toOutboxEvent(freshEventRow(freshRow));
  // Moved between the two reads (the fan-out got there): it is in resthooks_events now.
  const moved = await query.executeTakeFirst();
  return moved && toOutboxEvent(moved);
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
