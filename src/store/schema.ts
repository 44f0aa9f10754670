/**
 * The tables, as Kysely sees them. Times are integer milliseconds since the epoch and booleans are
 * 0/1 on every engine, so rows mean the same thing on SQLite and PostgreSQL.
 * @module
 */
import type { ColumnType, Generated } from 'kysely';

export type EventStatus = 'pending' | 'done' | 'undeliverable';
export type DeliveryStatus = 'pending' | 'in_flight' | 'delivered' | 'failed' | 'cancelled';
export type AttemptOutcomeKind = 'delivered' | 'retry' | 'failed' | 'gone' | 'cancelled';

export interface SubscriptionTable {
  id: string;
  owner: string;
  event: string;
  target: string;
  active: number;
  secret: string;
  /** JSON `[{ secret, expiresAt }]`: old secrets that still sign during a rotation's grace period. */
  previous_secrets: string | null;
  metadata: string | null;
  disabled_reason: string | null;
  failing_since: number | null;
  /** Deliveries per second at most (migration 0005); null: the configured default. */
  max_per_second: number | null;
  created_at: number;
  updated_at: number;
}

/** The outbox: one row per fired event, written on the caller's write path. */
export interface EventTable {
  id: string;
  name: string;
  model: string | null;
  action: string | null;
  /** `null` with `all_owners = 1` for `+` events and `{ owner: false }`. */
  owner: string | null;
  all_owners: number;
  /** The serialized data (JSON text), serialized once for every subscription. */
  data: string;
  /**
   * A whole payload sent as is to every subscription (a `payloadOverride` value, or a raw event without envelope),
   * or, when it starts with a comma, extra envelope members after `data` (`,"changes":[…]`; see delivery/envelope.ts).
   */
  body: string | null;
  status: EventStatus;
  error: string | null;
  created_at: number;
}

/**
 * The outbox's fan-out bookkeeping (migration 0003). Kept apart from `EventTable` because the write
 * path never sets it: an event is appended with no try made, and the columns' defaults say so.
 */
export interface EventFanOutColumns {
  /** Failed subscription lookups of the event so far, whichever lookup failed. */
  fanout_attempts: ColumnType<number, number | undefined, number>;
  /** How many of them were the custom finder's own failures (not the store's read): only these end an event. */
  finder_failures: ColumnType<number, number | undefined, number>;
  /** When a pending event may be fanned out (ms); 0 for one not yet tried. */
  next_fanout_at: ColumnType<number, number | undefined, number>;
}

/**
 * A fresh event (migration 0006): appended by the trigger, not yet fanned out. One B-tree, keyed by `seq`
 * in append order; `id` is not indexed. The fan-out moves each into `resthooks_events`, where it gets its
 * status and its fan-out bookkeeping. Only stores whose dialect `appendsFreshEvents` write here.
 */
export type FreshEventTable = Pick<EventTable, 'id' | 'name' | 'model' | 'action' | 'owner' | 'all_owners' | 'data' | 'body' | 'created_at'> & {
  seq: Generated<number>;
};

/** An outbox row as read back: the event and its fan-out bookkeeping. */
export type EventRow = EventTable & { fanout_attempts: number; finder_failures: number; next_fanout_at: number };

export interface DeliveryTable {
  id: string;
  event_id: string;
  subscription_id: string;
  status: DeliveryStatus;
  attempts: number;
  /** When pending: next attempt time. When in flight: the claim's lease expiry. */
  due_at: number;
  /** A per-subscription payload made at trigger time (`serializeHook(hook)`); null means envelope + event data. */
  body: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

/**
 * The first attempt of a delivery it delivered, kept in the delivery's row (migration 0007) instead of a
 * row of `resthooks_attempts`; all null otherwise. Never written by an insert: only the record sets them.
 */
export interface DeliveryFirstAttemptColumns {
  first_attempt_id: ColumnType<string | null, string | null | undefined, string | null>;
  first_attempt_started_at: ColumnType<number | null, number | null | undefined, number | null>;
  first_attempt_duration_ms: ColumnType<number | null, number | null | undefined, number | null>;
  first_attempt_status_code: ColumnType<number | null, number | null | undefined, number | null>;
  first_attempt_excerpt: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface AttemptTable {
  id: string;
  delivery_id: string;
  number: number;
  started_at: number;
  duration_ms: number;
  status_code: number | null;
  response_excerpt: string | null;
  error: string | null;
  outcome: AttemptOutcomeKind;
}

/**
 * One delivery in its subscription's history (migration 0008): on SQLite the delivery log's index, caught
 * up in sorted batches rather than written by the fan-out; empty on PostgreSQL, which indexes the deliveries.
 */
export interface SubscriptionHistoryTable {
  subscription_id: string;
  delivery_id: string;
}

/** How far the history has caught up with the deliveries (one row): their last rowid it holds, and whose it was. */
export interface HistoryMarkTable {
  rowid_mark: number;
  anchor_id: string | null;
}

export interface ResthooksDatabase {
  resthooks_subscriptions: SubscriptionTable;
  resthooks_events: EventTable & EventFanOutColumns;
  resthooks_outbox: FreshEventTable;
  resthooks_deliveries: DeliveryTable & DeliveryFirstAttemptColumns;
  resthooks_attempts: AttemptTable;
  resthooks_subscription_history: SubscriptionHistoryTable;
  resthooks_history_mark: HistoryMarkTable;
}
