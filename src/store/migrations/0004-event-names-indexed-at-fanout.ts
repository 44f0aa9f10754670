import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The events-by-name index (what `GET /events/:name/sample` reads) becomes partial: it holds fanned-out
 * events only. An event enters it when the fan-out marks it done, in the fan-out's batched transaction,
 * instead of on the write path, where each B-tree an autocommit INSERT touches is one more page written
 * to the WAL per save (about a quarter of the event row's commit in isolated runs). Events still waiting
 * for fan-out are read from the pending index, which every pending event is in anyway (see
 * recent-events.ts). The table itself stays a rowid table: `WITHOUT ROWID` saves a B-tree only for small
 * rows and costs more than it saves once the data passes about 1 KB, where index B-tree cells overflow.
 */
export const eventNamesIndexedAtFanOut: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.dropIndex('resthooks_events_name').execute();
    await db.schema.createIndex('resthooks_events_name').on('resthooks_events').columns(['name', 'id']).where(sql.ref('status'), '=', 'done').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('resthooks_events_name').execute();
    await db.schema.createIndex('resthooks_events_name').on('resthooks_events').columns(['name', 'id']).execute();
  },
};
