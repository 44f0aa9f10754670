/**
 * The store: the SQL of every state transition, one method each, over Kysely (read-only reports
 * and the retention purge live beside it, in `recent-events.ts` and `retention.ts`).
 * Writes that change more than one row are compiled first and then run atomically by the dialect's
 * `executeBatch`, so each transition is all-or-nothing on every engine. It is the one large file
 * on purpose: keeping every statement in one place is what lets both engines be checked by one suite
 * and lets the hot statements be compiled once.
 * @module
 */
import { CompiledQuery, Kysely, sql, type MigrationResultSet, type RawBuilder, type Selectable, type SqlBool } from 'kysely';
import { MigrationRequiredError } from '../errors.js';
import { migrateToLatest, missingMigrations, missingMigrationsMessage } from './migrator.js';
import { storableText } from './storable-text.js';
import { SEALED_PREFIX, SecretBox, sealedKeyId, unknownKeyError } from './secret-box.js';
import type { AttemptTable, DeliveryFirstAttemptColumns, DeliveryTable, EventRow, EventStatus, EventTable, FreshEventTable, ResthooksDatabase, SubscriptionTable } from './schema.js';
import type { CompiledStatement } from './host-executor.js';
import type { StatementResult, StoreDialect, StoreStatement } from './store-dialect.js';
import { keptFirstAttemptId, keptInDeliveryRow, storedFirstAttemptId } from './rows.js';
import { FAN_OUT_PASS_EVENTS, extendLeaseStatement, fanOutPassStatement, fanOutPassWithRecordsStatement, fanOutStatement, namedValuesInsert, readFanOutPass, readRecordRows, recordStatement, readClaimRows, readClaimsStatement, releaseClaimsStatement, statementName, undoFanOutPassStatement, type FanOutPassLimits } from './postgres/set-based-writes.js';
import { newId } from '../ids.js';
import { CATCH_UP, HISTORY_CATCH_UP_DELIVERIES, isDeliveryOf, newestDeliveryIdsOf } from './subscription-history.js';
import { FRESH_EVENT_COLUMNS, livePreviousSecrets, toAttempt, toDelivery, toSubscription, type Attempt, type DeliveryWithAttempts, type JsonValue, type StoredEvent, type Subscription } from './records.js';

/** A delivery claimed for one attempt, with everything the sender needs, read in one query. */
export interface ClaimedDelivery {
  readonly id: string;
  readonly eventId: string;
  readonly subscriptionId: string;
  /** The number of the attempt about to be made (1 for the first). */
  readonly attempt: number;
  /** When the claim's lease lapses (ms since the epoch): from then on another claimer may take the delivery. */
  readonly leaseUntil: number;
  /** The per-subscription payload made at trigger time, when there is one. */
  readonly body: string | null;
  /** The stored event as the sender needs it: data still serialized, times in ms. */
  readonly event: Pick<StoredEvent, 'name' | 'model' | 'action' | 'owner' | 'allOwners'> & {
    readonly data: string;
    readonly body: string | null;
    readonly createdAt: number;
  };
  /** `null` when the subscription was deleted after the fan-out. */
  readonly subscription:
    | (Pick<Subscription, 'id' | 'owner' | 'event' | 'target' | 'active' | 'secret'> & {
        /** The rotation's old secrets, as stored (JSON). */
        readonly previousSecrets: string | null;
        /** When its current failure streak began; null when its last attempt succeeded. */
        readonly failingSince: number | null;
        /** Its own rate limit (deliveries per second); null: the configured default. */
        readonly maxPerSecond: number | null;
      })
    | null;
}

/**
 * A claim from its rows: the fan-out builds one from the rows it just wrote, `loadClaims` from the
 * joined columns it read back. Its event and subscription parts may be shared by many claims (made
 * once per event and per subscription row with `claimEventOf` and `claimSubscriptionOf`): they are read only.
 */
export function claimOf(
  delivery: Pick<DeliveryTable, 'id' | 'event_id' | 'subscription_id' | 'attempts' | 'body' | 'due_at'>,
  event: ClaimedDelivery['event'],
  subscription: ClaimedDelivery['subscription'],
): ClaimedDelivery {
  return {
    id: delivery.id,
    eventId: delivery.event_id,
    subscriptionId: delivery.subscription_id,
    attempt: Number(delivery.attempts) + 1,
    leaseUntil: Number(delivery.due_at),
    body: delivery.body,
    event,
    subscription,
  };
}

/** The event part of a claim, from the event's row. */
export function claimEventOf(event: Pick<EventTable, 'name' | 'model' | 'action' | 'owner' | 'all_owners' | 'data' | 'body' | 'created_at'>): ClaimedDelivery['event'] {
  return {
    name: event.name,
    model: event.model,
    action: event.action,
    owner: event.owner,
    allOwners: Number(event.all_owners) === 1,
    data: event.data,
    body: event.body,
    createdAt: Number(event.created_at),
  };
}

/** The subscription part of a claim, from the subscription's row (null: deleted since the fan-out). */
export function claimSubscriptionOf(
  subscription: Pick<SubscriptionTable, 'id' | 'owner' | 'event' | 'target' | 'active' | 'secret' | 'previous_secrets' | 'failing_since' | 'max_per_second'> | null,
): ClaimedDelivery['subscription'] {
  return (
    subscription && {
      id: subscription.id,
      owner: subscription.owner,
      event: subscription.event,
      target: subscription.target,
      active: Number(subscription.active) === 1,
      secret: subscription.secret,
      previousSecrets: subscription.previous_secrets,
      failingSince: subscription.failing_since === null ? null : Number(subscription.failing_since),
      maxPerSecond: subscription.max_per_second == null ? null : Number(subscription.max_per_second),
    }
  );
}

/** The claim's event as `onSent` shows it to the app: data parsed, time a Date. */
export function storedEventOf(claim: Pick<ClaimedDelivery, 'eventId' | 'event'>): StoredEvent {
  const { name, model, action, owner, allOwners, data, createdAt } = claim.event;
  return { id: claim.eventId, name, model, action, owner, allOwners, data: JSON.parse(data) as JsonValue, createdAt: new Date(createdAt) };
}

/**
 * Which claim a record or a release is made under. A claim's lease expiry is its token: the claimer
 * that takes over a lapsed lease sets a later one (`claimDue` guarantees it), so only the process
 * that still holds the claim matches the delivery's `in_flight` row (attempts + 1, due_at).
 */
export type ClaimToken = Pick<ClaimedDelivery, 'attempt' | 'leaseUntil'>;

/** The result of one attempt, as the dispatcher hands it to `recordAttempts`. */
export interface AttemptRecord {
  /** The claim the attempt was made under: the record applies only while the delivery is still held by it. */
  readonly claim: ClaimToken;
  /** Undefined when the delivery ends without an attempt (its subscription was deleted or deactivated). */
  readonly attempt: AttemptTable | undefined;
  readonly delivery: Pick<DeliveryTable, 'id' | 'status' | 'attempts' | 'due_at' | 'last_status_code' | 'last_error'>;
  /** Set when the receiver answered 410 Gone: the subscription is deleted in the same transaction. */
  readonly goneSubscriptionId?: string;
  /** The attempt's effect on its subscription's failure streak (absent when no attempt was made). */
  readonly streak?: { readonly subscriptionId: string; readonly failed: boolean };
}

/**
 * A fan-out that failed because its subscription lookup did: the event stays pending until
 * `retryAt`, or is given up on (`retryAt` null: undeliverable).
 */
export interface FanOutSetback {
  readonly eventId: string;
  /** Where the event sits: see `FannedOutEvent.seq`. */
  readonly seq?: number | null;
  /** The event's failed lookups, this one included. */
  readonly attempts: number;
  /** How many of them were the custom finder's own failures. */
  readonly finderFailures: number;
  /** Why, as shown to the operator. */
  readonly error: string;
  readonly retryAt: number | null;
}

/**
 * An event due for fan-out. `seq` is set for a fresh event, still in `resthooks_outbox` (see migration
 * 0006): the fan-out that handles it moves it into `resthooks_events`. Null for one already there (a
 * lookup that failed before, a retried event, or one written by a store that appends there).
 */
export type PendingEvent = EventRow & { readonly seq: number | null };

/** An event the fan-out has handled, and its deliveries. */
export interface FannedOutEvent {
  readonly eventId: string;
  /**
   * `PendingEvent.seq` as read: a number for a fresh event (moved out of `resthooks_outbox` by its key),
   * null for one in `resthooks_events`. Left out, the event is looked for in both (the fresh table by
   * `id`, which it has no index on: for callers that did not read the event with `pendingEvents`).
   */
  readonly seq?: number | null;
  readonly deliveries: readonly DeliveryTable[];
}

/** A claim given back unattempted by its holder, due again at `dueAt`. */
export interface ClaimRelease {
  readonly id: string;
  readonly claim: ClaimToken;
  readonly dueAt: number;
}

/** What `recordAttempts` did with a batch: the records it could not write as given, and why. */
export interface RecordedAttempts {
  /** Ids of the subscriptions this batch disabled. */
  readonly disabled: string[];
  /**
   * Records made under a claim no longer held (its lease lapsed and another claimer took the
   * delivery over, or the delivery moved on): nothing of them was written.
   */
  readonly stale: AttemptRecord[];
  /** Records written without their response excerpt and error texts, which the database refused. */
  readonly withoutTexts: AttemptRecord[];
  /** Records that could not be written at all: their claims were given back, so the attempt is made again. */
  readonly released: AttemptRecord[];
  /** Why the batch was written record by record, when it was. */
  readonly batchError?: unknown;
}

/**
 * A batch of attempt records that a fan-out pass may write in its own statement, so that both share one
 * commit (PostgreSQL, `fansOutInOneStatement`). The store calls exactly one of the two once it has tried.
 */
