/**
 * The durable floor: the least work the engine's delivery semantics require, written by hand on the
 * same two libraries (better-sqlite3, undici) and run on one thread like the embedded engine. It
 * answers "how close to the bare-undici ceiling can any durable outbox get on this machine?", so
 * the ceiling's distance is split into what durability costs and what resthooks adds on top.
 *
 * What it keeps, because the engine must: one autocommit INSERT per event inside the awaited trigger
 * loop (the outbox, durable before the call returns); delivery rows created in fan-out transactions,
 * claimed, with an index for due deliveries; a signed POST (Standard Webhooks HMAC per delivery); an
 * attempt row and a status update per delivery, in batched transactions; the same WAL settings; fan-out
 * transactions no larger than what the engine's in-process queue holds.
 *
 * What it leaves out, all of which resthooks carries: string ids and the indexes that page and look
 * up by them (API, admin, retention), the (event, subscription) key that makes a repeated fan-out
 * harmless, per-subscription history, leases that outlive the attempt, retries, 410 handling,
 * response excerpts, the SSRF-checked connector, timeouts, callbacks and the subscription's state.
 * @module
 */
import { createHmac } from 'node:crypto';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { CLAIMS_PER_SLOT } from '../src/queue/in-process-queue.js';
import { cpuPerDelivery, type Receiver, type RunResult } from './receiver-process.js';

export interface FloorRun {
  readonly file: string;
  readonly events: number;
  readonly subscriptionsPerEvent: number;
  readonly inFlight: number;
  /** Clock comparable with the receiver's (`performance.timeOrigin + performance.now()`). */
  readonly now: () => number;
  /** The event's data, as the resthooks run serializes it. */
  readonly data: (i: number) => string;
}

const SCHEMA = `
  create table subscriptions (id integer primary key, event text not null, owner text not null, target text not null, secret blob not null);
  create index subscriptions_event_owner on subscriptions (event, owner);
  create table events (id integer primary key, name text not null, owner text not null, data text not null, done integer not null default 0);
  create table deliveries (id integer primary key, event_id integer not null, subscription_id integer not null, status integer not null, attempts integer not null default 0, due_at integer not null);
  create index deliveries_due on deliveries (due_at) where status < 2;
  create table attempts (id integer primary key, delivery_id integer not null, number integer not null, status_code integer, duration_ms integer not null);
`;
export const IN_FLIGHT = 1;
export const DELIVERED = 2;
const RECORD_BATCH = 64;

interface Subscription {
  readonly id: number;
  readonly target: string;
  readonly path: string;
  readonly key: Buffer;
  readonly hookJson: string;
}
interface Pending {
  readonly id: number;
  readonly subscription: Subscription;
  readonly data: string;
}

export type FloorStatements = Record<'insertEvent' | 'eventsAfter' | 'subscriptionsFor' | 'insertDelivery' | 'markDone' | 'insertAttempt' | 'markDelivered', Database.Statement>;

/**
 * The floor's tables on `db`, one subscription of alice to book.added per target (its signing key derived
 * from its index), and the floor's statements.
 */
export function floorStatements(db: Database.Database, targets: readonly string[]): FloorStatements {
  db.exec(SCHEMA);
  const addSubscription = db.prepare('insert into subscriptions (event, owner, target, secret) values (?, ?, ?, ?)');
  targets.forEach((target, i) => addSubscription.run('book.added', 'alice', target, createHmac('sha256', 'k').update(String(i)).digest()));
  return {
    insertEvent: db.prepare('insert into events (name, owner, data) values (?, ?, ?)'),
    eventsAfter: db.prepare('select id, name, owner, data from events where id > ? order by id limit ?'),
    subscriptionsFor: db.prepare('select id, target, secret from subscriptions where event = ? and owner = ?'),
    insertDelivery: db.prepare('insert into deliveries (event_id, subscription_id, status, due_at) values (?, ?, ?, ?)'),
    markDone: db.prepare('update events set done = 1 where id = ?'),
    insertAttempt: db.prepare('insert into attempts (delivery_id, number, status_code, duration_ms) values (?, 1, ?, ?)'),
    markDelivered: db.prepare('update deliveries set status = ?, attempts = 1, due_at = 0 where id = ?'),
  };
}

