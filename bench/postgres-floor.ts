/**
 * The durable floor on PostgreSQL: the least work the engine's delivery semantics require, written by
 * hand with `pg` and undici on one thread, as carefully as a PostgreSQL engineer would: every statement
 * named (prepared once per connection), and set-based, one statement per batch.
 *
 * What it keeps, because the engine must: one autocommit INSERT per event inside the awaited trigger
 * loop (the outbox, durable before the call returns); delivery rows created claimed, in one statement
 * per fan-out batch that also marks its events done; a signed POST (Standard Webhooks HMAC per
 * delivery); an attempt row and a status update per delivery, one statement per batch of records;
 * fan-out batches no larger than what the engine's in-process queue holds.
 *
 * What it leaves out, as the SQLite floor does (bench/durable-floor.ts): string ids and the indexes
 * behind the API, the (event, subscription) key that makes a repeated fan-out harmless, per-subscription
 * history, leases that outlive the attempt, retries, 410 handling, excerpts, SSRF checks, callbacks.
 * @module
 */
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { Pool } from 'undici';
import { CLAIMS_PER_SLOT } from '../src/queue/in-process-queue.js';
import { postSigned } from './durable-floor.js';
import { cpuPerDelivery, type Receiver, type RunResult } from './receiver-process.js';

export interface PostgresFloorRun {
  /** An empty database. */
  readonly url: string;
  readonly events: number;
  readonly subscriptionsPerEvent: number;
  readonly inFlight: number;
  /** Clock comparable with the receiver's (`performance.timeOrigin + performance.now()`). */
  readonly now: () => number;
  /** The event's data, as the resthooks run serializes it. */
  readonly data: (i: number) => string;
  /** Awaited just before the trigger loop starts (the measured part begins). */
  readonly onStart?: () => Promise<void>;
  /** Called when the last delivery has reached the receiver, before any connection closes (server CPU is read here). */
  readonly onReached?: () => void;
}

const SCHEMA = `
  create table subscriptions (id serial primary key, event text not null, owner text not null, target text not null, secret bytea not null);
  create index subscriptions_event_owner on subscriptions (event, owner);
  create table events (id bigserial primary key, name text not null, owner text not null, data text not null, done boolean not null default false);
  create index events_pending on events (id) where not done;
  create table deliveries (id bigserial primary key, event_id bigint not null, subscription_id int not null, status smallint not null, attempts int not null default 0, due_at bigint not null);
  create index deliveries_due on deliveries (due_at) where status < 2;
  create table attempts (id bigserial primary key, delivery_id bigint not null, number int not null, status_code int, duration_ms int not null);
`;
const IN_FLIGHT = 1;
const RECORD_BATCH = 64;

const INSERT_EVENT = { name: 'floor_insert_event', text: 'insert into events (name, owner, data) values ($1, $2, $3)' };
const PENDING_EVENTS = { name: 'floor_pending_events', text: 'select id, name, owner, data from events where not done order by id limit $1' };
const SUBSCRIPTIONS = { name: 'floor_subscriptions', text: 'select id, target, secret from subscriptions where event = $1 and owner = $2' };
const FAN_OUT = {
  name: 'floor_fan_out',
  text: `with done as (update events set done = true where id = any($1::bigint[]))
    insert into deliveries (event_id, subscription_id, status, due_at)
    select event_id, subscription_id, ${IN_FLIGHT}, $3 from unnest($1::bigint[], $2::int[]) as f(event_id, subscription_id)
    returning id, event_id, subscription_id`,
};
const RECORD = {
  name: 'floor_record',
  text: `with r as (select * from unnest($1::bigint[], $2::int[], $3::int[]) as r(id, status_code, duration_ms)),
    logged as (insert into attempts (delivery_id, number, status_code, duration_ms) select id, 1, status_code, duration_ms from r)
    update deliveries as d set status = 2, attempts = 1, due_at = 0 from r where d.id = r.id`,
};

interface Subscription {
  readonly id: number;
  readonly path: string;
  readonly key: Buffer;
  readonly hookJson: string;
}
interface Pending {
  readonly id: string;
  readonly subscription: Subscription;
  readonly data: string;
}

