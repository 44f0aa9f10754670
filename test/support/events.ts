/**
 * Where a test finds the events a store wrote. On SQLite an event waiting for fan-out sits in
 * `resthooks_outbox` (migration 0006) and moves into `resthooks_events` at fan-out; on PostgreSQL
 * the store writes `resthooks_events` directly.
 */

/** Every event, fresh or fanned out, as a table expression (alias `all_events`) for plain SQL on either engine. */
export const ALL_EVENTS =
  "(select id, name, data, status, created_at from resthooks_events union all select id, name, data, 'pending' as status, created_at from resthooks_outbox) as all_events";

/** The table the trigger's INSERT writes: what a test makes refuse that INSERT, or counts right after a write. */
export function outboxTable(engine: 'sqlite' | 'postgres'): 'resthooks_outbox' | 'resthooks_events' {
  return engine === 'sqlite' ? 'resthooks_outbox' : 'resthooks_events';
}
