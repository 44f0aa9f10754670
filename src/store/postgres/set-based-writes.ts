/**
 * PostgreSQL's set-based writes for the two batches the delivery loop writes most: a fan-out batch and
 * a record batch, each one statement whatever its size. The rows travel as array parameters and are
 * turned back into rows by `unnest`; data-modifying CTEs do the rest in the same statement, so each is
 * atomic on its own (autocommit, no BEGIN/COMMIT) and, named, is parsed and planned once per connection.
 * A statement per row had PostgreSQL spend its CPU parsing and planning (about three per delivery).
 * The statements per row in kysely-store.ts (SQLite's) stay the reference: these must leave the same
 * rows, which a seeded run of every outcome on both engines side by side checks. The other statements
 * here name their rows by id too (a pass taken back, claims given back or read back, a lease extended), and are
 * written as these are so that every plan reaches those rows by primary key (see `byIds`).
 * @module
 */
import { createHash } from 'node:crypto';
import { keptInDeliveryRow } from '../rows.js';
import { storableText } from '../storable-text.js';
import type { StoreStatement } from '../store-dialect.js';
import type { DeliveryTable, EventTable, SubscriptionTable } from '../schema.js';

// Named, a statement's plan is made once per connection and, after a few executions, without its
// parameters' values (a generic plan), then kept whatever the tables become. So that the rows a statement
// names by id are reached by primary key in that plan, empty table or not, statistics or not:
//
// - The ids come from their array with `limit cardinality(…)`: a limit the planner cannot evaluate counts
//   as a tenth of its input, so the batch is estimated at a row, and a key lookup per row costs less than
//   a scan of even an empty table (taken for 10 pages until its first vacuum or analyze). Estimated at 10
//   rows, a batch was joined by a sequential scan, and that plan stayed cached as the table grew.
// - What a row must still be (in flight, pending, done) is compared with a value carried beside its id,
//   not with a literal: a partial index on status (the due index, resthooks_events_name on done events)
//   is usable only where its predicate follows from the query, and a literal made it follow. The due
//   index keeps the entries of recorded deliveries until a vacuum and is smaller than the primary key:
//   a plan made without statistics read it whole (every delivery recorded since), one made with them
//   probed it by `due_at`. A literal test of the table alone also made a sequential scan look selective.
const byIds = (array: string, carried: string) => `(select unnest(${array}) as id, ${carried} limit cardinality(${array}))`;

const names = new Map<string, string>();

