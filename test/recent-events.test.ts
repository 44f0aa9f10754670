/**
 * Recent events by name (the samples of `GET /events/:name/sample`) on a real SQLite file and a real
 * PostgreSQL server, now that the name index holds fanned-out events only: an event is a sample from
 * the moment it is recorded until retention removes it, whichever side of the fan-out it is on; the
 * write path adds no entry to the name index; a database from before the change keeps its samples.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../src/ids.js';
import type { KyselyStore } from '../src/store/kysely-store.js';
import { recentEvents } from '../src/store/recent-events.js';
import type { EventTable } from '../src/store/schema.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { postgresPlan, recordingPostgres, recordingSqlite, sqlitePlan } from './support/query-plans.js';
import { migrateTo } from '../src/store/migrator.js';

const T0 = 1_700_000_000_000;

function eventRow(over: Partial<EventTable> = {}): EventTable {
  return { id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{"id":1}', body: null, status: 'pending', error: null, created_at: T0, ...over };
}

const ids = (events: ReadonlyArray<{ id: string }>) => events.map((e) => e.id);
const fanOut = (store: KyselyStore, ...events: EventTable[]) => store.commitFanOut(events.map((e) => ({ eventId: e.id, deliveries: [] })));

describe.each(ENGINES)('recent events by name on %s', (engine) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
  });
  afterEach(() => db.close());

  /** Entries in the name index: leaf cells on SQLite; on PostgreSQL, a B-tree with no entry is its metapage alone. */
  async function nameIndexIsEmpty(): Promise<boolean> {
    if (engine === 'sqlite') {
      const raw = new Database(db.url, { readonly: true });
      try {
        const { cells } = raw.prepare("select coalesce(sum(ncell), 0) as cells from dbstat where name = 'resthooks_events_name' and pagetype = 'leaf'").get() as { cells: number };
        return cells === 0;
      } finally {
        raw.close();
      }
    }
    const { rows } = await db.pool().query<{ size: string }>("select pg_relation_size('resthooks_events_name') as size");
    return Number(rows[0]!.size) <= 8192;
  }

  it('an event is a sample before and after its fan-out, newest first, for its owner or every owner, never when undeliverable', async () => {
    const store = await db.migrated();
    const [old, shared, bobs, orphan, fresh, other] = [
      eventRow(),
      eventRow({ owner: null, all_owners: 1 }),
      eventRow({ owner: 'bob' }),
      eventRow({ owner: null, status: 'undeliverable', error: 'no owner' }),
      eventRow(),
      eventRow({ name: 'book.removed' }),
    ];
    for (const e of [old, shared, bobs, orphan, fresh, other]) await store.append(e);
    expect(ids(await recentEvents(store, 'book.added', 'alice', 10))).toEqual([fresh.id, shared.id, old.id]);

    await fanOut(store, old, bobs); // fanned out: now read from the name index, the rest from the pending one
    expect(ids(await recentEvents(store, 'book.added', 'alice', 10))).toEqual([fresh.id, shared.id, old.id]);
    expect(ids(await recentEvents(store, 'book.added', 'alice', 2))).toEqual([fresh.id, shared.id]);
    expect(ids(await recentEvents(store, 'book.added', 'bob', 10))).toEqual([bobs.id, shared.id]);
    expect(ids(await recentEvents(store, 'book.removed', 'alice', 10))).toEqual([other.id]);

    await fanOut(store, shared, fresh, other);
    expect(ids(await recentEvents(store, 'book.added', 'alice', 10))).toEqual([fresh.id, shared.id, old.id]);
    expect(ids(await recentEvents(store, 'book.added', 'alice', 1))).toEqual([fresh.id]);
    expect(ids(await recentEvents(store, 'book.added', 'carol', 10))).toEqual([shared.id]);
  });

  it('the write path adds nothing to the name index; the fan-out adds the event', async () => {
    const store = await db.migrated();
    const events = [eventRow(), eventRow(), eventRow({ name: 'book.removed' })];
    for (const e of events) await store.append(e);
    expect(await nameIndexIsEmpty()).toBe(true);
    await fanOut(store, ...events);
    expect(await nameIndexIsEmpty()).toBe(false);
  });

  it('the samples read stays on the two partial indexes', async () => {
    const seen: string[] = [];
    const sent = new Map<string, unknown[]>();
    const store = await db.migrated(engine === 'sqlite' ? recordingSqlite(db.url, seen) : recordingPostgres(db.pool(), seen, sent));
    await recentEvents(store, 'book.added', 'alice', 10);
    const sql = seen.find((text) => /union all/i.test(text));
    expect(sql).toBeDefined();
    const plan = engine === 'sqlite' ? sqlitePlan(db.url, sql!) : await postgresPlan(db.pool({ max: 1 }), sql!, sent.get(sql!) ?? []);
    expect(plan).toContain('resthooks_events_name');
    expect(plan).toContain('resthooks_events_pending');
  });

  it('migrating a 0003 database keeps every sample, fanned out or not', async () => {
    const store = db.store();
    expect((await migrateTo(store.db, '0003-event-fanout-retries')).error).toBeUndefined();
    const [done, pending, undeliverable] = [eventRow({ status: 'done' }), eventRow(), eventRow({ status: 'undeliverable', owner: null, error: 'no owner' })];
    await store.db.insertInto('resthooks_events').values([done, pending, undeliverable]).execute();

    const { error, results } = await store.migrate();
    expect(error).toBeUndefined();
    expect(results?.map((r) => r.migrationName)).toEqual(['0004-event-names-indexed-at-fanout', '0005-subscription-max-per-second', '0006-fresh-events-table', '0007-first-attempt-in-delivery-row', '0008-subscription-history-table']);
    expect(ids(await recentEvents(store, 'book.added', 'alice', 10))).toEqual([pending.id, done.id]);
    await fanOut(store, pending);
    expect(ids(await recentEvents(store, 'book.added', 'alice', 10))).toEqual([pending.id, done.id]);
  });
});