export interface RecordsForAPass {
  readonly records: readonly AttemptRecord[];
  readonly disableAfterMs: number | null;
  /** Written with the pass, with what `recordAttempts` would have returned for them. */
  written(recorded: RecordedAttempts): void;
  /** Not written: the batch is its owner's to write (as the pass failed, or refused them, or could not take them). */
  notWritten(): void;
}

export interface SubscriptionFilter {
  owner?: string;
  event?: string;
  active?: boolean;
  limit: number;
  /** Return only ids older than this one (newest-first paging). */
  before?: string;
}

// The status tests that match the partial indexes (resthooks_events_pending, resthooks_deliveries_due)
// are written as SQL literals: SQLite uses a partial index only when the query's WHERE implies the
// index's, and a bound parameter implies nothing, so `status = ?` scanned the whole table (and sorted
// it for the claim) on every pass.
const PENDING = sql.lit<'pending'>('pending');
const UNDELIVERABLE = sql.lit<'undeliverable'>('undeliverable');
const IN_FLIGHT = sql.lit<'in_flight'>('in_flight');
const DUE_STATUSES = [PENDING, IN_FLIGHT];

/** The name of the probe's event row: never declared, never fanned out (it is stored as done). */
const PROBE_EVENT = 'resthooks.outbox-probe';
const S = 'resthooks_subscriptions' as const;
const E = 'resthooks_events' as const;
const F = 'resthooks_outbox' as const;
const D = 'resthooks_deliveries' as const;
const A = 'resthooks_attempts' as const;

/**
 * True while one of the claims in `held` still holds its delivery: `(id, attempts, due_at)` as the claim
 * left them, status `in_flight`. Three values per claim, in that order (`heldParams`, one claim after
 * another; `unboundHolders(n)` for a statement compiled once and bound later).
 */
function heldBy(held: readonly unknown[]): RawBuilder<SqlBool> {
  const each: RawBuilder<unknown>[] = [];
  for (let i = 0; i < held.length; i += 3) each.push(sql`(held.id = ${held[i]} and held.attempts = ${held[i + 1]} and held.due_at = ${held[i + 2]})`);
  return sql<SqlBool>`exists (select 1 from ${sql.table(D)} as held where held.status = ${IN_FLIGHT} and (${sql.join(each, sql` or `)}))`;
}
/** Sample values for `holders` claims: their placeholders are bound to `heldParams` when the statement runs. */
function unboundHolders(holders: number): unknown[] {
  return Array.from({ length: holders }, () => ['', 0, 0]).flat();
}
function heldParams(deliveryId: string, claim: ClaimToken): unknown[] {
  return [deliveryId, claim.attempt - 1, claim.leaseUntil];
}
// When a record cannot be written even without its texts, its claim is given back due this much later:
// the attempt is made again, but a row the database keeps refusing does not make a receiver spin.
const UNWRITABLE_RETRY_MS = 5_000;

export class KyselyStore {
  readonly db: Kysely<ResthooksDatabase>;
  readonly dialect: StoreDialect;
  /** Seals secrets on every write and opens them on every read: above the store, secrets are plaintext. */
  readonly secrets: SecretBox;
  #ready: Promise<void> | undefined;
  /** The tables are known to exist: a synchronous trigger may write without waiting for `ready()`. */
  #isReady = false;
  /**
   * The outbox INSERT, run on every model save: its SQL compiled once, only parameters vary. On PostgreSQL a statement kept prepared per connection (every save's INSERT was parsed
   * and planned anew), run in the set-based writes' plan mode; a host transaction's executor takes it as the
   * plain statement it also is.
   */
  readonly #insertEvent: (parameters: readonly unknown[]) => StoreStatement;
  readonly #insertFreshEventSql: string;
  // The fan-out's read of fresh events, columns in FRESH_COLUMNS order, then seq (see `pendingEventOf`).
  readonly #readFreshEventsSql: string;
  // A fresh event's move into resthooks_events with the status the fan-out gives it, and its removal.
  // Both match (seq, id): a seq freed by a move may be given to a later event, which must stay.
  readonly #moveFreshEventSql: string;
  readonly #deleteFreshEventSql: string;
  readonly #moveFreshEventByIdSql: string;
  readonly #deleteFreshEventByIdSql: string;
  // A whole fan-out batch of fresh events moved done, and removed, by one statement each (see `#moveFreshDone`).
  readonly #moveFreshDoneSql: string;
  readonly #deleteFreshDoneSql: string;
  readonly #insertDeliverySql: string;
  // So are the statements written once per delivery by the fan-out and per attempt by the recorder:
  // building and compiling them with Kysely cost more than running them (~40 µs per delivery).
  readonly #markEventDoneSql: string;
  // Each applies only while the record's claim still holds its delivery (see `recordAttempts`).
  readonly #insertAttemptSql: string;
  readonly #updateDeliverySql: string;
  // The same update keeping the attempt in the delivery's row: a first attempt that delivered (migration 0007).
  readonly #recordFirstDeliverySql: string;
  readonly #deleteGoneSql: string;
  readonly #releaseClaimSql: string;
  // The history's catch-up (`catchesUpSubscriptionHistory`), compiled once.
  readonly #catchUpStatements: readonly CompiledStatement[];
  // The streak and disable statements cover a run of attempts of one subscription: compiled per run length.
  readonly #runSql = new Map<string, string>();
  #dueWrites = 0;
  #appendsDeliveries = false;
  /** Deliveries this store has inserted since it last caught the history up (see `catchUpHistory`). */
  #deliveriesSinceCatchUp = 0;
  /** Whether this store keeps `resthooks_subscription_history` in catch-up batches (the dialect's `catchesUpSubscriptionHistory`). */
  readonly catchesUpHistory: boolean;