/** The name a statement is prepared under: its text's hash, so two texts never share one. */
export function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    // Bounded: the store's texts are a few dozen, but a read with an IN list has one text per length.
    if (names.size >= 1_000) names.clear();
    name = `resthooks_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
    names.set(text, name);
  }
  return name;
}

// The statements of this module: their generic plans are checked (test/store-postgres-plans.test.ts), so
// the dialect has PostgreSQL use them from the first execution on (see `plansGenerically`).
const genericPlanNames = new Set<string>();

function named(sql: string): (parameters: readonly unknown[]) => StoreStatement {
  const name = statementName(sql);
  genericPlanNames.add(name);
  return (parameters) => ({ sql, parameters, name });
}

/**
 * `sql`, an INSERT … VALUES (nothing for a plan to choose: the generic plan is the plan), named and run in
 * the plan mode of this module's statements. A save's outbox INSERT goes through the connections the fan-out
 * passes use: in a mode of its own, a save between two passes on a connection cost two more round trips,
 * the mode reset for the save and set again for the next pass.
 */
export function namedValuesInsert(sql: string): (parameters: readonly unknown[]) => StoreStatement {
  return named(sql);
}

/**
 * Whether the statement is one of this module's, whose generic plan reaches its rows as the plans its
 * values would: PostgreSQL need not plan it with those values first. It does so for a named statement's
 * first five executions on each connection, and for these statements (up to a dozen CTEs each) a plan
 * cost about as much as an execution.
 */
export function plansGenerically(statement: StoreStatement): boolean {
  return statement.name !== undefined && genericPlanNames.has(statement.name);
}

// ── fan-out ─────────────────────────────────────────────────────────────────────────────────────

// The events are marked done and their deliveries inserted in one statement: both or neither. A
// repeated fan-out (another process got there first) inserts nothing for a pair that has a delivery.
const FAN_OUT_SQL = `with done as (
  update resthooks_events as e set status = 'done' from ${byIds('$1::text[]', `'pending' as status`)} as named
  where e.id = named.id and e.status = named.status
)
insert into resthooks_deliveries (id, event_id, subscription_id, status, attempts, due_at, body, last_status_code, last_error, created_at, updated_at)
select * from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[], $8::text[], $9::int[], $10::text[], $11::bigint[], $12::bigint[])
on conflict (event_id, subscription_id) do nothing
returning id`;
const fanOut = named(FAN_OUT_SQL);

/** Marks `eventIds` done and inserts `deliveries`; returns the ids of the deliveries it inserted. */
export function fanOutStatement(eventIds: readonly string[], deliveries: readonly DeliveryTable[]): StoreStatement {
  const column = <K extends keyof DeliveryTable>(key: K) => deliveries.map((d) => d[key]);
  return fanOut([
    eventIds,
    column('id'), column('event_id'), column('subscription_id'), column('status'), column('attempts'), column('due_at'),
    column('body'), column('last_status_code'), column('last_error'), column('created_at'), column('updated_at'),
  ]);
}

// ── records ─────────────────────────────────────────────────────────────────────────────────────

/** What one attempt's record writes, as `recordStatement` needs it (an `AttemptRecord`). */
export interface SetBasedRecord {
  readonly claim: { readonly attempt: number; readonly leaseUntil: number };
  readonly attempt:
    | { readonly id: string; readonly number: number; readonly started_at: number; readonly duration_ms: number; readonly status_code: number | null; readonly response_excerpt: string | null; readonly error: string | null; readonly outcome: string }
    | undefined;
  readonly delivery: { readonly id: string; readonly status: string; readonly attempts: number; readonly due_at: number; readonly last_status_code: number | null; readonly last_error: string | null };
  readonly goneSubscriptionId?: string;
  readonly streak?: { readonly subscriptionId: string; readonly failed: boolean };
}

// `r`: the records, in batch order (`seq`). `moved`: the deliveries whose claim still holds (in flight,
// the claim's attempt and lease), moved on; `held`: their records. Everything else follows from `held`
// only, so a stale record writes nothing: its attempt, its 410 (delete the subscription, cancel its
// pending deliveries), its subscription's failure streak and the disabling. A first attempt that
// delivered (`kept`) goes into its delivery's row in the same UPDATE, not into resthooks_attempts, as
// the statements per row do: the common case writes one row and no B-tree of the attempts table.
//
// A subscription's streak, as the per-row statements leave it after the batch's records in order (a
// success clears `failing_since`, a failure sets it where unset): cleared when its last held record
// succeeded; `now` when it ended failing after a success in the batch; else kept, or `now` where unset.
// Each failure also disables an active subscription whose streak began `disable_after` ago or earlier:
// at its first failure that is the streak as it stood before the batch (when no success came first),
// and after a success the streak is `now`, which is old enough only when `disable_after` ≤ 0.
// A subscription row is written only when its streak changes or it is disabled. One deleted by a 410 in
// the batch is neither (the statements per row may still report it disabled first; the app hears of
// neither, as it is gone).
const RECORD_CTES = `r as (
  select *, 'in_flight' as held_status from unnest(
    $1::text[], $2::int[], $3::bigint[], $4::text[], $5::int[], $6::bigint[], $7::int[], $8::text[],
    $9::text[], $10::int[], $11::bigint[], $12::int[], $13::int[], $14::text[], $15::text[], $16::text[],
    $17::text[], $18::boolean[], $19::text[], $23::boolean[]
  ) with ordinality as r(id, held_attempts, held_due_at, status, attempts, due_at, last_status_code, last_error,
    attempt_id, number, started_at, duration_ms, status_code, response_excerpt, error, outcome,
    streak_id, failed, gone_id, kept, seq)
  limit cardinality($1::text[])
), moved as (
  update resthooks_deliveries as d
  set status = r.status, attempts = r.attempts, due_at = r.due_at, last_status_code = r.last_status_code, last_error = r.last_error, updated_at = $20::bigint,
    first_attempt_id = case when r.kept then r.attempt_id else d.first_attempt_id end,
    first_attempt_started_at = case when r.kept then r.started_at else d.first_attempt_started_at end,
    first_attempt_duration_ms = case when r.kept then r.duration_ms else d.first_attempt_duration_ms end,
    first_attempt_status_code = case when r.kept then r.status_code else d.first_attempt_status_code end,
    first_attempt_excerpt = case when r.kept then r.response_excerpt else d.first_attempt_excerpt end
  from r
  where d.id = r.id and d.status = r.held_status and d.attempts = r.held_attempts and d.due_at = r.held_due_at
  returning d.id
), held as (
  select r.* from r join moved on moved.id = r.id
), logged as (
  insert into resthooks_attempts (id, delivery_id, number, started_at, duration_ms, status_code, response_excerpt, error, outcome)
  select attempt_id, id, number, started_at, duration_ms, status_code, response_excerpt, error, outcome from held where attempt_id is not null and not kept
  on conflict (delivery_id, number) do nothing
), gone as (
  select distinct gone_id as id, 'pending' as cancels from held where gone_id is not null
), deleted as (
  delete from resthooks_subscriptions as s using gone where s.id = gone.id
), cancelled as (
  update resthooks_deliveries as d set status = 'cancelled', last_error = 'subscription gone (410)', updated_at = $20::bigint
  from gone where d.subscription_id = gone.id and d.status = gone.cancels
), streaks as (
  select streak_id as id,
    (array_agg(failed order by seq desc))[1] as ends_failed,
    min(seq) filter (where not failed) as first_ok,
    min(seq) filter (where failed) as first_failed,
    max(seq) filter (where failed) as last_failed
  from held where streak_id is not null and streak_id not in (select id from gone)
  group by streak_id
), judged as (
  select st.id, st.ends_failed, st.first_ok,
    coalesce($21::bigint is not null and s.active = 1 and st.first_failed is not null and (
      ((st.first_ok is null or st.first_ok > st.first_failed) and coalesce(s.failing_since, $20::bigint) <= $20::bigint - $21::bigint)
      or (st.first_ok < st.last_failed and $21::bigint <= 0)
    ), false) as disable
  from streaks st join resthooks_subscriptions s on s.id = st.id
), marked as (
  update resthooks_subscriptions as s
  set failing_since = case when not j.ends_failed then null when j.first_ok is not null then $20::bigint else coalesce(s.failing_since, $20::bigint) end,
    active = case when j.disable then 0 else s.active end,
    disabled_reason = case when j.disable then $22::text else s.disabled_reason end,
    updated_at = case when j.disable then $20::bigint else s.updated_at end
  from judged j
  where s.id = j.id
    and (not j.disable or s.active = 1)
    and (j.disable or s.failing_since is distinct from (case when not j.ends_failed then null when j.first_ok is not null then $20::bigint else coalesce(s.failing_since, $20::bigint) end))
  returning s.id, j.disable
)`;
const RECORD_ROWS = `select 'moved' as kind, id from moved
union all
select 'disabled', id from marked where disable`;
const record = named(`with ${RECORD_CTES}\n${RECORD_ROWS}`);
/** The parameters the record statement takes ($1 to $23); a statement that embeds it numbers its own after them. */
const RECORD_PARAMETERS = 23;

// A batch of first attempts that all delivered (the common case, and nearly every batch while events trickle
// in) needs only two of the CTEs above: the deliveries moved on, the attempts kept in their rows, and the
// streaks of their subscriptions cleared, which is all the CTEs above do for such a batch (no attempt row,
// no 410, no failure to start a streak or disable). Each CTE of a statement costs its every execution
// whether it has rows or not (its relations and their indexes opened and locked, its nodes set up): with
// one or two records per batch, that was most of what the statement cost the server.
const DELIVERED_CTES = `r as (
  select *, 'in_flight' as held_status from unnest(
    $1::text[], $2::int[], $3::bigint[], $4::text[], $5::int[], $6::bigint[], $7::int[], $8::text[],
    $9::text[], $10::bigint[], $11::int[], $12::int[], $13::text[], $14::text[]
  ) as r(id, held_attempts, held_due_at, status, attempts, due_at, last_status_code, last_error,
    attempt_id, started_at, duration_ms, status_code, response_excerpt, streak_id)
  limit cardinality($1::text[])
), moved as (
  update resthooks_deliveries as d
  set status = r.status, attempts = r.attempts, due_at = r.due_at, last_status_code = r.last_status_code, last_error = r.last_error, updated_at = $15::bigint,
    first_attempt_id = r.attempt_id, first_attempt_started_at = r.started_at, first_attempt_duration_ms = r.duration_ms,
    first_attempt_status_code = r.status_code, first_attempt_excerpt = r.response_excerpt
  from r
  where d.id = r.id and d.status = r.held_status and d.attempts = r.held_attempts and d.due_at = r.held_due_at
  returning d.id, r.streak_id
), marked as (
  update resthooks_subscriptions as s set failing_since = null
  from (select distinct streak_id as id from moved where streak_id is not null) as ok
  where s.id = ok.id and s.failing_since is not null
)`;
const recordDelivered = named(`with ${DELIVERED_CTES}\nselect 'moved' as kind, id from moved`);
/** The parameters the delivered batch's statement takes ($1 to $15). */
const DELIVERED_PARAMETERS = 15;

/** Whether every record of the batch is a first attempt that delivered (kept in its row), and so `DELIVERED_CTES` writes it. */
function allDeliveredFirst(records: readonly SetBasedRecord[]): boolean {
  return records.every((r) => r.attempt !== undefined && keptInDeliveryRow(r.attempt) && r.goneSubscriptionId === undefined && r.streak?.failed !== true);
}

/** Each record's delivery, its claim and the delivery's new state: the parameters both record statements begin with ($1 to $8). */
function deliveryParameters(records: readonly SetBasedRecord[]): unknown[] {
  const each = <T>(value: (r: SetBasedRecord) => T) => records.map(value);
  return [
    each((r) => r.delivery.id),
    each((r) => r.claim.attempt - 1),
    each((r) => r.claim.leaseUntil),
    each((r) => r.delivery.status),
    each((r) => r.delivery.attempts),
    each((r) => r.delivery.due_at),
    each((r) => r.delivery.last_status_code),
    each((r) => storableText(r.delivery.last_error)),
  ];
}

function deliveredParameters(records: readonly SetBasedRecord[], now: number): unknown[] {
  const each = <T>(value: (r: SetBasedRecord) => T) => records.map(value);
  return [
    ...deliveryParameters(records),
    each((r) => r.attempt!.id),
    each((r) => r.attempt!.started_at),
    each((r) => r.attempt!.duration_ms),
    each((r) => r.attempt!.status_code),
    each((r) => storableText(r.attempt!.response_excerpt)),
    each((r) => r.streak?.subscriptionId ?? null),
    now,
  ];
}

/**
 * The batch as one statement; its rows name the deliveries moved on (`kind` 'moved': the others are
 * stale) and the subscriptions disabled ('disabled'). Each delivery at most once per batch: a second
 * record of one delivery in the same statement would see the row as it was before the first.
 */
export function recordStatement(records: readonly SetBasedRecord[], now: number, disableAfterMs: number | null, disabledReason: string): StoreStatement {
  if (allDeliveredFirst(records)) return recordDelivered(deliveredParameters(records, now));
  return record(allRecordParameters(records, now, disableAfterMs, disabledReason));
}

function allRecordParameters(records: readonly SetBasedRecord[], now: number, disableAfterMs: number | null, disabledReason: string): unknown[] {
  const each = <T>(value: (r: SetBasedRecord) => T) => records.map(value);
  return [
    ...deliveryParameters(records),
    each((r) => r.attempt?.id ?? null),
    each((r) => r.attempt?.number ?? null),
    each((r) => r.attempt?.started_at ?? null),
    each((r) => r.attempt?.duration_ms ?? null),
    each((r) => r.attempt?.status_code ?? null),
    each((r) => storableText(r.attempt?.response_excerpt ?? null)),
    each((r) => storableText(r.attempt?.error ?? null)),
    each((r) => r.attempt?.outcome ?? null),
    // A 410's subscription is deleted, not streaked (as the statements per row do).
    each((r) => (r.goneSubscriptionId === undefined ? (r.streak?.subscriptionId ?? null) : null)),
    each((r) => r.streak?.failed ?? false),
    each((r) => r.goneSubscriptionId ?? null),
    now,
    disableAfterMs,
    disabledReason,
    each((r) => r.attempt !== undefined && keptInDeliveryRow(r.attempt)),
  ];
}

// ── claims given back ───────────────────────────────────────────────────────────────────────────

// Each delivery only while its claim still holds it (in flight, the claim's attempt and lease).
const releaseClaims = named(`update resthooks_deliveries as d
set status = 'pending', due_at = r.due_at, updated_at = $5::bigint
from (
  select *, 'in_flight' as held_status from unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) as r(id, held_attempts, held_due_at, due_at)
  limit cardinality($1::text[])
) as r
where d.id = r.id and d.status = r.held_status and d.attempts = r.held_attempts and d.due_at = r.held_due_at
returning d.id`);

/** A claim given back unattempted, due again at `dueAt` (a `ClaimRelease`). */
export interface SetBasedRelease {
  readonly id: string;
  readonly claim: { readonly attempt: number; readonly leaseUntil: number };
  readonly dueAt: number;
}

/** Gives the claims back in one statement; its rows name the deliveries given back (the others were stale). Each delivery at most once. */
export function releaseClaimsStatement(releases: readonly SetBasedRelease[], now: number): StoreStatement {
  return releaseClaims([releases.map((r) => r.id), releases.map((r) => r.claim.attempt - 1), releases.map((r) => r.claim.leaseUntil), releases.map((r) => r.dueAt), now]);
}

// ── a lease extended ────────────────────────────────────────────────────────────────────────────

// One claim, carried in a subquery (`offset 0` keeps it one) so that even the plan made with the values
// compares status with a column, not a literal: with a literal, the due index served the lookup by `due_at`.
const extendLease = named(`update resthooks_deliveries as d
set due_at = $4::bigint, updated_at = $5::bigint
from (select $1::text as id, $2::int as held_attempts, $3::bigint as held_due_at, 'in_flight' as held_status offset 0) as r
where d.id = r.id and d.status = r.held_status and d.attempts = r.held_attempts and d.due_at = r.held_due_at`);

/** Extends a claim's lease to `leaseUntil` while the claim still holds its delivery (one row changed, else none). */
export function extendLeaseStatement(claim: { readonly id: string; readonly attempt: number; readonly leaseUntil: number }, leaseUntil: number, now: number): StoreStatement {
  return extendLease([claim.id, claim.attempt - 1, claim.leaseUntil, leaseUntil, now]);
}

// ── claims read back ────────────────────────────────────────────────────────────────────────────

// A worker reads back the claims of the ids a job carries. As one row per delivery joined with its event
// and subscription, each row repeated the event's data and carried 23 columns, and pg made a value of each
// column of each row: about 20 µs of the worker's CPU per claim. Here the deliveries, their events (once
// each) and their subscriptions (once each) come as one JSON text, one value for pg and one `JSON.parse`.
// Numbers travel as JSON numbers: ids of time (ms) and counts stay below 2^53.
const readClaims = named(`with d as materialized (
  select d.id, d.event_id, d.subscription_id, d.attempts, d.body, d.due_at
  from resthooks_deliveries as d join ${byIds('$1::text[]', `'in_flight' as status`)} as named on d.id = named.id and d.status = named.status
)
select json_build_array(
  (select json_agg(json_build_array(d.id, d.event_id, d.subscription_id, d.attempts, d.body, d.due_at)) from d),
  (select json_agg(json_build_array(e.id, e.name, e.model, e.action, e.owner, e.all_owners, e.data, e.body, e.created_at))
    from resthooks_events as e where e.id in (select event_id from d)),
  (select json_agg(json_build_array(s.id, s.owner, s.event, s.target, s.active, s.secret, s.previous_secrets, s.failing_since, s.max_per_second))
    from resthooks_subscriptions as s where s.id in (select subscription_id from d))
)::text as claims`);

/** Reads the deliveries still in flight among `ids` with their events and subscriptions; `readClaimRows` reads its row. Each id at most once. */
export function readClaimsStatement(ids: readonly string[]): StoreStatement {
  return readClaims([ids]);
}

/** The rows a claim read found, as the store's tables hold them (the deliveries, and their events and subscriptions once each). */
export interface ClaimRows {
  readonly deliveries: ReadonlyArray<Pick<DeliveryTable, 'id' | 'event_id' | 'subscription_id' | 'attempts' | 'body' | 'due_at'>>;
  readonly events: ReadonlyMap<string, Pick<EventTable, 'name' | 'model' | 'action' | 'owner' | 'all_owners' | 'data' | 'body' | 'created_at'>>;
  readonly subscriptions: ReadonlyMap<string, Pick<SubscriptionTable, 'id' | 'owner' | 'event' | 'target' | 'active' | 'secret' | 'previous_secrets' | 'failing_since' | 'max_per_second'>>;
}

type Json = string | number | null;

export function readClaimRows(rows: readonly Record<string, unknown>[]): ClaimRows {
  const [deliveries, events, subscriptions] = JSON.parse(rows[0]!.claims as string) as [Json[][] | null, Json[][] | null, Json[][] | null];
  return {
    deliveries: (deliveries ?? []).map(([id, event_id, subscription_id, attempts, body, due_at]) => ({
      id: id as string, event_id: event_id as string, subscription_id: subscription_id as string, attempts: attempts as number, body: body as string | null, due_at: due_at as number,
    })),
    events: new Map((events ?? []).map(([id, name, model, action, owner, all_owners, data, body, created_at]) => [
      id as string,
      { name: name as string, model: model as string | null, action: action as string | null, owner: owner as string | null, all_owners: all_owners as number, data: data as string, body: body as string | null, created_at: created_at as number },
    ])),
    subscriptions: new Map((subscriptions ?? []).map(([id, owner, event, target, active, secret, previous_secrets, failing_since, max_per_second]) => [
      id as string,
      {
        id: id as string, owner: owner as string, event: event as string, target: target as string, active: active as number, secret: secret as string,
        previous_secrets: previous_secrets as string | null, failing_since: failing_since as number | null, max_per_second: max_per_second as number | null,
      },
    ])),
  };
}

// ── a whole fan-out pass ────────────────────────────────────────────────────────────────────────

// Every column travels as text, one row kind per line: `d` a delivery it inserted (claimed), `e` an event
// it took, `s` the subscription of an inserted delivery, `n` how many due events it read. Events and
// subscriptions come once each, not once per delivery (an event's data would repeat K times).
const B32 = `'0123456789abcdefghjkmnpqrstvwxyz'`;
const base32Of = (n: string) => [20, 15, 10, 5, 0].map((shift) => `substr(${B32}, ((${n} >> ${shift}) & 31)::int + 1, 1)`).join(' || ');

// The due events are locked (SKIP LOCKED: another dispatcher takes others) and taken in order while the
// deliveries of the events before each one are fewer than the queue's room, so the pass overshoots the
// room by less than one event's deliveries (as `fanOutBatch` stops at an event boundary): every event up
// to the one whose deliveries include the room's last (`n` = room), or all of them when they make fewer.
// Said so rather than as a running sum per event, because each node of the plan costs every execution
// (set up and torn down, rows or not), and a pass usually finds one or two events. The lookup is
// the default finder's: one index probe per event, by (event, owner) or, for an event to every owner (or
// none named), by event. Every event read has its deliveries worked out before the room is applied, so
// the events read per pass are bounded (`FAN_OUT_PASS_EVENTS`). A delivery's id is the pass's id prefix
// and its row number in base32 (5 characters: past 2^25 rows in one pass the ids would repeat, the
// insert fails, and the caller falls back to the pass step by step).
const FAN_OUT_PASS_CTES = `ev0 as materialized (
  select id, name, model, action, owner, all_owners, data, body, created_at, next_fanout_at
  from resthooks_events
  where status = 'pending' and next_fanout_at <= $1::bigint
  order by next_fanout_at, id
  limit $2::int
  for update skip locked
), ev as materialized (
  select ev0.*, row_number() over (order by next_fanout_at, id) as ord from ev0
), pairs as materialized (
  select ev.ord, ev.id as event_id, s.id, s.owner, s.event, s.target, s.active, s.secret, s.previous_secrets, s.failing_since, s.max_per_second,
    row_number() over (order by ev.ord, s.id) as n
  from ev cross join lateral (
    select * from resthooks_subscriptions s
    where s.event = ev.name and s.active = 1 and s.owner = ev.owner and ev.all_owners <> 1 and s.created_at <= ev.created_at
    union all
    select * from resthooks_subscriptions s
    where s.event = ev.name and s.active = 1 and (ev.all_owners = 1 or ev.owner is null) and s.created_at <= ev.created_at
  ) s
), taken as materialized (
  select ord, id, 'pending' as status from ev
  where $3::bigint > 0 and ord <= coalesce((select p.ord from pairs p where p.n = $3::bigint), ord)
), done as (
  update resthooks_events as e set status = 'done' from taken where e.id = taken.id and e.status = taken.status
), ins as (
  insert into resthooks_deliveries (id, event_id, subscription_id, status, attempts, due_at, body, last_status_code, last_error, created_at, updated_at)
  select $4::text || ${base32Of('p.n')}, p.event_id, p.id, 'in_flight', 0, $5::bigint, null, null, null, $1::bigint, $1::bigint
  from pairs p join taken using (ord)
  on conflict (event_id, subscription_id) do nothing
  returning id, event_id, subscription_id
)`;
const FAN_OUT_PASS_ROWS = `select 'd' as kind, id, event_id as c1, subscription_id as c2, null as c3, null as c4, null as c5, null as c6, null as c7, null as c8 from ins
union all
select 'e', ev.id, ev.name, ev.model, ev.action, ev.owner, ev.all_owners::text, ev.data, ev.body, ev.created_at::text from ev join taken using (ord)
union all
select distinct on (p.id) 's', p.id, p.owner, p.event, p.target, p.active::text, p.secret, p.previous_secrets, p.failing_since::text, p.max_per_second::text
from pairs p where p.id in (select subscription_id from ins)
union all
select 'n', count(*)::text, null, null, null, null, null, null, null, null from ev`;
const fanOutPass = named(`with ${FAN_OUT_PASS_CTES}\n${FAN_OUT_PASS_ROWS}`);

// A record batch written by the fan-out pass's own statement, so that both share one commit: while events
// trickle in, each pass and each small record batch was a commit of its own (a WAL flush the next save
// waited behind). The two touch different rows (the pass inserts deliveries and marks events done; the
// records move on deliveries claimed before, delete a 410's subscription and cancel its pending
// deliveries), and, one statement, both read one snapshot: the pass may fan out to a subscription its
// records delete or disable, as a pass that commits just before a separate record batch does.
const after = (sql: string, offset: number) => sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`);
const fanOutPassWithRecords = named(`with ${RECORD_CTES},
${after(FAN_OUT_PASS_CTES, RECORD_PARAMETERS)}
${after(FAN_OUT_PASS_ROWS, RECORD_PARAMETERS)}
union all
select 'moved', id, null, null, null, null, null, null, null, null from moved
union all
select 'disabled', id, null, null, null, null, null, null, null, null from marked where disable`);
const fanOutPassWithDelivered = named(`with ${DELIVERED_CTES},
${after(FAN_OUT_PASS_CTES, DELIVERED_PARAMETERS)}
${after(FAN_OUT_PASS_ROWS, DELIVERED_PARAMETERS)}
union all
select 'moved', id, null, null, null, null, null, null, null, null from moved`);

