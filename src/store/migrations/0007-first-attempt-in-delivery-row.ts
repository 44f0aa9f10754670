import { sql, type Kysely, type Migration } from 'kysely';

/**
 * A delivery whose first attempt delivered it keeps that attempt in its own row, in the UPDATE that marks
 * it delivered, instead of in a row of `resthooks_attempts`: the common case (one attempt, 2xx) writes one
 * row, not two, and no B-tree of the attempts table. Every other attempt (a failure, a retry, a later
 * attempt after a manual retry) is a row of `resthooks_attempts` as before; the delivery log reads both.
 * All null for deliveries recorded otherwise, which is every delivery recorded before this migration.
 * The status code is kept apart from `last_status_code`, which a later attempt overwrites.
 */
export const firstAttemptInDeliveryRow: Migration = {
  async up(db: Kysely<unknown>) {
    const columns = [
      ['first_attempt_id', 'varchar(40)'],
      ['first_attempt_started_at', 'bigint'],
      ['first_attempt_duration_ms', 'integer'],
      ['first_attempt_status_code', 'integer'],
      ['first_attempt_excerpt', 'text'],
    ] as const;
    for (const [name, type] of columns) await db.schema.alterTable('resthooks_deliveries').addColumn(name, type).execute();
  },
  async down(db: Kysely<unknown>) {
    // The kept attempts become rows of the attempts table again before their columns go. An empty id is
    // the delivery's own under the attempt prefix (see `storedFirstAttemptId`).
    await sql`insert into resthooks_attempts (id, delivery_id, number, started_at, duration_ms, status_code, response_excerpt, error, outcome)
      select case when first_attempt_id = '' then 'att_' || substr(id, 5) else first_attempt_id end, id, 1, first_attempt_started_at, first_attempt_duration_ms, first_attempt_status_code, first_attempt_excerpt, null, 'delivered'
      from resthooks_deliveries where first_attempt_id is not null`.execute(db);
    for (const name of ['first_attempt_excerpt', 'first_attempt_status_code', 'first_attempt_duration_ms', 'first_attempt_started_at', 'first_attempt_id']) {
      await db.schema.alterTable('resthooks_deliveries').dropColumn(name).execute();
    }
  },
};
