import { sql, type Kysely, type Migration } from 'kysely';

// Migrations are frozen once released: a later change is a new file, never an edit here.
export const initial: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('resthooks_subscriptions')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('owner', 'varchar(255)', (c) => c.notNull())
      .addColumn('event', 'varchar(64)', (c) => c.notNull())
      .addColumn('target', 'varchar(2048)', (c) => c.notNull())
      .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('secret', 'varchar(128)', (c) => c.notNull())
      .addColumn('previous_secrets', 'text')
      .addColumn('metadata', 'text')
      .addColumn('disabled_reason', 'text')
      .addColumn('failing_since', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    // The fan-out's lookup: (event, owner) of active subscriptions; django-rest-hooks had no such index.
    await db.schema.createIndex('resthooks_subscriptions_event_owner').on('resthooks_subscriptions').columns(['event', 'owner', 'active']).execute();
    await db.schema.createIndex('resthooks_subscriptions_owner').on('resthooks_subscriptions').columns(['owner', 'id']).execute();

    await db.schema
      .createTable('resthooks_events')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(64)', (c) => c.notNull())
      .addColumn('model', 'varchar(255)')
      .addColumn('action', 'varchar(255)')
      .addColumn('owner', 'varchar(255)')
      .addColumn('all_owners', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('body', 'text')
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    // Partial: the fan-out scans only what it has not handled yet, however long the history grows.
    await db.schema.createIndex('resthooks_events_pending').on('resthooks_events').column('id').where(sql.ref('status'), '=', 'pending').execute();
    await db.schema.createIndex('resthooks_events_name').on('resthooks_events').columns(['name', 'id']).execute();

    await db.schema
      .createTable('resthooks_deliveries')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('event_id', 'varchar(40)', (c) => c.notNull())
      .addColumn('subscription_id', 'varchar(40)', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('due_at', 'bigint', (c) => c.notNull())
      .addColumn('body', 'text')
      .addColumn('last_status_code', 'integer')
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    // One delivery per (event, subscription): a repeated fan-out of the same event inserts nothing.
    await db.schema.createIndex('resthooks_deliveries_event_subscription').on('resthooks_deliveries').columns(['event_id', 'subscription_id']).unique().execute();
    await db.schema
      .createIndex('resthooks_deliveries_due')
      .on('resthooks_deliveries')
      .column('due_at')
      .where(sql.ref('status'), 'in', ['pending', 'in_flight'])
      .execute();
    await db.schema.createIndex('resthooks_deliveries_subscription').on('resthooks_deliveries').columns(['subscription_id', 'id']).execute();

    await db.schema
      .createTable('resthooks_attempts')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('delivery_id', 'varchar(40)', (c) => c.notNull())
      .addColumn('number', 'integer', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .addColumn('status_code', 'integer')
      .addColumn('response_excerpt', 'text')
      .addColumn('error', 'text')
      .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('resthooks_attempts_delivery').on('resthooks_attempts').columns(['delivery_id', 'number']).execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['resthooks_attempts', 'resthooks_deliveries', 'resthooks_events', 'resthooks_subscriptions']) {
      await db.schema.dropTable(table).ifExists().execute();
    }
  },
};