/** Where a fan-out pass stops and what its deliveries are claimed with. */
export interface FanOutPassLimits {
  /** Events read at most. */
  readonly events: number;
  /** Stop before an event once the deliveries of the events before it reach this many. */
  readonly deliveries: number;
  readonly now: number;
  readonly leaseUntil: number;
  /** The first 25 characters of a fresh delivery id (`dlv_` and 21 of the 26): each delivery adds 5. */
  readonly idPrefix: string;
}

/**
 * The most events one pass reads. Their deliveries are all worked out in the statement, taken or not:
 * a backlog of events to thousands of subscriptions each must not make one pass millions of rows.
 */
export const FAN_OUT_PASS_EVENTS = 128;

/** Fans out the due events in one statement; `readFanOutPass` reads what it returns. */
export function fanOutPassStatement(limits: FanOutPassLimits): StoreStatement {
  return fanOutPass(fanOutPassParameters(limits));
}

const fanOutPassParameters = (limits: FanOutPassLimits) => [limits.now, Math.min(limits.events, FAN_OUT_PASS_EVENTS), limits.deliveries, limits.idPrefix, limits.leaseUntil];

/** A record batch, as `recordStatement` takes it, written in the same statement as a fan-out pass. */
export interface RecordBatch {
  readonly records: readonly SetBasedRecord[];
  readonly now: number;
  readonly disableAfterMs: number | null;
  readonly disabledReason: string;
}

