/**
 * The most recent events of one name that reached one owner: what the REST API's
 * `GET /events/:name/sample` shows (Zapier's `performList` wants real, recent data).
 * @module
 */
import type { KyselyStore } from './kysely-store.js';
import { toStoredEvent, type StoredEvent } from './records.js';

/**
 * Newest first. "Reached the owner" means the event was addressed to that owner or to every owner
 * (a `+` event); events recorded as undeliverable (no owner) reached no one and are left out.
 * Served by the `resthooks_events_name (name, id)` index.
 */
export async function recentEvents(store: KyselyStore, name: string, owner: string, limit: number): Promise<StoredEvent[]> {
  const rows = await store.db
    .selectFrom('resthooks_events')
    .select(['id', 'name', 'model', 'action', 'owner', 'all_owners', 'data', 'created_at'])
    .where('name', '=', name)
    .where((eb) => eb.or([eb('owner', '=', owner), eb('all_owners', '=', 1)]))
    .where('status', '!=', 'undeliverable')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toStoredEvent);
}
