/**
 * The SQLite store's side of the N=100 × K=100 scenario, without HTTP: per pass, six events appended, one
 * fan-out pass of their 600 deliveries (`fanOutBatch`, claimed as the in-process engine hands them over), then
 * their records in batches of 40 (`recordAttempts`, first attempts delivered: the end-to-end run's ~40 per
 * commit). The builds given, and the durable floor's statements on its own schema (bench/durable-floor.ts),
 * run in one process, interleaved, each on a file of its own; medians of CPU time (user + system) per
 * delivery over the rounds, and WAL pages written per delivery. No checkpoint runs while a round is measured
 * (the WAL is emptied between rounds): the pages each writes are its own, and what a checkpoint would copy
 * later is not counted.
 * It splits the end-to-end distance to the floor into what the store's statements cost and what the rest
 * of the delivery path costs, with far less noise than end-to-end runs on a busy machine.
 *
 * `npx tsx bench/sqlite-store-ab.ts before=/path/to/old/checkout after=.`
 * (AB_ROUNDS, default 10; AB_PASSES per round, default 20; AB_RECORD_BATCH, default 40)
 * @module
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DELIVERED, floorStatements, IN_FLIGHT } from './durable-floor.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.AB_ROUNDS ?? 10);
const PASSES = Number(process.env.AB_PASSES ?? 20);
const RECORD_BATCH = Number(process.env.AB_RECORD_BATCH ?? 40);
const K = 100;
const EVENTS_PER_PASS = 6;
const NO_CHECKPOINT = 'pragma wal_autocheckpoint = 0';
const DATA = JSON.stringify({ id: 1, title: 'The Fellowship of the Ring', author: 'J. R. R. Tolkien', isbn: '978-0-261-10235-4', pages: 423, ownerId: 'alice' });

const cpuUs = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** One pass of a store: appends, fan-out, records; returns the deliveries it made. */
interface Side {
  readonly label: string;
  readonly walFile: string;
  pass(): Promise<number>;
  /** Empties the WAL between rounds, outside the time measured, so that every round starts alike. */
  checkpoint(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'resthooks-store-ab-'));

/** A build's store, driven as the in-process engine drives it. */
async function buildSide(label: string, root: string): Promise<Side> {
  const load = <T>(path: string) => import(pathToFileURL(join(root, path)).href) as Promise<T>;
  const { sqliteStore } = await load<typeof import('../src/index.js')>('src/index.ts');
  const { KyselyStore } = await load<typeof import('../src/store/kysely-store.js')>('src/store/kysely-store.ts');
  const { fanOutBatch } = await load<typeof import('../src/delivery/fanout.js')>('src/delivery/fanout.ts');
  const { newId } = await load<typeof import('../src/ids.js')>('src/ids.ts');
  const { firstAttemptId } = await load<typeof import('../src/store/rows.js')>('src/store/rows.ts');
  const { sql } = await import('kysely');
  const file = join(dir, `${label}.db`);
  const store = new KyselyStore(sqliteStore(new Database(file), { checkpointer: false }));
  await store.ready(true);
  await sql.raw(NO_CHECKPOINT).execute(store.db);
  const createdAt = Date.now() - 1000;
  for (let i = 0; i < K; i++) {
    await store.insertSubscription({
      id: newId('sub'), owner: 'alice', event: 'book.added', target: `http://127.0.0.1:1/hook/${i}`, active: 1, secret: `whsec_${Buffer.alloc(32, i).toString('base64')}`,
      previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: createdAt, updated_at: createdAt,
    });
  }
  const deps = { store, customFind: undefined, lookupRetry: { attempts: 3, delayMs: 1000, maxDelayMs: 60_000 }, logger: console };
  return {
    label,
    walFile: `${file}-wal`,
    async pass() {
      for (let e = 0; e < EVENTS_PER_PASS; e++) {
        await store.append({ id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: DATA, body: null, status: 'pending', error: null, created_at: Date.now() });
      }
      const { claimed } = await fanOutBatch(deps, 500, { capacity: EVENTS_PER_PASS * K, leaseUntil: Date.now() + 75_000 });
      for (let i = 0; i < claimed.length; i += RECORD_BATCH) {
        const now = Date.now();
        const records = claimed.slice(i, i + RECORD_BATCH).map((claim) => ({
          claim,
          attempt: { id: firstAttemptId(claim.id), delivery_id: claim.id, number: 1, started_at: now - 2, duration_ms: 2, status_code: 200, response_excerpt: '', error: null, outcome: 'delivered' as const },
          delivery: { id: claim.id, status: 'delivered' as const, attempts: 1, due_at: 0, last_status_code: 200, last_error: null },
        }));
        const { stale } = await store.recordAttempts(records, now, null);
        if (stale.length > 0) throw new Error(`${label}: ${stale.length} records found their claims gone`);
      }
      return claimed.length;
    },
    async checkpoint() {
      await sql.raw('pragma wal_checkpoint(truncate)').execute(store.db);
    },
  };
}