/**
 * A fan-out pass and a record batch in one statement (one commit); `readFanOutPass` reads the pass's rows
 * and `readRecordRows` the batch's. Each delivery at most once in the batch, as for `recordStatement`.
 */
export function fanOutPassWithRecordsStatement(limits: FanOutPassLimits, batch: RecordBatch): StoreStatement {
  const { records, now, disableAfterMs, disabledReason } = batch;
  if (allDeliveredFirst(records)) return fanOutPassWithDelivered([...deliveredParameters(records, now), ...fanOutPassParameters(limits)]);
  return fanOutPassWithRecords([...allRecordParameters(records, now, disableAfterMs, disabledReason), ...fanOutPassParameters(limits)]);
}

/** What a record statement's rows say: the deliveries moved on (the others were stale) and the subscriptions disabled. */
export function readRecordRows(rows: readonly Record<string, unknown>[]): { moved: Set<string>; disabled: string[] } {
  const moved = new Set<string>();
  const disabled: string[] = [];
  for (const row of rows) {
    if (row.kind === 'moved') moved.add(row.id as string);
    else if (row.kind === 'disabled') disabled.push(row.id as string);
  }
  return { moved, disabled };
}

// A committed pass taken back (its caller cannot use what it returned): the deliveries it inserted, still
// claimed by it and never attempted, and the `done` of its events.
const undoFanOutPass = named(`with undone as (
  delete from resthooks_deliveries as d using ${byIds('$1::text[]', `'in_flight' as status, 0 as attempts`)} as named
  where d.id = named.id and d.status = named.status and d.attempts = named.attempts
) update resthooks_events as e set status = 'pending' from ${byIds('$2::text[]', `'done' as status`)} as named
  where e.id = named.id and e.status = named.status`);

