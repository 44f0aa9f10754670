/**
 * One run of bench/postgres-ab.ts in a process of its own: resthooks from the build at AB_ROOT (or the
 * floor, AB_ROOT=floor) on the empty database AB_URL, N=AB_N events to K=AB_K subscriptions. Prints the
 * run as one line of JSON. AB_WINDOW_MS, when set, is the store's `batchWindowMs`.
 * @module
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { floorOnPostgres, resthooksOnPostgres, type ResthooksEntry } from './postgres-scenarios.js';
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

const rx = await Receiver.start();
try {
  const before = await counters();
  const run =
    root === 'floor'
      ? await floorOnPostgres(rx, url, n, k, postmaster)
      : await resthooksOnPostgres(rx, url, n, k, postmaster, await entryOf(root, process.env.AB_WINDOW_MS));
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const after = await counters();
  // Per delivery; the setup's few transactions (migrations, subscriptions) are counted too.
  console.log(JSON.stringify({ ...run, commits: (after.commits - before.commits) / run.deliveries, walSyncs: (after.walSyncs - before.walSyncs) / run.deliveries }));
} finally {
  rx.close();
}
