/**
 * One run of bench/postgres-ab.ts in a process of its own: resthooks from the build at AB_ROOT (or the
 * floor, AB_ROOT=floor) on the empty database AB_URL, N=AB_N events to K=AB_K subscriptions. Prints the
 * run as one line of JSON. AB_WINDOW_MS, when set, is the store's `batchWindowMs`. For looking into a run
 * rather than timing it: AB_PROFILE=dir writes a CPU profile of its measured part (the first save to the
 * last receipt) there, and AB_COUNT=1 adds the timers and promises made in that part to the JSON.
 * @module
 */
import { createHook } from 'node:async_hooks';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { floorOnPostgres, resthooksOnPostgres, type MeasuredPart, type ResthooksEntry } from './postgres-scenarios.js';
import { Receiver } from './receiver-process.js';

const env = (name: string) => process.env[name] ?? (() => { throw new Error(`${name} is not set`); })();
const url = env('AB_URL');
const root = env('AB_ROOT');
const [n, k, postmaster] = [Number(env('AB_N')), Number(env('AB_K')), Number(env('AB_POSTMASTER'))];

/** The build's entry; with `windowMs`, its `postgresStore` made with that `batchWindowMs`. */
async function entryOf(root: string, windowMs: string | undefined): Promise<ResthooksEntry> {
  const entry = (await import(pathToFileURL(join(root, 'src/index.ts')).href)) as ResthooksEntry;
  if (!windowMs) return entry;
  const postgresStore: ResthooksEntry['postgresStore'] = (pool, options) => entry.postgresStore(pool, { ...options, batchWindowMs: Number(windowMs) });
  return { createHooks: entry.createHooks, postgresStore };
}

/** Commits in this database and WAL flushes of the server so far (other backends' counts reach the view within a second). */
async function counters(): Promise<{ commits: number; walSyncs: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ commits: string; syncs: string }>(
      'select (select xact_commit from pg_stat_database where datname = current_database()) as commits, (select wal_sync from pg_stat_wal) as syncs',
    );
    return { commits: Number(rows[0]!.commits), walSyncs: Number(rows[0]!.syncs) };
  } finally {
    await client.end();
  }
}

/** A CPU profile of the measured part, written to `dir`. */
function profiled(dir: string): MeasuredPart {
  const session = new Session();
  return {
    async begin() {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 100 });
      await session.post('Profiler.start');
    },
    async end() {
      const { profile } = await session.post('Profiler.stop');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${root === 'floor' ? 'floor' : 'resthooks'}-${n}x${k}-${process.pid}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** Timers and promises made in the measured part (counting promises slows the run: not for timing). */
const counts = { setTimeout: 0, setImmediate: 0, promises: 0 };
function counted(): MeasuredPart {
  const timeout = globalThis.setTimeout;
  const immediate = globalThis.setImmediate;
  const promises = createHook({ init: (_id, type) => void (type === 'PROMISE' && counts.promises++) });
  return {
    async begin() {
      globalThis.setTimeout = ((...args: Parameters<typeof timeout>) => (counts.setTimeout++, timeout(...args))) as typeof timeout;
      globalThis.setImmediate = ((...args: Parameters<typeof immediate>) => (counts.setImmediate++, immediate(...args))) as typeof immediate;
      promises.enable();
    },
    async end() {
      promises.disable();
      globalThis.setTimeout = timeout;
      globalThis.setImmediate = immediate;
    },
  };
}

const measured = process.env.AB_PROFILE ? profiled(process.env.AB_PROFILE) : process.env.AB_COUNT ? counted() : undefined;

const rx = await Receiver.start();
try {
  const before = await counters();
  const run =
    root === 'floor'
      ? await floorOnPostgres(rx, url, n, k, postmaster, measured)
      : await resthooksOnPostgres(rx, url, n, k, postmaster, await entryOf(root, process.env.AB_WINDOW_MS), measured);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const after = await counters();
  // Per delivery; the setup's few transactions (migrations, subscriptions) are counted too.
  const perDelivery = (count: number) => count / run.deliveries;
  const made = process.env.AB_COUNT ? { setTimeout: perDelivery(counts.setTimeout), setImmediate: perDelivery(counts.setImmediate), promises: perDelivery(counts.promises) } : {};
  console.log(JSON.stringify({ ...run, commits: perDelivery(after.commits - before.commits), walSyncs: perDelivery(after.walSyncs - before.walSyncs), ...made }));
} finally {
  rx.close();
}
