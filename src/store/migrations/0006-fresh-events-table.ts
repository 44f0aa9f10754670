import { sql, SqliteAdapter, type Kysely, type Migration } from 'kysely';

/**
 * Fresh events get a table of their own, `resthooks_outbox`, with one B-tree: the row, keyed by an
 * integer sequence (SQLite's rowid) and nothing else, `id` included, indexed. An autocommit INSERT on
 * SQLite costs about one page written to the WAL per B-tree it touches, and the event row in
 * `resthooks_events` touches three (the row, the key on its text id, the pending index): most of what
 * resthooks adds to a model save. The fan-out reads the fresh table in `seq` order and moves each event
 * into `resthooks_events`, with the status it ends in, in the transaction that writes its deliveries;
 * every reader of events reads both tables.
 *
 * Only the SQLite store appends there; the PostgreSQL store keeps writing `resthooks_events` (see
 * `appendsFreshEvents` in store-dialect.ts), and the table exists on both so the schema is one.
 * Events pending before this migration stay where they are, served by the pending index as before.
 */
export const freshEventsTable: Migration = {
  async up(db: Kysely<unknown>) {
    const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
    await db.schema
      .createTable('resthooks_outbox')
      // SQLite: `integer primary key` is the rowid itself, not a second B-tree, and without AUTOINCREMENT
      // no `sqlite_sequence` row is written per insert.
      .addColumn('seq', sqlite ? 'integer' : 'bigint', (c) => (sqlite ? c.primaryKey() : c.primaryKey().generatedByDefaultAsIdentity()))
      .addColumn('id', 'varchar(40)', (c) => c.notNull())
      .addColumn('name', 'varchar(64)', (c) => c.notNull())
      .addColumn('model', 'varchar(255)')
      .addColumn('action', 'varchar(255)')
      .addColumn('owner', 'varchar(255)')
      .addColumn('all_owners', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('body', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    // Fresh events go back to the indexed table as pending, as they were written before.
    await sql`insert into resthooks_events (id, name, model, action, owner, all_owners, data, body, status, created_at)
      select id, name, model, action, owner, all_owners, data, body, 'pending', created_at from resthooks_outbox order by seq`.execute(db);
    await db.schema.dropTable('resthooks_outbox').execute();
  },
};
