import { sql, SqliteAdapter, type Kysely, type Migration } from 'kysely';

/**
 * The per-subscription delivery history leaves the fan-out's write path on SQLite. The index
 * `resthooks_deliveries_subscription (subscription_id, id)` served only the delivery log and the
 * cancels and requeues of one subscription's deliveries, yet every fan-out transaction wrote one of its
 * pages per subscription it reached: with 100 subscriptions per event, about three quarters of the
 * fan-out's WAL pages. Its entries now go to `resthooks_subscription_history`, written in sorted batches
 * that catch up with the deliveries table (each subscription's pages once per batch, not once per
 * fan-out transaction); the deliveries inserted since the last batch (`rowid` above the mark) are read
 * from the deliveries table itself. `resthooks_history_mark` is that mark, one row: the last rowid caught
 * up, and the id of the delivery that had it, which proves the rowids below it were not given anew
 * (see `subscription-history.ts`).
 *
 * Only the SQLite store catches up (see `catchesUpSubscriptionHistory` in store-dialect.ts); PostgreSQL
 * keeps its index, and the tables exist there too so that the schema is one.
 */
export const subscriptionHistoryTable: Migration = {
  async up(db: Kysely<unknown>) {
    const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
    // SQLite: WITHOUT ROWID makes the primary key the table itself, one B-tree instead of two.
    const history = db.schema
      .createTable('resthooks_subscription_history')
      .addColumn('subscription_id', 'varchar(40)', (c) => c.notNull())
      .addColumn('delivery_id', 'varchar(40)', (c) => c.notNull())
      .addPrimaryKeyConstraint('resthooks_subscription_history_pk', ['subscription_id', 'delivery_id']);
    await (sqlite ? history.modifyEnd(sql`without rowid`) : history).execute();
    await db.schema
      .createTable('resthooks_history_mark')
      .addColumn('rowid_mark', 'bigint', (c) => c.notNull())
      .addColumn('anchor_id', 'varchar(40)')
      .execute();
    if (!sqlite) {
      await sql`insert into resthooks_history_mark (rowid_mark, anchor_id) values (0, null)`.execute(db);
      return;
    }
    await sql`insert into resthooks_subscription_history (subscription_id, delivery_id)
      select subscription_id, id from resthooks_deliveries order by subscription_id, id`.execute(db);
    await sql`insert into resthooks_history_mark (rowid_mark, anchor_id)
      select coalesce((select max(rowid) from resthooks_deliveries), 0), (select id from resthooks_deliveries order by rowid desc limit 1)`.execute(db);
    await db.schema.dropIndex('resthooks_deliveries_subscription').execute();
  },
  async down(db: Kysely<unknown>) {
    const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
    if (sqlite) await db.schema.createIndex('resthooks_deliveries_subscription').on('resthooks_deliveries').columns(['subscription_id', 'id']).execute();
    await db.schema.dropTable('resthooks_history_mark').execute();
    await db.schema.dropTable('resthooks_subscription_history').execute();
  },
};
