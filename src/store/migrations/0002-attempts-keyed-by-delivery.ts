import { sql, SqliteAdapter, type Kysely, type Migration } from 'kysely';

/**
 * Attempts are only ever read by delivery, in order, and each (delivery, number) happens once: that
 * pair becomes the primary key, and the separate key on `id` and the index on (delivery_id, number)
 * go. Every attempt is one B-tree write instead of three (on SQLite the table is clustered on the key,
 * `WITHOUT ROWID`), which is most of what recording an attempt costs. `id` stays, unindexed, as the
 * attempt's public id. SQLite's advice against `WITHOUT ROWID` for large rows matters little here: most
 * attempts carry a short excerpt, and a long one (up to 64 KiB, a failing receiver's page) spills to
 * overflow pages as it did before.
 *
 * Should a (delivery, number) pair ever appear twice in old data, the first attempt recorded is kept.
 */
export const attemptsKeyedByDelivery: Migration = {
  async up(db: Kysely<unknown>) {
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      // SQLite cannot change a table's key in place: rebuild it, then swap the names.
      await sql`create table resthooks_attempts_next (
        delivery_id varchar(40) not null,
        number integer not null,
        id varchar(40) not null,
        started_at bigint not null,
        duration_ms integer not null,
        status_code integer,
        response_excerpt text,
        error text,
        outcome varchar(16) not null,
        primary key (delivery_id, number)
      ) without rowid`.execute(db);
      await sql`insert or ignore into resthooks_attempts_next
        (delivery_id, number, id, started_at, duration_ms, status_code, response_excerpt, error, outcome)
        select delivery_id, number, id, started_at, duration_ms, status_code, response_excerpt, error, outcome
        from resthooks_attempts order by rowid`.execute(db);
      await sql`drop table resthooks_attempts`.execute(db);
      await sql`alter table resthooks_attempts_next rename to resthooks_attempts`.execute(db);
      return;
    }
    await sql`delete from resthooks_attempts a using resthooks_attempts b
      where a.delivery_id = b.delivery_id and a.number = b.number and a.id > b.id`.execute(db);
    await sql`alter table resthooks_attempts drop constraint resthooks_attempts_pkey`.execute(db);
    await sql`alter table resthooks_attempts add primary key (delivery_id, number)`.execute(db);
    await sql`drop index resthooks_attempts_delivery`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      await sql`create table resthooks_attempts_previous (
        id varchar(40) primary key,
        delivery_id varchar(40) not null,
        number integer not null,
        started_at bigint not null,
        duration_ms integer not null,
        status_code integer,
        response_excerpt text,
        error text,
        outcome varchar(16) not null
      )`.execute(db);
      await sql`insert into resthooks_attempts_previous
        (id, delivery_id, number, started_at, duration_ms, status_code, response_excerpt, error, outcome)
        select id, delivery_id, number, started_at, duration_ms, status_code, response_excerpt, error, outcome
        from resthooks_attempts`.execute(db);
      await sql`drop table resthooks_attempts`.execute(db);
      await sql`alter table resthooks_attempts_previous rename to resthooks_attempts`.execute(db);
    } else {
      await sql`alter table resthooks_attempts drop constraint resthooks_attempts_pkey`.execute(db);
      await sql`alter table resthooks_attempts add primary key (id)`.execute(db);
    }
    await sql`create index resthooks_attempts_delivery on resthooks_attempts (delivery_id, number)`.execute(db);
  },
};
