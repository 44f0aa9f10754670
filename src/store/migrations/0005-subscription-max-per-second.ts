import type { Kysely, Migration } from 'kysely';

/**
 * A subscription's own rate limit, in deliveries per second. Null (every existing row) means the
 * configured default, `delivery.maxPerSecondPerSubscription`. A double, not an integer: rates below
 * one a second (0.5 = one every two seconds) are allowed.
 */
export const subscriptionMaxPerSecond: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('resthooks_subscriptions').addColumn('max_per_second', 'double precision').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('resthooks_subscriptions').dropColumn('max_per_second').execute();
  },
};
