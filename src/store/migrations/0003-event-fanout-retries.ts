import { sql, type Kysely, type Migration } from 'kysely';

/**
 * A failed subscription lookup no longer ends an event: it stays pending with a try count and a time
 * for the next try. The pending index becomes (next_fanout_at, id), so the fan-out reads only events
 * that are due, in order, without stepping over the ones waiting for a later try. Events that could
 * not be fanned out get their own small index, for the operator's list of them.
 */
export const eventFanOutRetries: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('resthooks_events').addColumn('fanout_attempts', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    // The custom finder's own failures among them: only those count towards giving up on the event.
    await db.schema.alterTable('resthooks_events').addColumn('finder_failures', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    // 0 for every event not yet tried: new events sort first, in id order, as before.
    await db.schema.alterTable('resthooks_events').addColumn('next_fanout_at', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.dropIndex('resthooks_events_pending').execute();
    await db.schema
      .createIndex('resthooks_events_pending')
      .on('resthooks_events')
      .columns(['next_fanout_at', 'id'])
      .where(sql.ref('status'), '=', 'pending')
      .execute();
    await db.schema
      .createIndex('resthooks_events_undeliverable')
      .on('resthooks_events')
      .column('id')
      .where(sql.ref('status'), '=', 'undeliverable')
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('resthooks_events_undeliverable').execute();
    await db.schema.dropIndex('resthooks_events_pending').execute();
    await db.schema.createIndex('resthooks_events_pending').on('resthooks_events').column('id').where(sql.ref('status'), '=', 'pending').execute();
    await db.schema.alterTable('resthooks_events').dropColumn('next_fanout_at').execute();
    await db.schema.alterTable('resthooks_events').dropColumn('finder_failures').execute();
    await db.schema.alterTable('resthooks_events').dropColumn('fanout_attempts').execute();
  },
};