/** Takes back a committed fan-out pass: its deliveries by id and its events by id. */
export function undoFanOutPassStatement(deliveryIds: readonly string[], eventIds: readonly string[]): StoreStatement {
  return undoFanOutPass([deliveryIds, eventIds]);
}

type Text = string | null;
/** What a fan-out pass did, as rows of the store's tables (numbers still as the text PostgreSQL sent). */
export interface FanOutPassRows {
  /** How many due events it read; more may be due when it took fewer, or read as many as it could. */
  readonly read: number;
  readonly events: ReadonlyArray<{ id: string; name: string; model: Text; action: Text; owner: Text; all_owners: string; data: string; body: Text; created_at: string }>;
  readonly subscriptions: ReadonlyArray<{ id: string; owner: string; event: string; target: string; active: string; secret: string; previous_secrets: Text; failing_since: Text; max_per_second: Text }>;
  /** The deliveries it inserted, in id order (in flight, attempts 0, no body, due at the lease's end). */
  readonly deliveries: ReadonlyArray<{ id: string; event_id: string; subscription_id: string }>;
}

export function readFanOutPass(rows: readonly Record<string, unknown>[]): FanOutPassRows {
  const result = { read: 0, events: [] as FanOutPassRows['events'][number][], subscriptions: [] as FanOutPassRows['subscriptions'][number][], deliveries: [] as FanOutPassRows['deliveries'][number][] };
  for (const row of rows as ReadonlyArray<Record<'kind' | 'id', string> & Record<'c1' | 'c2' | 'c3' | 'c4' | 'c5' | 'c6' | 'c7' | 'c8', Text>>) {
    const { id, c1, c2, c3, c4, c5, c6, c7, c8 } = row;
    if (row.kind === 'd') result.deliveries.push({ id, event_id: c1!, subscription_id: c2! });
    else if (row.kind === 'e') result.events.push({ id, name: c1!, model: c2, action: c3, owner: c4, all_owners: c5!, data: c6!, body: c7, created_at: c8! });
    else if (row.kind === 's') result.subscriptions.push({ id, owner: c1!, event: c2!, target: c3!, active: c4!, secret: c5!, previous_secrets: c6, failing_since: c7, max_per_second: c8 });
    else if (row.kind === 'n') result.read = Number(id);
  }
  result.deliveries.sort((a, b) => (a.id < b.id ? -1 : 1));
  return result;
}