/** The durable floor's statements (bench/durable-floor.ts), driven the same way. */
function floorSide(): Side {
  const file = join(dir, 'floor.db');
  const db = new Database(file);
  db.pragma('journal_mode = wal');
  db.pragma('synchronous = normal');
  db.exec(NO_CHECKPOINT);
  const targets = Array.from({ length: K }, (_, i) => `http://127.0.0.1:1/hook/${i}`);
  const { insertEvent, eventsAfter, subscriptionsFor, insertDelivery, markDone, insertAttempt, markDelivered } = floorStatements(db, targets);
  // The floor reads its subscriptions once and keeps them.
  const subscriptions = subscriptionsFor.all('book.added', 'alice') as Array<{ id: number }>;
  let cursor = 0;
  const fanOut = db.transaction((): number[] => {
    const events = eventsAfter.all(cursor, EVENTS_PER_PASS) as Array<{ id: number }>;
    const created: number[] = [];
    const leaseUntil = Date.now() + 75_000;
    for (const event of events) {
      for (const subscription of subscriptions) created.push(Number(insertDelivery.run(event.id, subscription.id, IN_FLIGHT, leaseUntil).lastInsertRowid));
      markDone.run(event.id);
      cursor = event.id;
    }
    return created;
  });
  const record = db.transaction((ids: readonly number[]) => {
    for (const id of ids) {
      insertAttempt.run(id, 200, 2);
      markDelivered.run(DELIVERED, id);
    }
  });
  return {
    label: 'floor',
    walFile: `${file}-wal`,
    async pass() {
      for (let e = 0; e < EVENTS_PER_PASS; e++) insertEvent.run('book.added', 'alice', DATA);
      const created = fanOut();
      for (let i = 0; i < created.length; i += RECORD_BATCH) record(created.slice(i, i + RECORD_BATCH));
      return created.length;
    },
    async checkpoint() {
      db.pragma('wal_checkpoint(truncate)');
    },
  };
}

const WAL_HEADER = 32;
const WAL_FRAME = 4096 + 24;
const walPages = (file: string) => {
  try {
    return (statSync(file).size - WAL_HEADER) / WAL_FRAME;
  } catch {
    return 0;
  }
};

const builds = process.argv.slice(2).map((arg) => {
  const [label, root] = arg.split('=');
  if (!label || !root) throw new Error(`expected label=path, got ${arg}`);
  return { label, root: resolve(root) };
});
if (builds.length === 0) throw new Error('usage: sqlite-store-ab.ts before=/old/checkout after=.');
try {
  const sides: Side[] = [];
  for (const { label, root } of builds) sides.push(await buildSide(label, root));
  sides.push(floorSide());
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  // Warmed up as a process of `npm run bench` is by its earlier scenarios.
  for (const side of sides) for (let i = 0; i < 5; i++) await side.pass();
  const cpu = new Map<string, number[]>();
  const pages = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
    for (const side of order) {
      await side.checkpoint();
      const wal0 = walPages(side.walFile);
      const cpu0 = cpuUs();
      let deliveries = 0;
      for (let p = 0; p < PASSES; p++) deliveries += await side.pass();
      cpu.set(side.label, [...(cpu.get(side.label) ?? []), (cpuUs() - cpu0) / deliveries]);
      pages.set(side.label, [...(pages.get(side.label) ?? []), (walPages(side.walFile) - wal0) / deliveries]);
    }
  }
  console.log(`\nmedians over ${ROUNDS} rounds of ${PASSES} passes (load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  console.log('| store side | CPU µs/delivery | × floor | WAL pages/delivery |');
  console.log('|---|--:|--:|--:|');
  const floorCpu = median(cpu.get('floor')!);
  for (const side of sides) {
    const us = median(cpu.get(side.label)!);
    console.log(`| ${side.label} | ${us.toFixed(1)} | ${(us / floorCpu).toFixed(2)} | ${median(pages.get(side.label)!).toFixed(3)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