  constructor(dialect: StoreDialect, secrets: SecretBox = SecretBox.plaintext()) {
    this.dialect = dialect;
    this.catchesUpHistory = dialect.capabilities.catchesUpSubscriptionHistory === true;
    this.secrets = secrets;
    this.db = new Kysely<ResthooksDatabase>({ dialect: dialect.kysely });
    const insertEventSql = this.db.insertInto(E).values(SAMPLE_EVENT).compile().sql;
    this.#insertEvent = dialect.name === 'postgres' ? namedValuesInsert(insertEventSql) : (parameters) => statement(insertEventSql, parameters);
    this.#insertFreshEventSql = this.db.insertInto(F).values(SAMPLE_FRESH_EVENT).compile().sql;
    this.#readFreshEventsSql = this.db.selectFrom(F).select([...FRESH_COLUMNS, 'seq']).orderBy('seq').limit(0).compile().sql;
    const asText = sql`cast(${''} as text)`;
    const asInteger = sql`cast(${0} as bigint)`;
    // `where` before `on conflict`: SQLite parses INSERT … SELECT … ON CONFLICT only after a WHERE.
    const move = (where: RawBuilder<SqlBool>) =>
      sql`insert into ${sql.table(E)} (${sql.join(FRESH_COLUMNS.map((c) => sql.ref(c)))}, status, error, fanout_attempts, finder_failures, next_fanout_at)
      select ${sql.join(FRESH_COLUMNS.map((c) => sql.ref(c)))}, ${asText}, ${asText}, ${asInteger}, ${asInteger}, ${asInteger}
      from ${sql.table(F)} where ${where}
      on conflict (id) do nothing`.compile(this.db).sql;
    this.#moveFreshEventSql = move(sql<SqlBool>`seq = ${0} and id = ${''}`);
    this.#deleteFreshEventSql = this.db.deleteFrom(F).where('seq', '=', 0).where('id', '=', '').compile().sql;
    this.#moveFreshEventByIdSql = move(sql<SqlBool>`id = ${''}`);
    this.#deleteFreshEventByIdSql = this.db.deleteFrom(F).where('id', '=', '').compile().sql;
    const inBatch = sql<SqlBool>`seq between ${0} and ${0} and id in (select value from json_each(${''}))`;
    this.#moveFreshDoneSql = move(inBatch);
    this.#deleteFreshDoneSql = sql`delete from ${sql.table(F)} where ${inBatch}`.compile(this.db).sql;
    this.#insertDeliverySql = this.db
      .insertInto(D)
      .values(SAMPLE_DELIVERY)
      .onConflict((oc) => oc.columns(['event_id', 'subscription_id']).doNothing())
      .compile().sql;
    this.#markEventDoneSql = this.db.updateTable(E).set({ status: 'done' }).where('id', '=', '').where('status', '=', 'pending').compile().sql;
    // INSERT … SELECT so that the row is written only while the claim holds; the casts give the
    // selected parameters the column types (PostgreSQL would otherwise read them as text).
    const text = sql`cast(${''} as text)`;
    const integer = sql`cast(${0} as bigint)`;
    this.#insertAttemptSql = sql`insert into ${sql.table(A)} (${sql.join(ATTEMPT_COLUMNS.map((c) => sql.ref(c)))})
      select ${sql.join(ATTEMPT_COLUMNS.map((c) => (ATTEMPT_INTEGER_COLUMNS.has(c) ? integer : text)))}
      where ${heldBy(unboundHolders(1))}
      on conflict (delivery_id, number) do nothing`.compile(this.db).sql;
    const deliveryUpdate = (change: typeof SAMPLE_DELIVERY_CHANGE | typeof SAMPLE_FIRST_DELIVERY) =>
      this.db.updateTable(D).set(change).where('id', '=', '').where('status', '=', IN_FLIGHT).where('attempts', '=', 0).where('due_at', '=', 0).compile().sql;
    this.#updateDeliverySql = deliveryUpdate(SAMPLE_DELIVERY_CHANGE);
    this.#recordFirstDeliverySql = deliveryUpdate(SAMPLE_FIRST_DELIVERY);
    this.#deleteGoneSql = this.db.deleteFrom(S).where('id', '=', '').where(heldBy(unboundHolders(1))).compile().sql;
    this.#catchUpStatements = CATCH_UP.map((query) => query.compile(this.db));
    this.#releaseClaimSql = this.db
      .updateTable(D)
      .set({ status: 'pending', due_at: 0, updated_at: 0 })
      .where('id', '=', '')
      .where('status', '=', IN_FLIGHT)
      .where('attempts', '=', 0)
      .where('due_at', '=', 0)
      .compile().sql;
  }

  /** Rows of the deliveries table that are the subscription's deliveries. */
  #ofSubscription(subscriptionId: string): RawBuilder<SqlBool> {
    return this.catchesUpHistory ? isDeliveryOf('id', subscriptionId) : sql<SqlBool>`${sql.ref('subscription_id')} = ${subscriptionId}`;
  }

  /** Cancels the pending deliveries of a subscription its receiver said is gone (410): compiled where used, a 410 is rare. */
  #cancelGone(subscriptionId: string, now: number, held: readonly unknown[]): CompiledStatement {
    const { sql: text, parameters } = this.db
      .updateTable(D)
      .set({ status: 'cancelled', last_error: 'subscription gone (410)', updated_at: now })
      .where(this.#ofSubscription(subscriptionId))
      .where('status', '=', PENDING)
      .where(heldBy(held))
      .compile();
    return statement(text, parameters);
  }

  /**
   * Adds the deliveries inserted since the last catch-up to `resthooks_subscription_history` and moves
   * its mark, where the dialect `catchesUpSubscriptionHistory`; nothing elsewhere. The store does it by
   * itself every `HISTORY_CATCH_UP_DELIVERIES` deliveries, so the tail the readers scan stays short.
   */
  async catchUpHistory(): Promise<void> {
    if (!this.catchesUpHistory) return;
    const since = this.#deliveriesSinceCatchUp;
    await this.dialect.executeBatch(this.#catchUpStatements);
    this.#deliveriesSinceCatchUp -= since;
  }

  /**
   * Runs a read the dispatcher makes on every pass. On PostgreSQL it is sent as a named statement,
   * parsed and planned once per connection; elsewhere through Kysely as usual (SQLite's dialect keeps
   * its statements prepared anyway).
   */
  async #hotRead<Row>(query: { compile(): CompiledQuery<Row>; execute(): Promise<Row[]> }): Promise<Row[]> {
    if (this.dialect.name !== 'postgres') return query.execute();
    const compiled = query.compile();
    const [result] = await this.dialect.executeBatch([{ sql: compiled.sql, parameters: compiled.parameters, name: statementName(compiled.sql) }]);
    return result!.rows as Row[];
  }

  /** The SQL of a streak or disable statement guarded by `holders` claims (compiled once per length). */
  #runStatementSql(kind: 'clear' | 'start' | 'disable', holders: number): string {
    const key = `${kind}:${holders}`;
    let text = this.#runSql.get(key);
    if (text === undefined) {
      const query =
        kind === 'clear'
          ? this.db.updateTable(S).set({ failing_since: null }).where('id', '=', '').where('failing_since', 'is not', null)
          : kind === 'start'
            ? this.db.updateTable(S).set({ failing_since: 0 }).where('id', '=', '').where('failing_since', 'is', null)
            : this.db.updateTable(S).set({ active: 0, updated_at: 0, disabled_reason: '' }).where('id', '=', '').where('active', '=', 1).where('failing_since', '<=', 0);
      text = query.where(heldBy(unboundHolders(holders))).compile().sql;
      this.#runSql.set(key, text);
    }
    return text;
  }

  migrate(): Promise<MigrationResultSet> {
    return migrateToLatest(this.db);
  }

  /** Resolves once the schema is up to date: migrates when `autoMigrate`, else checks and names what is missing. Memoized. */
  ready(autoMigrate: boolean): Promise<void> {
    this.#ready ??= (async () => {
      if (autoMigrate) {
        const { error } = await this.migrate();
        if (error) throw error;
        return;
      }
      // The recorded migrations, not the tables: a schema one migration behind has every table and still fails.
      const missing = await missingMigrations(this.db);
      if (missing.length > 0) throw new MigrationRequiredError(missingMigrationsMessage(missing, this.dialect.name), missing);
    })().then(() => this.#checkSecretKeys());
    this.#ready.then(
      () => (this.#isReady = true),
      () => (this.#ready = undefined),
    );
    return this.#ready;
  }

  /**
   * How many writes through this store, ended, may have made a delivery due that no claim of it holds (a
   * retry, a claim given back, a requeue, deliveries created unclaimed): a dispatcher that found
   * nothing due need not ask again until this changes, a lease lapses, or another process may have
   * written (its poll interval).
   */
  get dueWrites(): number {
    return this.#dueWrites;
  }

  /**
   * Runs a write that may make deliveries due, counted in `dueWrites` once it has ended: a read of the
   * next due time made while it ran may not see it, so the count must move after, not before.
   */
  async #makingDue<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      this.#dueWrites++;
    }
  }

  /**
   * Whether this store has compiled trigger-time deliveries (a per-subscription serializer): those
   * become due when the host's transaction commits, which only the outbox wake-up tells.
   */
  get appendsDeliveries(): boolean {
    return this.#appendsDeliveries;
  }

  /** Whether `ready()` has resolved. */
  get isReady(): boolean {
    return this.#isReady;
  }

  destroy(): Promise<void> {
    return this.db.destroy();
  }

  // ── write path ──────────────────────────────────────────────────────────────────────────────

  /**
   * The outbox append as compiled statements, for running inside a host transaction. An event waiting for
   * fan-out goes to the fresh table where the dialect has one (`appendsFreshEvents`); one already handled
   * (done with its deliveries, or undeliverable) goes straight to `resthooks_events`.
   */
  compileAppend(event: EventTable, deliveries: readonly DeliveryTable[] = []): CompiledStatement[] {
    if (deliveries.length > 0) {
      this.#dueWrites++;
      this.#appendsDeliveries = true;
      this.#deliveriesSinceCatchUp += deliveries.length;
    }
    const fresh = this.dialect.capabilities.appendsFreshEvents && event.status === 'pending' && deliveries.length === 0;
    return [
      fresh ? statement(this.#insertFreshEventSql, freshEventParams(event)) : this.#insertEvent(eventParams(event)),
      ...deliveries.map((d) => statement(this.#insertDeliverySql, deliveryParams(d))),
    ];
  }

  async append(event: EventTable, deliveries: readonly DeliveryTable[] = []): Promise<void> {
    await this.dialect.executeBatch(this.compileAppend(event, deliveries));
  }

  /**
   * An event row that no one delivers (stored as done), and its removal, compiled for this store's
   * dialect: an ORM adapter runs them on the app's connection to learn whether the app's database is
   * this store's (see {@link OutboxProbe}). Built here so that no caller has to read SQL back.
   */
  compileProbe(id: string, now: number): { insert: CompiledStatement; remove: CompiledStatement } {
    const row: EventTable = { ...SAMPLE_EVENT, id, name: PROBE_EVENT, owner: id, data: '{}', status: 'done', created_at: now };
    return { insert: this.db.insertInto(E).values(row).compile(), remove: this.db.deleteFrom(E).where('id', '=', id).compile() };
  }

  async hasEvent(id: string): Promise<boolean> {
    if ((await this.db.selectFrom(E).select('id').where('id', '=', id).executeTakeFirst()) !== undefined) return true;
    return (await this.db.selectFrom(F).select('id').where('id', '=', id).limit(1).executeTakeFirst()) !== undefined;
  }

  // ── subscriptions ───────────────────────────────────────────────────────────────────────────

  /** Stores the subscription, its secret sealed. `row` holds the plaintext secret. */
  async insertSubscription(row: SubscriptionTable): Promise<Subscription> {
    await this.db.insertInto(S).values(this.#sealed(row)).execute();
    return toSubscription(row);
  }

  async getSubscription(id: string): Promise<Subscription | undefined> {
    const row = await this.db.selectFrom(S).selectAll().where('id', '=', id).executeTakeFirst();
    return row && toSubscription(this.#opened(row));
  }

  /** The row as stored: its secret and previous secrets sealed (or as they are, when not sealing). */
  #sealed<Row extends Pick<SubscriptionTable, 'id' | 'secret' | 'previous_secrets'>>(row: Row): Row {
    const { id, secret, previous_secrets } = row;
    return { ...row, secret: this.secrets.seal(secret, id), previous_secrets: previous_secrets === null ? null : this.secrets.seal(previous_secrets, id, 'previous_secrets') };
  }

  /** The row as read: its secret and previous secrets opened (plaintext rows read as they are). */
  #opened<Row extends Pick<SubscriptionTable, 'id' | 'secret' | 'previous_secrets'>>(row: Row): Row {
    const { id, secret, previous_secrets } = row;
    return { ...row, secret: this.secrets.open(secret, id), previous_secrets: previous_secrets === null ? null : this.secrets.open(previous_secrets, id, 'previous_secrets') };
  }

  /**
   * Throws `ConfigError` naming the key when a subscription's secret is sealed under a key this store
   * was not given: at start-up, rather than at the first delivery of that subscription. One scan of
   * the subscriptions (the key id is at a fixed place in the sealed text).
   */
  async #checkSecretKeys(): Promise<void> {
    const sealedUnknown = (column: 'secret' | 'previous_secrets') =>
      sql<SqlBool>`(substr(${sql.ref(column)}, 1, ${SEALED_PREFIX.length}) = ${SEALED_PREFIX}${sql.join(
        this.secrets.keyIds.map((id) => sql` and substr(${sql.ref(column)}, 1, ${SEALED_PREFIX.length + id.length + 1}) <> ${`${SEALED_PREFIX}${id}:`}`),
        sql``,
      )})`;
    const row = await this.db
      .selectFrom(S)
      .select(['secret', 'previous_secrets'])
      .where((eb) => eb.or([sealedUnknown('secret'), sealedUnknown('previous_secrets')]))
      .limit(1)
      .executeTakeFirst();
    if (!row) return;
    const keyId = [row.secret, row.previous_secrets ?? ''].map(sealedKeyId).find((id) => id !== undefined && !this.secrets.keyIds.includes(id));
    throw unknownKeyError(keyId ?? '', this.secrets.keyIds);
  }

  /**
   * Re-seals the secrets of up to `limit` subscriptions after id `after` (id order) that are not sealed
   * under the first key (plaintext rows included). Each row is one UPDATE guarded by the values it read:
   * a row rotated meanwhile is read again and re-sealed in turn, so the pass ends with every row of the
   * page current, whatever ran beside it. Returns the page's last id (undefined after the last page)
   * and how many rows it re-sealed.
   */
  async resealSecrets(limit: number, after?: string): Promise<{ last: string | undefined; scanned: number; resealed: number }> {
    const read = this.db.selectFrom(S).select(['id', 'secret', 'previous_secrets']);
    const rows = await (after === undefined ? read : read.where('id', '>', after)).orderBy('id').limit(limit).execute();
    let resealed = 0;
    for (const first of rows) {
      let row: (typeof rows)[number] | undefined = first;
      while (row && !(this.secrets.isCurrent(row.secret) && (row.previous_secrets === null || this.secrets.isCurrent(row.previous_secrets)))) {
        const next = this.#sealed(this.#opened(row));
        const result = await this.db
          .updateTable(S)
          .set({ secret: next.secret, previous_secrets: next.previous_secrets })
          .where('id', '=', row.id)
          .where('secret', '=', row.secret)
          .where('previous_secrets', row.previous_secrets === null ? 'is' : '=', row.previous_secrets)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) > 0) {
          resealed++;
          break;
        }
        row = await read.where('id', '=', row.id).executeTakeFirst();
      }
    }
    return { last: rows.length < limit ? undefined : rows.at(-1)?.id, scanned: rows.length, resealed };
  }

  async listSubscriptions(filter: SubscriptionFilter): Promise<Subscription[]> {
    let query = this.db.selectFrom(S).selectAll().orderBy('id', 'desc').limit(filter.limit);
    if (filter.owner !== undefined) query = query.where('owner', '=', filter.owner);
    if (filter.event !== undefined) query = query.where('event', '=', filter.event);
    if (filter.active !== undefined) query = query.where('active', '=', filter.active ? 1 : 0);
    if (filter.before !== undefined) query = query.where('id', '<', filter.before);
    return (await query.execute()).map((row) => toSubscription(this.#opened(row)));
  }

  /**
   * Replaces the secret; the one it replaces keeps signing until `expiresAt`, beside the newest
   * `keep - 1` older ones still live. Two rotations at once both count: the write applies only over
   * the secret it read, and is read again otherwise (each miss means another rotation went through).
   */
  async rotateSecret(id: string, rotation: { next: string; expiresAt: number; keep: number; now: number; owner?: string }): Promise<Subscription | undefined> {
    for (;;) {
      let query = this.db.selectFrom(S).select(['secret', 'previous_secrets']).where('id', '=', id);
      if (rotation.owner !== undefined) query = query.where('owner', '=', rotation.owner);
      const stored = await query.executeTakeFirst();
      if (!stored) return undefined;
      const current = this.#opened({ id, ...stored });
      const previous = [{ secret: current.secret, expiresAt: rotation.expiresAt }, ...livePreviousSecrets(current.previous_secrets, rotation.now)].slice(0, rotation.keep);
      const next = this.#sealed({ id, secret: rotation.next, previous_secrets: JSON.stringify(previous) });
      const row = await this.db
        .updateTable(S)
        .set({ secret: next.secret, previous_secrets: next.previous_secrets, updated_at: rotation.now })
        .where('id', '=', id)
        // The value as stored: a concurrent rotation (or re-seal) changes it, and this one reads again.
        .where('secret', '=', stored.secret)
        .returningAll()
        .executeTakeFirst();
      if (row) return toSubscription(this.#opened(row));
    }
  }

  async updateSubscription(id: string, patch: Partial<SubscriptionTable>): Promise<Subscription | undefined> {
    const row = await this.db.updateTable(S).set(patch).where('id', '=', id).returningAll().executeTakeFirst();
    return row && toSubscription(this.#opened(row));
  }

  /** Deletes the subscription and cancels its deliveries that have not been attempted yet. */
  async deleteSubscription(id: string, now: number): Promise<boolean> {
    const [deleted] = await this.dialect.executeBatch([
      this.db.deleteFrom(S).where('id', '=', id).compile(),
      this.#cancelPendingOf(id, now, 'subscription deleted'),
    ]);
    return (deleted?.changes ?? 0) > 0;
  }

  #cancelPendingOf(subscriptionId: string, now: number, reason: string): CompiledQuery {
    return this.db
      .updateTable(D)
      .set({ status: 'cancelled', last_error: reason, updated_at: now })
      .where(this.#ofSubscription(subscriptionId))
      .where('status', '=', 'pending')
      .compile();
  }

  /** The default finder: active subscriptions to `event` of `owner`, or of every owner when `owner` is null. */
  async activeSubscriptionsFor(event: string, owner: string | null): Promise<Subscription[]> {
    return (await this.activeSubscriptionRowsFor(event, owner)).map(toSubscription);
  }

  /** The same, as rows (secrets opened): the fan-out hands claims to the queue with everything an attempt needs. */
  async activeSubscriptionRowsFor(event: string, owner: string | null): Promise<SubscriptionTable[]> {
    let query = this.db.selectFrom(S).selectAll().where('event', '=', event).where('active', '=', 1);
    if (owner !== null) query = query.where('owner', '=', owner);
    return (await this.#hotRead(query.orderBy('id'))).map((row) => this.#opened(row));
  }

  // ── fan-out ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Up to `limit` events due for fan-out: never tried ones first, in order (those pending in
   * `resthooks_events` from before migration 0006, then the fresh table's in `seq` order), then those
   * whose lookup failed, by the time of their next try. Served by the partial index (next_fanout_at, id)
   * and the fresh table's own key.
   */
  async pendingEvents(limit: number, now = Date.now()): Promise<PendingEvent[]> {
    const indexed = (await this.#hotRead(
      this.db.selectFrom(E).selectAll().where('status', '=', PENDING).where('next_fanout_at', '<=', now).orderBy('next_fanout_at').orderBy('id').limit(limit),
    )).map((row): PendingEvent => ({ ...row, seq: null }));
    if (!this.dialect.capabilities.appendsFreshEvents) return indexed;
    const untried = indexed.filter((row) => Number(row.next_fanout_at) === 0);
    const fresh = limit > untried.length ? await this.#freshEvents(limit - untried.length) : [];
    return [...untried, ...fresh, ...indexed.filter((row) => Number(row.next_fanout_at) !== 0)].slice(0, limit);
  }

  /** The first `limit` fresh events, in `seq` order: as arrays where the dialect reads them so (one object per event, not two). */
  async #freshEvents(limit: number): Promise<PendingEvent[]> {
    if (!this.dialect.readArrays) return (await this.db.selectFrom(F).selectAll().orderBy('seq').limit(limit).execute()).map(toPendingEvent);
    return (await this.dialect.readArrays(statement(this.#readFreshEventsSql, [limit]))).map(pendingEventOf);
  }

  /**
   * A whole fan-out pass in one statement, with the default finder (`fansOutInOneStatement`): up to
   * `limit` due events, taken in order while the deliveries of those before are fewer than
   * `handoff.capacity`, marked done, their deliveries inserted claimed until `handoff.leaseUntil`.
   * Returns the events it took, whether more may be due, and the claims of the deliveries it inserted.
   */
  async fanOutPass(
    limit: number,
    now: number,
    handoff: { readonly capacity: number; readonly leaseUntil: number },
    recordsForPass?: () => RecordsForAPass | undefined,
  ): Promise<{ more: boolean; events: EventTable[]; claimed: ClaimedDelivery[] }> {
    const asked = Math.min(limit, FAN_OUT_PASS_EVENTS);
    const limits: FanOutPassLimits = { events: asked, deliveries: handoff.capacity, now, leaseUntil: handoff.leaseUntil, idPrefix: newId('dlv').slice(0, 25) };
    const shared = recordsForPass?.();
    const pass = readFanOutPass(shared ? await this.#passWithRecords(limits, shared) : (await this.dialect.executeBatch([fanOutPassStatement(limits)]))[0]!.rows);
    const events = new Map(pass.events.map((e): [string, EventTable] => [e.id, { ...e, all_owners: Number(e.all_owners), created_at: Number(e.created_at), status: 'done', error: null }]));
    const openAll = () =>
      new Map(pass.subscriptions.map((s) => [s.id, this.#opened({ ...s, active: Number(s.active), failing_since: s.failing_since === null ? null : Number(s.failing_since), max_per_second: s.max_per_second === null ? null : Number(s.max_per_second) })]));
    let subscriptions: ReturnType<typeof openAll>;
    try {
      subscriptions = openAll();
    } catch (error) {
      // A secret sealed under a key this process lacks: the pass is undone, so that the pass step by step
      // sets back only the events concerned (and says which key), and a process that has the key fans them out.
      await this.dialect.executeBatch([undoFanOutPassStatement(pass.deliveries.map((d) => d.id), [...events.keys()])]);
      throw error;
    }
    // One claim part per event and per subscription, shared by their deliveries' claims.
    const claimEvents = new Map([...events].map(([id, e]) => [id, claimEventOf(e)]));
    const claimSubscriptions = new Map([...subscriptions].map(([id, sub]) => [id, claimSubscriptionOf(sub)]));
    const claimed = pass.deliveries.map((d) =>
      claimOf({ ...d, attempts: 0, body: null, due_at: handoff.leaseUntil }, claimEvents.get(d.event_id)!, claimSubscriptions.get(d.subscription_id)!),
    );
    return { more: pass.read === asked || events.size < pass.read, events: [...events.values()], claimed };
  }

  /**
   * The pass with a record batch in its statement (one commit for both), recorded at the pass's `now`.
   * Refused, the pass runs alone and the batch goes back to its owner, whose own write takes a refused
   * batch apart; unavailable, both fail.
   */
  async #passWithRecords(limits: FanOutPassLimits, shared: RecordsForAPass): Promise<readonly Record<string, unknown>[]> {
    const { records, disableAfterMs } = shared;
    // Each delivery once per statement (see `recordStatement`).
    let written: StatementResult | undefined;
    if (records.length > 0 && eachOnce(records.map((r) => r.delivery.id))) {
      const batch = { records, now: limits.now, disableAfterMs, disabledReason: disableReason(disableAfterMs) };
      const write = () => this.dialect.executeBatch([fanOutPassWithRecordsStatement(limits, batch)]);
      try {
        // As `recordAttempts` counts a write that makes a retry due: once it has ended.
        [written] = await (records.some((r) => r.delivery.status === 'pending') ? this.#makingDue(write) : write());
      } catch (error) {
        shared.notWritten();
        if (this.dialect.isUnavailable(error)) throw error;
      }
    } else {
      shared.notWritten();
    }
    if (written) {
      shared.written({ ...recordedBy(records, written.rows), withoutTexts: [], released: [] });
      return written.rows;
    }
    const [result] = await this.dialect.executeBatch([fanOutPassStatement(limits)]);
    return result!.rows;
  }

  /**
   * Marks events fanned out and inserts their deliveries, and records the lookups that failed, in one
   * transaction. Safe to repeat: a delivery for an (event, subscription) pair that already has one is
   * skipped by the unique index, and a setback applies only to an event still pending (another
   * process may have fanned it out meanwhile).
   */
  async commitFanOut(items: readonly FannedOutEvent[], setbacks: readonly FanOutSetback[] = []): Promise<Set<string>> {
    const write = () => this.#commitFanOut(items, setbacks);
    return items.some((item) => item.deliveries.some((d) => d.status === 'pending')) ? this.#makingDue(write) : write();
  }

  async #commitFanOut(items: readonly FannedOutEvent[], setbacks: readonly FanOutSetback[]): Promise<Set<string>> {
    // The set-based statement marks events in resthooks_events only: a fresh event takes the per-row path.
    const fresh = this.dialect.capabilities.appendsFreshEvents && [...items, ...setbacks].some((event) => event.seq !== null);
    if (this.dialect.capabilities.supportsArrayParameters && items.length > 0 && !fresh) {
      const deliveries = items.flatMap((item) => item.deliveries);
      const setbackStatements = setbacks.map((setback) => this.#setbackStatement(setback));
      const results = await this.dialect.executeBatch([fanOutStatement(items.map((item) => item.eventId), deliveries), ...setbackStatements]);
      return new Set(results[0]!.rows.map((row) => row.id as string));
    }
    const queries: CompiledStatement[] = [];
    const inserts: string[] = [];
    const freshDone = this.dialect.capabilities.appendsFreshEvents ? items.filter((item) => typeof item.seq === 'number') : [];
    for (const query of this.#moveFreshDone(freshDone)) {
      queries.push(query);
      inserts.push('');
    }
    for (const item of items) {
      const moves = typeof item.seq === 'number' ? [] : this.#moveFresh(item.eventId, item.seq, { status: 'done', error: null, attempts: 0, finderFailures: 0, nextFanOutAt: 0 });
      for (const query of moves) {
        queries.push(query);
        inserts.push('');
      }
      if (item.seq == null) {
        queries.push(statement(this.#markEventDoneSql, ['done', item.eventId, 'pending']));
        inserts.push('');
      }
      for (const d of item.deliveries) {
        queries.push(statement(this.#insertDeliverySql, deliveryParams(d)));
        inserts.push(d.id);
      }
    }
    for (const setback of setbacks) {
      for (const query of this.#setbackStatements(setback)) {
        queries.push(query);
        inserts.push('');
      }
    }
    if (queries.length === 0) return new Set();
    // The history's catch-up, when due, rides in this transaction: no commit of its own, and a kill
    // before the commit loses neither (the catch-up is done again with the next).
    const sinceCatchUp = this.#deliveriesSinceCatchUp + inserts.reduce((count, id) => (id === '' ? count : count + 1), 0);
    const catchUp = this.catchesUpHistory && sinceCatchUp >= HISTORY_CATCH_UP_DELIVERIES;
    if (catchUp) queries.push(...this.#catchUpStatements);
    const results = await this.dialect.executeBatch(queries);
    this.#deliveriesSinceCatchUp = catchUp ? 0 : sinceCatchUp;
    // The deliveries this call inserted (another process may have fanned out the same event first).
    return new Set(inserts.filter((id, index) => id !== '' && (results[index]?.changes ?? 0) > 0));
  }

  /**
   * A fresh event moved into resthooks_events as `into` says, and removed from the fresh table: by its
   * key when `seq` is known, by `id` when it is not (undefined); nothing for one known not to be fresh.
   */
  #moveFresh(
    eventId: string,
    seq: number | null | undefined,
    into: { status: EventStatus; error: string | null; attempts: number; finderFailures: number; nextFanOutAt: number },
  ): CompiledStatement[] {
    if (seq === null || !this.dialect.capabilities.appendsFreshEvents) return [];
    const moved = [into.status, into.error, into.attempts, into.finderFailures, into.nextFanOutAt];
    if (seq === undefined) return [statement(this.#moveFreshEventByIdSql, [...moved, eventId]), statement(this.#deleteFreshEventByIdSql, [eventId])];
    return [statement(this.#moveFreshEventSql, [...moved, seq, eventId]), statement(this.#deleteFreshEventSql, [seq, eventId])];
  }

  /**
   * Fresh events read by `pendingEvents` (their `seq` known) moved into resthooks_events as done, and
   * removed from the fresh table: two statements for the whole batch instead of two per event (at one
   * subscription per event, the per-event pair cost about as much as the event's delivery). The seq range
   * finds the rows by key; the ids say which of them are these events: a seq freed by a move elsewhere
   * may have been given to a later event, which must stay (an event id enters the fresh table once).
   */
  #moveFreshDone(items: readonly FannedOutEvent[]): CompiledStatement[] {
    if (items.length === 0) return [];
    let low = Infinity;
    let high = -Infinity;
    for (const item of items) {
      const seq = item.seq as number;
      if (seq < low) low = seq;
      if (seq > high) high = seq;
    }
    const batch = [low, high, JSON.stringify(items.map((item) => item.eventId))];
    return [statement(this.#moveFreshDoneSql, ['done', null, 0, 0, 0, ...batch]), statement(this.#deleteFreshDoneSql, batch)];
  }

  #setbackStatements(setback: FanOutSetback): CompiledStatement[] {
    const { eventId, seq, attempts, finderFailures, error, retryAt } = setback;
    const status = retryAt === null ? 'undeliverable' : 'pending';
    const moved = this.#moveFresh(eventId, seq, { status, error, attempts, finderFailures, nextFanOutAt: retryAt ?? 0 });
    return typeof seq === 'number' ? moved : [...moved, this.#setbackStatement(setback)];
  }

  #setbackStatement({ eventId, attempts, finderFailures, error, retryAt }: FanOutSetback): CompiledQuery {
    const tries = { fanout_attempts: attempts, finder_failures: finderFailures, error };
    const change = retryAt === null ? { ...tries, status: 'undeliverable' as const } : { ...tries, next_fanout_at: retryAt };
    return this.db.updateTable(E).set(change).where('id', '=', eventId).where('status', '=', PENDING).compile();
  }

  /** When the earliest event waiting for another fan-out try is due, or null when none waits. */
  async nextFanOutAt(): Promise<number | null> {
    const row = await this.db
      .selectFrom(E)
      .select((eb) => eb.fn.min('next_fanout_at').as('due'))
      .where('status', '=', PENDING)
      .where('next_fanout_at', '>', 0)
      .executeTakeFirst();
    return row?.due == null ? null : Number(row.due);
  }

  /**
   * Makes an event due for fan-out now, with a fresh try count: one marked undeliverable because its
   * finder kept failing, or one pending a later try. An event with no owner (and not for every owner)
   * is left alone: it can reach no subscription. Returns whether the event changed.
   */
  async refanEvent(id: string, now: number): Promise<boolean> {
    // A fresh event is due now already, and has no try count to reset.
    if (this.dialect.capabilities.appendsFreshEvents && (await this.db.selectFrom(F).select('id').where('id', '=', id).limit(1).executeTakeFirst()) !== undefined) return true;
    const result = await this.db
      .updateTable(E)
      .set({ status: 'pending', fanout_attempts: 0, finder_failures: 0, next_fanout_at: now, error: null })
      .where('id', '=', id)
      .where('status', 'in', [PENDING, UNDELIVERABLE])
      .where((eb) => eb.or([eb('owner', 'is not', null), eb('all_owners', '=', 1)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  // ── dispatch ────────────────────────────────────────────────────────────────────────────────

  /**
   * Claims up to `limit` due deliveries for one attempt each. A claim is a lease: a delivery whose
   * process died mid-attempt becomes due again when `leaseUntil` passes, so nothing is lost to a crash.
   * The lease ends after `now`, and only deliveries due by `now` are claimed, so a claim that takes
   * over a lapsed one always ends later than it: no two claims of a delivery share a `leaseUntil`.
   */
  async claimDue(limit: number, now: number, requestedLeaseUntil: number): Promise<ClaimedDelivery[]> {
    // Deliveries made at trigger time (a per-subscription payload) have no fan-out to catch the history up with.
    if (this.catchesUpHistory && this.#deliveriesSinceCatchUp >= HISTORY_CATCH_UP_DELIVERIES) await this.catchUpHistory();
    const leaseUntil = Math.max(requestedLeaseUntil, now + 1);
    const due = this.db
      .selectFrom(D)
      .select('id')
      .where('status', 'in', DUE_STATUSES)
      .where('due_at', '<=', now)
      .orderBy('due_at')
      .limit(limit);
    const lease = { status: 'in_flight', due_at: leaseUntil, updated_at: now } as const;
    // PostgreSQL may run an `IN (… LIMIT … SKIP LOCKED)` subquery once per row of a nested loop and so
    // claim more rows than the limit; a MATERIALIZED CTE is evaluated exactly once.
    const claimed = this.dialect.capabilities.supportsSkipLocked
      ? await this.#hotRead(
          this.db
            .with((cte) => cte('due').materialized(), () => due.forUpdate().skipLocked())
            .updateTable(D)
            .set(lease)
            .where('id', 'in', (eb) => eb.selectFrom('due').select('due.id'))
            .returning('id'),
        )
      : await this.db.updateTable(D).set(lease).where('id', 'in', due).returning('id').execute();
    return this.loadClaims(claimed.map((c) => c.id));
  }

  /**
   * Reads claimed deliveries with everything an attempt needs, in one query. Deliveries that are no
   * longer in flight (recorded meanwhile by another worker) are left out.
   */
  async loadClaims(ids: readonly string[]): Promise<ClaimedDelivery[]> {
    if (ids.length === 0) return [];
    if (this.dialect.name === 'postgres') return this.#loadClaimsAtOnce(ids);
    const rows = await this.db
      .selectFrom(`${D} as d`)
      .innerJoin(`${E} as e`, 'e.id', 'd.event_id')
      .leftJoin(`${S} as s`, 's.id', 'd.subscription_id')
      .select([
        'd.id', 'd.event_id', 'd.subscription_id', 'd.attempts', 'd.body', 'd.due_at',
        'e.name', 'e.model', 'e.action', 'e.owner as event_owner', 'e.all_owners', 'e.data', 'e.body as event_body', 'e.created_at',
        's.id as s_id', 's.owner', 's.event', 's.target', 's.active', 's.secret', 's.previous_secrets', 's.failing_since', 's.max_per_second',
      ])
      .where('d.id', 'in', ids)
      .where('d.status', '=', 'in_flight')
      .execute();
    // One event part per event and one subscription part per subscription, as the fan-out makes them: the
    // claims wait in the queue long enough for the garbage collector to move them to the old generation,
    // and there each copy of an event's body read with another of its deliveries is memory until a full GC.
    const events = new Map<string, ClaimedDelivery['event']>();
    const subscriptions = new Map<string, ClaimedDelivery['subscription']>();
    return rows.map((r) => {
      let event = events.get(r.event_id);
      if (!event) {
        event = claimEventOf({ name: r.name, model: r.model, action: r.action, owner: r.event_owner, all_owners: r.all_owners, data: r.data, body: r.event_body, created_at: r.created_at });
        events.set(r.event_id, event);
      }
      let subscription = subscriptions.get(r.subscription_id);
      if (subscription === undefined) {
        subscription = claimSubscriptionOf(
          r.s_id === null
            ? null
            : this.#opened({ id: r.s_id, owner: r.owner!, event: r.event!, target: r.target!, active: r.active!, secret: r.secret!, previous_secrets: r.previous_secrets, failing_since: r.failing_since, max_per_second: r.max_per_second }),
        );
        subscriptions.set(r.subscription_id, subscription);
      }
      return claimOf(r, event, subscription);
    });
  }

  /** `loadClaims` on PostgreSQL: one statement whose one value holds each event and subscription once (see `readClaimsStatement`). */
  async #loadClaimsAtOnce(ids: readonly string[]): Promise<ClaimedDelivery[]> {
    const [result] = await this.dialect.executeBatch([readClaimsStatement(ids)]);
    const { deliveries, events, subscriptions } = readClaimRows(result!.rows);
    // The read holds each event and subscription once: one claim part each, shared by their deliveries' claims.
    const claimEvents = new Map([...events].map(([id, e]) => [id, claimEventOf(e)]));
    const claimSubscriptions = new Map([...subscriptions].map(([id, s]) => [id, claimSubscriptionOf(this.#opened(s))]));
    const claims: ClaimedDelivery[] = [];
    for (const delivery of deliveries) {
      const event = claimEvents.get(delivery.event_id);
      if (event === undefined) continue; // as the inner join to events of the read above
      claims.push(claimOf(delivery, event, claimSubscriptions.get(delivery.subscription_id) ?? null));
    }
    return claims;
  }

  /**
   * The deliveries in flight, with the attempt each is claimed for, `limit` at a time in id order
   * (`after`: the last id of the previous page). What a queue re-sends after losing its jobs.
   */
  async inFlightAttempts(limit: number, after?: string): Promise<Array<{ id: string; attempt: number }>> {
    // The IN term (literals) lets SQLite read only the partial due index.
    let query = this.db.selectFrom(D).select(['id', 'attempts']).where('status', 'in', DUE_STATUSES).where('status', '=', sql.lit('in_flight'));
    if (after !== undefined) query = query.where('id', '>', after);
    const rows = await query.orderBy('id').limit(limit).execute();
    return rows.map((row) => ({ id: row.id, attempt: Number(row.attempts) + 1 }));
  }

  /**
   * Extends a claim's lease to `leaseUntil`, if the delivery is still in flight for that claim (same
   * attempt, same lease): a worker about to attempt a delivery whose lease ran short while its job
   * waited makes the lease cover the attempt. False when another claimer took it, or it was recorded.
   */
  async extendLease(claim: Pick<ClaimedDelivery, 'id' | 'attempt' | 'leaseUntil'>, leaseUntil: number, now: number): Promise<boolean> {
    if (this.dialect.name === 'postgres') {
      // Written so that no plan reaches the delivery through the due index (see set-based-writes.ts).
      const [result] = await this.dialect.executeBatch([extendLeaseStatement(claim, leaseUntil, now)]);
      return result!.changes > 0;
    }
    const result = await this.db
      .updateTable(D)
      .set({ due_at: leaseUntil, updated_at: now })
      .where('id', '=', claim.id)
      .where('status', '=', 'in_flight')
      .where('attempts', '=', claim.attempt - 1)
      .where('due_at', '=', claim.leaseUntil)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** When the earliest pending or leased delivery becomes due, or null when there is none. */
  async nextDueAt(): Promise<number | null> {
    const [row] = await this.#hotRead(this.db.selectFrom(D).select((eb) => eb.fn.min('due_at').as('due')).where('status', 'in', DUE_STATUSES));
    return row?.due == null ? null : Number(row.due);
  }

  /** No event waits for fan-out, no delivery is in flight, and none is due by `now`. */
  async isIdle(now: number): Promise<boolean> {
    // Events first: a fan-out marks its event done and writes its deliveries in one transaction, so an
    // event read as done has its deliveries visible to the read after. The other order could miss both.
    if (await this.hasPendingEvents(now)) return false;
    const busy = await this.db
      .selectFrom(D)
      .select('id')
      // = in flight, or pending and due; the IN term (literals) lets SQLite read only the partial due index.
      .where('status', 'in', DUE_STATUSES)
      .where((eb) => eb.or([eb('status', '=', 'in_flight'), eb('due_at', '<=', now)]))
      .limit(1)
      .executeTakeFirst();
    return busy === undefined;
  }

  /** Some event is due for fan-out by `now` (one waiting for a later lookup try does not count). */
  async hasPendingEvents(now = Date.now()): Promise<boolean> {
    // The fresh table first: an event moves out of it into resthooks_events, never back, so one missed
    // here because it moved meanwhile is seen by the read after (as pending, or done with its deliveries).
    if (this.dialect.capabilities.appendsFreshEvents && (await this.db.selectFrom(F).select('seq').limit(1).executeTakeFirst()) !== undefined) return true;
    const row = await this.db.selectFrom(E).select('id').where('status', '=', PENDING).where('next_fanout_at', '<=', now).limit(1).executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Records a batch of finished attempts in one transaction: insert the attempt, move the delivery
   * on, track each subscription's failure streak, and disable subscriptions failing continuously
   * for longer than `disableAfterMs`.
   *
   * A record applies only while its claim still holds the delivery (`in_flight`, the claim's attempt,
   * its lease expiry). A process that stalled past its lease while another claimer took the delivery
   * over and recorded it must not turn `delivered` back into `pending` or `failed`, delete the
   * subscription on a late 410, or move its streak: such a record is stale, and none of it is written
   * (its attempt number belongs to the attempt that took over). It is reported in `stale`.
   *
   * When the batch fails, each record is written alone, so one the database refuses holds back no
   * other; a refused record is written again without its texts, and failing that, its claim is given
   * back. Throws when the database is unavailable (busy, unreachable, restarting: `isUnavailable`), for
   * the caller to write the same batch again later, and when even the give-back fails.
   */
  async recordAttempts(records: readonly AttemptRecord[], now: number, disableAfterMs: number | null = null): Promise<RecordedAttempts> {
    if (records.length === 0) return { disabled: [], stale: [], withoutTexts: [], released: [] };
    // A retry is due again, and so is a record given back below.
    const write = () => this.#recordAttempts(records, now, disableAfterMs);
    if (records.some((r) => r.delivery.status === 'pending')) return this.#makingDue(write);
    const recorded = await write();
    if (recorded.released.length > 0) this.#dueWrites++;
    return recorded;
  }

  async #recordAttempts(records: readonly AttemptRecord[], now: number, disableAfterMs: number | null): Promise<RecordedAttempts> {
    let batchError: unknown;
    try {
      return { ...(await this.#writeRecords(records, now, disableAfterMs)), withoutTexts: [], released: [] };
    } catch (error) {
      // Unavailable (busy, unreachable, restarting): the batch is not at fault. Taken apart, it would be
      // written without its texts, or given back, as soon as the database answered again.
      if (this.dialect.isUnavailable(error)) throw error;
      batchError = error;
    }
    const result: RecordedAttempts = { disabled: [], stale: [], withoutTexts: [], released: [], batchError };
    for (const record of records) {
      const alone = await this.#writeAlone(record, now, disableAfterMs, records.length === 1 ? batchError : undefined);
      result.disabled.push(...alone.disabled);
      result.stale.push(...alone.stale);
      result.withoutTexts.push(...alone.withoutTexts);
      result.released.push(...alone.released);
    }
    return result;
  }

  /** One record on its own: as it is, then without its texts, then at least its claim given back. */
  async #writeAlone(record: AttemptRecord, now: number, disableAfterMs: number | null, failedAsIs: unknown): Promise<RecordedAttempts> {
    if (failedAsIs === undefined) {
      try {
        return { ...(await this.#writeRecords([record], now, disableAfterMs)), withoutTexts: [], released: [] };
      } catch (error) {
        if (this.dialect.isUnavailable(error)) throw error;
        // Refused: try again without the texts below.
      }
    }
    try {
      const written = await this.#writeRecords([withoutTexts(record)], now, disableAfterMs);
      return { ...written, stale: written.stale.length > 0 ? [record] : [], withoutTexts: written.stale.length > 0 ? [] : [record], released: [] };
    } catch (error) {
      if (this.dialect.isUnavailable(error)) throw error;
      // Refused even so: give the claim back, so that the attempt is made again rather than left in flight.
    }
    const { stale } = await this.releaseClaims([{ id: record.delivery.id, claim: record.claim, dueAt: now + UNWRITABLE_RETRY_MS }], now);
    return { disabled: [], stale: stale.length > 0 ? [record] : [], withoutTexts: [], released: stale.length > 0 ? [] : [record] };
  }

  /**
   * The batch as one transaction: on PostgreSQL the deliveries are locked first, so that no claimer
   * can take one over between the statements below; then every statement that depends on a record's
   * claim (guarded by it), then the delivery updates (guarded the same way), whose row counts say
   * which records were stale. SQLite runs the whole batch under its write lock.
   */
  async #writeRecords(records: readonly AttemptRecord[], now: number, disableAfterMs: number | null): Promise<Pick<RecordedAttempts, 'disabled' | 'stale'>> {
    // One statement for the batch where the engine binds arrays; a delivery recorded twice in one batch
    // (which the queue never does) takes the statement-per-row path, which sees the first record's write.
    if (this.dialect.capabilities.supportsArrayParameters && eachOnce(records.map((r) => r.delivery.id))) {
      const [result] = await this.dialect.executeBatch([recordStatement(records, now, disableAfterMs, disableReason(disableAfterMs))]);
      return recordedBy(records, result!.rows);
    }
    const effects: Array<CompiledStatement | StreakRun> = [];
    const updates: CompiledStatement[] = [];
    // A subscription's streak only changes when an attempt's result differs from the one before it in
    // the batch: a receiver that is down fails every attempt, and one statement pair (guarded by all
    // of that run's claims) says it all.
    const openRuns = new Map<string, StreakRun>();
    for (const { claim, attempt, delivery, goneSubscriptionId, streak } of records) {
      const held = heldParams(delivery.id, claim);
      if (attempt && keptInDeliveryRow(attempt)) {
        // The common record: its parameters made in one array (four arrays and a spread per delivery before).
        updates.push(statement(this.#recordFirstDeliverySql, firstDeliveryParams(delivery, attempt, held, now)));
      } else {
        if (attempt) effects.push(statement(this.#insertAttemptSql, [...attemptParams(attempt), ...held]));
        updates.push(statement(this.#updateDeliverySql, [...deliveryChangeParams(delivery, now), ...held]));
      }
      if (goneSubscriptionId !== undefined) {
        effects.push(statement(this.#deleteGoneSql, [goneSubscriptionId, ...held]));
        effects.push(this.#cancelGone(goneSubscriptionId, now, held));
      } else if (streak) {
        const run = openRuns.get(streak.subscriptionId);
        if (run && run.failed === streak.failed) run.held.push(...held);
        else {
          const next: StreakRun = { subscriptionId: streak.subscriptionId, failed: streak.failed, held: [...held] };
          openRuns.set(streak.subscriptionId, next);
          effects.push(next);
        }
      }
    }
    const queries: CompiledStatement[] = [];
    if (this.dialect.capabilities.supportsSkipLocked) {
      const ids = [...new Set(records.map((r) => r.delivery.id))];
      queries.push(this.db.selectFrom(D).select('id').where('id', 'in', ids).orderBy('id').forUpdate().compile());
    }
    const disableChecks = new Map<number, string>();
    for (const effect of effects) {
      if (!('held' in effect)) {
        queries.push(effect);
        continue;
      }
      const holders = effect.held.length / 3;
      if (!effect.failed) {
        queries.push(statement(this.#runStatementSql('clear', holders), [null, effect.subscriptionId, ...effect.held]));
        continue;
      }
      queries.push(statement(this.#runStatementSql('start', holders), [now, effect.subscriptionId, ...effect.held]));
      if (disableAfterMs !== null) {
        disableChecks.set(queries.length, effect.subscriptionId);
        queries.push(statement(this.#runStatementSql('disable', holders), [0, now, disableReason(disableAfterMs), effect.subscriptionId, 1, now - disableAfterMs, ...effect.held]));
      }
    }
    const firstUpdate = queries.length;
    queries.push(...updates);
    const results = await this.dialect.executeBatch(queries);
    return {
      // Each subscription is disabled at most once: the check only matches an active one.
      disabled: [...disableChecks].filter(([index]) => (results[index]?.changes ?? 0) > 0).map(([, id]) => id),
      stale: records.filter((_, index) => (results[firstUpdate + index]?.changes ?? 0) === 0),
    };
  }

  /** Makes a subscription's failed or cancelled deliveries created since `since` due again. */
  async requeueFinished(subscriptionId: string, since: number, now: number): Promise<number> {
    const result = await this.#makingDue(() =>
      this.db
        .updateTable(D)
        .set({ status: 'pending', due_at: now, updated_at: now })
        .where(this.#ofSubscription(subscriptionId))
        .where('status', 'in', ['failed', 'cancelled'])
        .where('created_at', '>=', since)
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows);
  }

  /**
   * Gives claimed deliveries back unattempted, due at the given times (shutdown, rate limit). Only
   * the claim's holder can: a claim whose lease lapsed and was taken over is left alone and listed
   * in `stale`.
   */
  async releaseClaims(releases: readonly ClaimRelease[], now: number): Promise<{ stale: string[] }> {
    if (releases.length === 0) return { stale: [] };
    return this.#makingDue(() => this.#releaseClaims(releases, now));
  }

  async #releaseClaims(releases: readonly ClaimRelease[], now: number): Promise<{ stale: string[] }> {
    // One statement where the engine binds arrays (its plan reaches the deliveries by key whatever the
    // statistics); a delivery given back twice takes the statements per row, where the second is stale.
    if (this.dialect.capabilities.supportsArrayParameters && eachOnce(releases.map((r) => r.id))) {
      const [result] = await this.dialect.executeBatch([releaseClaimsStatement(releases, now)]);
      const released = new Set(result!.rows.map((row) => row.id as string));
      return { stale: releases.filter((r) => !released.has(r.id)).map((r) => r.id) };
    }
    const results = await this.dialect.executeBatch(
      releases.map(({ id, claim, dueAt }) => statement(this.#releaseClaimSql, ['pending', dueAt, now, ...heldParams(id, claim)])),
    );
    return { stale: releases.filter((_, index) => (results[index]?.changes ?? 0) === 0).map((r) => r.id) };
  }

  // ── delivery log ────────────────────────────────────────────────────────────────────────────

  async listDeliveries(subscriptionId: string, limit: number, before?: string): Promise<DeliveryWithAttempts[]> {
    if (this.catchesUpHistory) {
      const ids = newestDeliveryIdsOf(subscriptionId, limit, before);
      return this.#withAttempts(await this.#deliveriesWithEventName().where(sql<SqlBool>`d.id in (${ids})`).orderBy('d.id', 'desc').limit(limit).execute());
    }
    let query = this.#deliveriesWithEventName().where('d.subscription_id', '=', subscriptionId).orderBy('d.id', 'desc').limit(limit);
    if (before !== undefined) query = query.where('d.id', '<', before);
    return this.#withAttempts(await query.execute());
  }

  #deliveriesWithEventName() {
    return this.db.selectFrom(`${D} as d`).innerJoin(`${E} as e`, 'e.id', 'd.event_id').selectAll('d').select('e.name as event_name');
  }

  /** The deliveries with their attempt logs, oldest attempt first: one query for all of them. */
  async #withAttempts(deliveries: ReadonlyArray<DeliveryTable & KeptAttempt & { event_name: string }>): Promise<DeliveryWithAttempts[]> {
    if (deliveries.length === 0) return [];
    const attempts = await this.db
      .selectFrom(A)
      .selectAll()
      .where('delivery_id', 'in', deliveries.map((d) => d.id))
      .orderBy('number')
      .execute();
    const byDelivery = new Map<string, Attempt[]>();
    // A first attempt kept in its delivery's row (migration 0007) comes first: every row of the attempts table is a later one.
    for (const d of deliveries) {
      const kept = firstAttemptOf(d);
      if (kept) byDelivery.set(d.id, [toAttempt(kept)]);
    }
    for (const a of attempts) {
      const log = byDelivery.get(a.delivery_id);
      if (log) log.push(toAttempt(a));
      else byDelivery.set(a.delivery_id, [toAttempt(a)]);
    }
    return deliveries.map((d) => ({ ...toDelivery(d), attemptLog: byDelivery.get(d.id) ?? [] }));
  }

  /** Which subscription a delivery belongs to (one primary-key read; no attempts). */
  async subscriptionOfDelivery(id: string): Promise<string | undefined> {
    return (await this.db.selectFrom(D).select('subscription_id').where('id', '=', id).executeTakeFirst())?.subscription_id;
  }

  async getDelivery(id: string): Promise<DeliveryWithAttempts | undefined> {
    const [delivery] = await this.#withAttempts(await this.#deliveriesWithEventName().where('d.id', '=', id).execute());
    return delivery;
  }


  /**
   * Makes a finished (or pending) delivery due now. An in-flight one is left alone (its attempt's
   * record decides what comes next), and says so: `'in_flight'`; `'missing'` when there is none.
   */
  async requeueDelivery(id: string, now: number): Promise<'requeued' | 'in_flight' | 'missing'> {
    const result = await this.#makingDue(() => this.db.updateTable(D).set({ status: 'pending', due_at: now, updated_at: now }).where('id', '=', id).where('status', '!=', 'in_flight').executeTakeFirst());
    if (Number(result.numUpdatedRows) > 0) return 'requeued';
    // The UPDATE left an existing row alone only because it was in flight.
    return (await this.db.selectFrom(D).select('id').where('id', '=', id).executeTakeFirst()) ? 'in_flight' : 'missing';
  }
}

function disableReason(disableAfterMs: number | null): string {
  return disableAfterMs === null ? '' : `every delivery failed for ${describeDuration(disableAfterMs)}; fix the receiver, then re-enable it`;
}

function describeDuration(ms: number): string {
  const units: Array<[number, string]> = [[86_400_000, 'day'], [3_600_000, 'hour'], [60_000, 'minute'], [1000, 'second']];
  for (const [size, name] of units) if (ms >= size) return `${+(ms / size).toFixed(1)} ${name}${ms === size ? '' : 's'}`;
  return `${ms} ms`;
}

// Parameter order must match the compiled INSERTs, whose columns follow the key order of the samples.
function eventParams(e: EventTable): unknown[] {
  return [e.id, e.name, e.model, e.action, e.owner, e.all_owners, e.data, e.body, e.status, e.error, e.created_at];
}
// In FRESH_COLUMNS order, which is SAMPLE_FRESH_EVENT's key order.
function freshEventParams(e: EventTable): unknown[] {
  return [e.id, e.name, e.model, e.action, e.owner, e.all_owners, e.data, e.body, e.created_at];
}
/**
 * A fresh event as the fan-out reads it: pending, never tried. Built member by member: a rest pattern and
 * two spreads per event cost about as much as reading the row (the fan-out reads one per delivery at K=1).
 */
function toPendingEvent(row: Omit<FreshEventTable, 'seq'> & { seq: number }): PendingEvent {
  return {
    id: row.id, name: row.name, model: row.model, action: row.action, owner: row.owner, all_owners: row.all_owners, data: row.data, body: row.body, created_at: row.created_at,
    status: 'pending', error: null, fanout_attempts: 0, finder_failures: 0, next_fanout_at: 0, seq: Number(row.seq),
  };
}
/** The same from a row read as an array: FRESH_COLUMNS' values, then seq (`#readFreshEventsSql`). */
function pendingEventOf(row: unknown[]): PendingEvent {
  return {
    id: row[0] as string, name: row[1] as string, model: row[2] as string | null, action: row[3] as string | null, owner: row[4] as string | null,
    all_owners: row[5] as number, data: row[6] as string, body: row[7] as string | null, created_at: row[8] as number,
    status: 'pending', error: null, fanout_attempts: 0, finder_failures: 0, next_fanout_at: 0, seq: Number(row[9]),
  };
}
function deliveryParams(d: DeliveryTable): unknown[] {
  return [d.id, d.event_id, d.subscription_id, d.status, d.attempts, d.due_at, d.body, d.last_status_code, d.last_error, d.created_at, d.updated_at];
}
// The hot statements are compiled once; each use only binds parameters (no Kysely query node).
function statement(sql: string, parameters: readonly unknown[]): CompiledStatement {
  return { sql, parameters };
}

/** A run of attempts of one subscription with the same result, and the claims they were made under. */
interface StreakRun {
  readonly subscriptionId: string;
  readonly failed: boolean;
  /** `heldParams` of each claim, flattened. */
  readonly held: unknown[];
}

// In ATTEMPT_COLUMNS order. Texts from receivers are made storable here, whatever made them.
function attemptParams(a: AttemptTable): unknown[] {
  return [a.id, a.delivery_id, a.number, a.started_at, a.duration_ms, a.status_code, storableText(a.response_excerpt), storableText(a.error), a.outcome];
}
/** A delivery row's first-attempt columns, as read. */
type KeptAttempt = Selectable<DeliveryFirstAttemptColumns>;
/** The attempt a delivery's row keeps (migration 0007), as an attempt row; undefined when it keeps none. */
function firstAttemptOf(d: KeptAttempt & Pick<DeliveryTable, 'id'>): AttemptTable | undefined {
  if (d.first_attempt_id === null) return undefined;
  return {
    id: keptFirstAttemptId(d.id, d.first_attempt_id),
    delivery_id: d.id,
    number: 1,
    started_at: Number(d.first_attempt_started_at),
    duration_ms: Number(d.first_attempt_duration_ms),
    status_code: d.first_attempt_status_code,
    response_excerpt: d.first_attempt_excerpt,
    error: null,
    outcome: 'delivered',
  };
}
/** Whether no id repeats: a set-based statement moves each row at most once. */
function eachOnce(ids: readonly string[]): boolean {
  return new Set(ids).size === ids.length;
}

/** What a record statement's rows say of `records`: the subscriptions disabled, and the records no longer held (stale). */
function recordedBy(records: readonly AttemptRecord[], rows: readonly Record<string, unknown>[]): Pick<RecordedAttempts, 'disabled' | 'stale'> {
  const { moved, disabled } = readRecordRows(rows);
  return { disabled, stale: records.filter((r) => !moved.has(r.delivery.id)) };
}

/** `#recordFirstDeliverySql`'s parameters: deliveryChangeParams, the kept attempt's columns (SAMPLE_FIRST_DELIVERY's order), then heldParams. */
function firstDeliveryParams(d: AttemptRecord['delivery'], a: AttemptTable, held: readonly unknown[], now: number): unknown[] {
  return [
    d.status, d.attempts, d.due_at, d.last_status_code, storableText(d.last_error), now,
    storedFirstAttemptId(d.id, a.id), a.started_at, a.duration_ms, a.status_code, storableText(a.response_excerpt),
    held[0], held[1], held[2],
  ];
}
// The SET columns of SAMPLE_DELIVERY_CHANGE; `heldParams` follow for the WHERE.
function deliveryChangeParams(d: AttemptRecord['delivery'], now: number): unknown[] {
  return [d.status, d.attempts, d.due_at, d.last_status_code, storableText(d.last_error), now];
}
/** The record with no free text: what is left to write when the database refuses a text. */
function withoutTexts(record: AttemptRecord): AttemptRecord {
  return {
    ...record,
    attempt: record.attempt && { ...record.attempt, response_excerpt: null, error: null },
    delivery: { ...record.delivery, last_error: null },
  };
}
const ATTEMPT_COLUMNS = ['id', 'delivery_id', 'number', 'started_at', 'duration_ms', 'status_code', 'response_excerpt', 'error', 'outcome'] as const satisfies ReadonlyArray<keyof AttemptTable>;
const ATTEMPT_INTEGER_COLUMNS: ReadonlySet<string> = new Set(['number', 'started_at', 'duration_ms', 'status_code']);
const SAMPLE_DELIVERY_CHANGE = { status: 'delivered', attempts: 0, due_at: 0, last_status_code: null, last_error: null, updated_at: 0 } as const;
const SAMPLE_FIRST_DELIVERY = {
  ...SAMPLE_DELIVERY_CHANGE, first_attempt_id: '', first_attempt_started_at: 0, first_attempt_duration_ms: 0, first_attempt_status_code: null, first_attempt_excerpt: null,
} as const;
const SAMPLE_EVENT: EventTable = {
  id: '', name: '', model: null, action: null, owner: null, all_owners: 0, data: '', body: null, status: 'pending', error: null, created_at: 0,
};
const FRESH_COLUMNS = FRESH_EVENT_COLUMNS;
const SAMPLE_FRESH_EVENT = { id: '', name: '', model: null, action: null, owner: null, all_owners: 0, data: '', body: null, created_at: 0 } satisfies Omit<FreshEventTable, 'seq'>;
const SAMPLE_DELIVERY: DeliveryTable = {
  id: '', event_id: '', subscription_id: '', status: 'pending', attempts: 0, due_at: 0, body: null, last_status_code: null, last_error: null, created_at: 0, updated_at: 0,
};