/** The floor's one signed POST (Standard Webhooks headers over the envelope), and what its record needs: id, status, ms. */
export async function postSigned<Id extends string | number>(
  pool: Pool,
  delivery: { readonly id: Id; readonly data: string; readonly subscription: { readonly path: string; readonly key: Buffer; readonly hookJson: string } },
): Promise<[Id, number, number]> {
  const { subscription } = delivery;
  const body = `{"hook":${subscription.hookJson},"data":${delivery.data}}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const webhookId = `dlv_${delivery.id}`;
  const signature = 'v1,' + createHmac('sha256', subscription.key).update(`${webhookId}.${timestamp}.`).update(body).digest('base64');
  const headers = { 'content-type': 'application/json', 'webhook-id': webhookId, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
  const started = performance.now();
  const response = await pool.request({ method: 'POST', path: subscription.path, headers, body });
  await response.body.dump();
  return [delivery.id, response.statusCode, Math.round(performance.now() - started)];
}

export async function durableFloorEndToEnd(rx: Receiver, run: FloorRun): Promise<RunResult> {
  const db = new Database(run.file);
  db.pragma('journal_mode = wal');
  db.pragma('synchronous = normal');
  db.pragma('wal_autocheckpoint = 10000');
  const origin = `http://127.0.0.1:${rx.port}`;
  const targets = Array.from({ length: run.subscriptionsPerEvent }, (_, i) => `${origin}/hook/${i}`);
  const { insertEvent, eventsAfter, subscriptionsFor, insertDelivery, markDone, insertAttempt, markDelivered } = floorStatements(db, targets);

  const subscriptionCache = new Map<string, Subscription[]>();
  const subscriptions = (name: string, owner: string): Subscription[] => {
    const key = `${name}\u0000${owner}`;
    let found = subscriptionCache.get(key);
    if (!found) {
      const rows = subscriptionsFor.all(name, owner) as Array<{ id: number; target: string; secret: Buffer }>;
      found = rows.map((r) => ({ id: r.id, target: r.target, path: new URL(r.target).pathname, key: r.secret, hookJson: JSON.stringify({ id: `sub_${r.id}`, event: name, target: r.target }) }));
      subscriptionCache.set(key, found);
    }
    return found;
  };
  // As many events per fan-out transaction as fill the engine's queue (CLAIMS_PER_SLOT per slot in flight).
  const eventsPerFanOut = Math.max(1, Math.floor((CLAIMS_PER_SLOT * run.inFlight) / run.subscriptionsPerEvent));
  let cursor = 0;
  const fanOut = db.transaction((): Pending[] => {
    const events = eventsAfter.all(cursor, eventsPerFanOut) as Array<{ id: number; name: string; owner: string; data: string }>;
    const created: Pending[] = [];
    const leaseUntil = Date.now() + 75_000;
    for (const event of events) {
      for (const subscription of subscriptions(event.name, event.owner)) {
        const id = Number(insertDelivery.run(event.id, subscription.id, IN_FLIGHT, leaseUntil).lastInsertRowid);
        created.push({ id, subscription, data: event.data });
      }
      markDone.run(event.id);
      cursor = event.id;
    }
    return created;
  });
  const record = db.transaction((done: ReadonlyArray<readonly [number, number, number]>) => {
    for (const [id, statusCode, durationMs] of done) {
      insertAttempt.run(id, statusCode, durationMs);
      markDelivered.run(DELIVERED, id);
    }
  });

  const pool = new Pool(origin, { connections: run.inFlight, keepAliveTimeout: 10_000 });
  const total = run.events * run.subscriptionsPerEvent;
  const reached = await rx.expect(total, 120_000);
  const cpu0 = process.cpuUsage();
  const t0 = run.now();
  const trigger = async (i: number) => insertEvent.run('book.added', 'alice', run.data(i));
  for (let i = 0; i < run.events; i++) await trigger(i);
  const triggered = run.now();

  let queue: Pending[] = [];
  let finished: Array<readonly [number, number, number]> = [];
  const send = async (): Promise<void> => {
    for (;;) {
      if (queue.length === 0) queue = fanOut();
      const delivery = queue.pop();
      if (!delivery) return;
      // Awaited before `finished` is read: another sender may have recorded and replaced it meanwhile.
      const outcome = await postSigned(pool, delivery);
      finished.push(outcome);
      if (finished.length >= RECORD_BATCH) {
        record(finished);
        finished = [];
      }
    }
  };
  await Promise.all(Array.from({ length: run.inFlight }, send));
  record(finished);
  const end = await reached();
  const cpuUs = cpuPerDelivery(cpu0, end, total);
  await pool.close();

  const delivered = (db.prepare('select count(*) as n from deliveries where status = ? and attempts = 1').get(DELIVERED) as { n: number }).n;
  const attempts = (db.prepare('select count(*) as n from attempts where status_code = 200').get() as { n: number }).n;
  db.close();
  if (delivered !== total || attempts !== total) throw new Error(`durable floor: ${delivered} delivered and ${attempts} attempts recorded of ${total}`);
  return { deliveries: total, ms: end.at - t0, triggerMs: triggered - t0, cpuUs };
}
