/**
 * A subscription's deliveries where the dialect `catchesUpSubscriptionHistory` (SQLite, migration 0008):
 * the entries of `resthooks_subscription_history`, written in sorted batches, and the *tail*, the
 * deliveries inserted since the last batch, found by rowid above the mark.
 *
 * The mark is trusted only while the delivery it names (its anchor) still has that rowid. SQLite gives a
 * new row the largest rowid plus one, so while the anchor exists no new row can get a rowid at or below
 * the mark; once it is gone (deleted outside retention, which keeps it) or renumbered (`VACUUM` may renumber
 * the rowids of a table without an INTEGER PRIMARY KEY), the mark means nothing and the tail is every
 * delivery, until the next catch-up re-reads them all and sets a fresh mark. Every statement here reads
 * the mark and the rows in one statement, so it sees one snapshot of both.
 * @module
 */
import { sql, type RawBuilder, type SqlBool } from 'kysely';

/**
 * Deliveries a process inserts between two catch-ups. Measured at 100 subscriptions per event: every
 * 1,024 the catch-up wrote 0.16 WAL pages per delivery, every 4,096 0.10, every 16,384 0.04 for about
 * the same CPU (2–3 µs per delivery), but a tail of 16,000 adds ~1.5 ms to every page of the log, 4,000 ~0.35.
 */
export const HISTORY_CATCH_UP_DELIVERIES = 4_096;

const D = sql.table('resthooks_deliveries');
const H = sql.table('resthooks_subscription_history');
const M = sql.table('resthooks_history_mark');

/** The rowid above which deliveries are not in the history yet: the mark while its anchor holds it, else 0. */
const TAIL_FROM = sql<number>`coalesce((select m.rowid_mark from ${M} as m where exists (select 1 from ${D} as anchor where anchor.rowid = m.rowid_mark and anchor.id = m.anchor_id)), 0)`;

/**
 * The history's missing entries added in (subscription, delivery) order, so that the inserts walk each
 * subscription's pages once, in key order (a batch writes each page once, where the fan-out's index wrote
 * it once per transaction); then the mark moved to the last delivery. Idempotent: run twice, or again
 * after a crash, it adds what is missing and nothing else.
 */
export const CATCH_UP: readonly RawBuilder<unknown>[] = [
  sql`insert or ignore into ${H} (subscription_id, delivery_id)
    select subscription_id, id from ${D} where rowid > ${TAIL_FROM} order by subscription_id, id`,
  sql`update ${M} set rowid_mark = coalesce((select max(rowid) from ${D}), 0), anchor_id = (select id from ${D} order by rowid desc limit 1)`,
];

/** The ids of every delivery of the subscription: its history, and its deliveries in the tail. */
export function deliveryIdsOf(subscriptionId: string): RawBuilder<string> {
  return sql<string>`select delivery_id from ${H} where subscription_id = ${subscriptionId}
    union all select id from ${D} where rowid > ${TAIL_FROM} and subscription_id = ${subscriptionId}`;
}

/** `id in (…)` for every delivery of the subscription. */
export function isDeliveryOf(column: string, subscriptionId: string): RawBuilder<SqlBool> {
  return sql<SqlBool>`${sql.ref(column)} in (${deliveryIdsOf(subscriptionId)})`;
}

/**
 * The ids of the subscription's newest `limit` deliveries below `before`: the newest `limit` of the
 * history and of the tail (the newest `limit` of both are among them, whichever holds each). The tail is
 * sorted as read (`+id`): ordered by the id index, SQLite would walk every delivery to spare the sort.
 */
export function newestDeliveryIdsOf(subscriptionId: string, limit: number, before?: string): RawBuilder<string> {
  const historyBelow = before === undefined ? sql`` : sql` and delivery_id < ${before}`;
  const tailBelow = before === undefined ? sql`` : sql` and id < ${before}`;
  return sql<string>`select delivery_id from (select delivery_id from ${H} where subscription_id = ${subscriptionId}${historyBelow} order by delivery_id desc limit ${limit})
    union all select id from (select id from ${D} where rowid > ${TAIL_FROM} and subscription_id = ${subscriptionId}${tailBelow} order by +id desc limit ${limit})`;
}

/** The anchor's id, while there is one: retention keeps that delivery, so that the mark keeps holding. */
export const ANCHOR_ID = sql<string>`select anchor_id from ${M} where anchor_id is not null`;
