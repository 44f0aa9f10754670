/**
 * The most recent events of one name that reached one owner: what the REST API's
 * `GET /events/:name/sample` shows (Zapier's `performList` wants real, recent data).
 * @module
 */
import { sql } from 'kysely';
import type { KyselyStore } from './kysely-store.js';
import { toStoredEvent, type StoredEvent } from './records.js';

const COLUMNS = ['id', 'name', 'model', 'action', 'owner', 'all_owners', 'data', 'created_at'] as const;

/**
 * Newest first. "Reached the owner" means the event was addressed to that owner or to every owner
 * (a `+` event); events recorded as undeliverable (no owner) reached no one and are left out.
 *
 * The name index holds fanned-out events only (migration 0004 keeps it off the write path), so the
 * events still waiting for fan-out are read beside them: from the pending index, and from the fresh
 * table (migration 0006: events not reached by the fan-out yet, read whole, as few as the backlog). One
 * statement, so an event fanned out meanwhile is seen once, on one side or another. The status tests
 * are literals so that SQLite uses those partial indexes (see kysely-store.ts on PENDING).
 */
export async function recentEvents(store: KyselyStore, name: string, owner: string, limit: number): Promise<StoredEvent[]> {
  const { db } = store;
  const addressed = (status: 'done' | 'pending') =>
    db
      .selectFrom('resthooks_events')
      .select(COLUMNS)
      .where('status', '=', sql.lit(status))
      .where('name', '=', name)
      .where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]));
  // The waiting sides are materialized: merged into the outer ORDER BY id, SQLite would walk the whole
  // table by its key instead of the pending index. Waiting events are the backlog, few while the
  // fan-out keeps up; the outer ORDER BY sorts them with the fanned-out ones.
  const rows = await db
    .with((cte) => cte('waiting').materialized(), () => addressed('pending'))
    .with(
      (cte) => cte('fresh').materialized(),
      () =>
        db
          .selectFrom('resthooks_outbox')
          .select(COLUMNS)
          .where('name', '=', name)
          .where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)])),
    )
    .selectFrom(addressed('done').orderBy('id', 'desc').limit(limit).as('fanned_out'))
    .select(COLUMNS)
    .unionAll((eb) => eb.selectFrom('waiting').select(COLUMNS))
    .unionAll((eb) => eb.selectFrom('fresh').select(COLUMNS))
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toStoredEvent);
}