export async function postgresFloorEndToEnd(rx: Receiver, run: PostgresFloorRun): Promise<RunResult> {
  const db = new pg.Pool({ connectionString: run.url, max: 4 });
  try {
    await db.query(SCHEMA);
    const origin = `http://127.0.0.1:${rx.port}`;
    for (let i = 0; i < run.subscriptionsPerEvent; i++) {
      await db.query('insert into subscriptions (event, owner, target, secret) values ($1, $2, $3, $4)', ['book.added', 'alice', `${origin}/hook/${i}`, createHmac('sha256', 'k').update(String(i)).digest()]);
    }
    const subscriptionCache = new Map<string, Subscription[]>();
    const subscriptions = async (name: string, owner: string): Promise<Subscription[]> => {
      const key = `${name}\u0000${owner}`;
      let found = subscriptionCache.get(key);
      if (!found) {
        const { rows } = await db.query<{ id: number; target: string; secret: Buffer }>({ ...SUBSCRIPTIONS, values: [name, owner] });
        found = rows.map((r) => ({ id: r.id, path: new URL(r.target).pathname, key: r.secret, hookJson: JSON.stringify({ id: `sub_${r.id}`, event: name, target: r.target }) }));
        subscriptionCache.set(key, found);
      }
      return found;
    };
    const eventsPerFanOut = Math.max(1, Math.floor((CLAIMS_PER_SLOT * run.inFlight) / run.subscriptionsPerEvent));
    const fanOut = async (): Promise<Pending[]> => {
      const { rows: events } = await db.query<{ id: string; name: string; owner: string; data: string }>({ ...PENDING_EVENTS, values: [eventsPerFanOut] });
      if (events.length === 0) return [];
      const eventIds: string[] = [];
      const subscriptionIds: number[] = [];
      const byEvent = new Map<string, { data: string; subscriptions: Map<number, Subscription> }>();
      for (const event of events) {
        const found = await subscriptions(event.name, event.owner);
        byEvent.set(event.id, { data: event.data, subscriptions: new Map(found.map((s) => [s.id, s])) });
        for (const s of found) {
          eventIds.push(event.id);
          subscriptionIds.push(s.id);
        }
      }
      const { rows } = await db.query<{ id: string; event_id: string; subscription_id: number }>({ ...FAN_OUT, values: [eventIds, subscriptionIds, Date.now() + 75_000] });
      return rows.map((r) => {
        const event = byEvent.get(r.event_id)!;
        return { id: r.id, subscription: event.subscriptions.get(r.subscription_id)!, data: event.data };
      });
    };
    const record = (done: ReadonlyArray<readonly [string, number, number]>) =>
      done.length === 0 ? Promise.resolve() : db.query({ ...RECORD, values: [done.map((d) => d[0]), done.map((d) => d[1]), done.map((d) => d[2])] }).then(() => undefined);

    const pool = new Pool(origin, { connections: run.inFlight, keepAliveTimeout: 10_000 });
    const total = run.events * run.subscriptionsPerEvent;
    const reached = await rx.expect(total, 900_000);
    const trigger = await db.connect();
    await run.onStart?.();
    const cpu0 = process.cpuUsage();
    const t0 = run.now();
    try {
      for (let i = 0; i < run.events; i++) await trigger.query({ ...INSERT_EVENT, values: ['book.added', 'alice', run.data(i)] });
    } finally {
      trigger.release();
    }
    const triggered = run.now();

    let queue: Pending[] = [];
    let refill: Promise<void> | undefined;
    let finished: Array<readonly [string, number, number]> = [];
    const recording: Array<Promise<void>> = [];
    const send = async (): Promise<void> => {
      for (;;) {
        if (queue.length === 0) {
          // One fan-out at a time; the other senders wait for its rows.
          refill ??= fanOut().then((rows) => {
            queue = rows;
            refill = undefined;
          });
          await refill;
        }
        const delivery = queue.pop();
        if (!delivery) return;
        // Awaited before `finished` is read: another sender may have recorded and replaced it meanwhile.
        const outcome = await postSigned(pool, delivery);
        finished.push(outcome);
        if (finished.length >= RECORD_BATCH) {
          recording.push(record(finished));
          finished = [];
        }
      }
    };
    await Promise.all(Array.from({ length: run.inFlight }, send));
    recording.push(record(finished));
    await Promise.all(recording);
    const end = await reached();
    const cpuUs = cpuPerDelivery(cpu0, end, total);
    run.onReached?.();
    await pool.close();

    const { rows } = await db.query<{ delivered: string; attempts: string }>(
      'select (select count(*) from deliveries where status = 2 and attempts = 1) as delivered, (select count(*) from attempts where status_code = 200) as attempts',
    );
    if (Number(rows[0]!.delivered) !== total || Number(rows[0]!.attempts) !== total) throw new Error(`PostgreSQL floor: ${rows[0]!.delivered} delivered and ${rows[0]!.attempts} attempts recorded of ${total}`);
    return { deliveries: total, ms: end.at - t0, triggerMs: triggered - t0, cpuUs };
  } finally {
    await db.end();
  }
}
