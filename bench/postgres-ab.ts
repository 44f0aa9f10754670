/**
 * Two builds of resthooks side by side on PostgreSQL (fsync on), beside the hand-written PostgreSQL floor:
 * the in-process scenarios only, each run in a fresh process on a fresh database of one server, the order
 * rotating per round; medians over the rounds. For a change to the store, measured against the build it
 * changes (a checkout of the commit before, with a `node_modules` beside its `src`).
 *
 * `npx tsx bench/postgres-ab.ts before=/path/to/old/checkout after=. after-5ms=.@5`
 * (RESTHOOKS_BENCH_PG_ROUNDS, default 3; RESTHOOKS_BENCH_PG_SCENARIOS as in postgres-scenarios.ts)
 * @module
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, startPostgres } from '../test/support/postgres.js';
import { postmasterOf, SCENARIOS, type PgRun } from './postgres-scenarios.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.RESTHOOKS_BENCH_PG_ROUNDS ?? 3);
const CHILD = fileURLToPath(new URL('./postgres-ab-child.ts', import.meta.url));

// label=path, or label=path@ms to run that build with `postgresStore(pool, { batchWindowMs: ms })`.
const builds = process.argv.slice(2).map((arg) => {
  const [label, target] = arg.split('=');
  const [root, windowMs] = (target ?? '').split('@');
  if (!label || !root) throw new Error(`expected label=path[@batchWindowMs], got ${arg}`);
  return { label, root: resolve(root), windowMs: windowMs ?? '' };
});
if (builds.length === 0) throw new Error('usage: postgres-ab.ts before=/old/checkout after=.');

/** A run, with the commits in its database and the server's WAL flushes per delivery. */
type AbRun = PgRun & { readonly commits: number; readonly walSyncs: number };

function runChild(env: Record<string, string>): Promise<AbRun> {
  return new Promise((done, fail) => {
    execFile(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024, timeout: 900_000 }, (error, stdout, stderr) => {
      if (error) return fail(new Error(`${error.message}\n${stderr}`));
      const line = stdout.trim().split('\n').at(-1)!;
      done(JSON.parse(line) as AbRun);
    });
  });
}

const server = await startPostgres({ fsync: true });
try {
  const postmaster = await postmasterOf(server.url);
  const labels = [...builds.map((b) => b.label), 'floor'];
  const runs = new Map<string, AbRun[]>();
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const { n, k } of SCENARIOS) {
      const order = labels.map((_, i) => labels[(i + round) % labels.length]!);
      for (const label of order) {
        const { url } = await createTestDatabase(server.url);
        const build = builds.find((b) => b.label === label);
        const run = await runChild({ AB_URL: url, AB_POSTMASTER: String(postmaster), AB_ROOT: build?.root ?? 'floor', AB_WINDOW_MS: build?.windowMs ?? '', AB_N: String(n), AB_K: String(k) });
        const key = `${n}x${k} ${label}`;
        runs.set(key, [...(runs.get(key) ?? []), run]);
        const rate = run.deliveries / (run.ms / 1000);
        console.log(`round ${round} N=${n}×K=${k} ${label}: ${rate.toFixed(0)}/s, server ${run.serverUs.toFixed(1)} µs, client ${run.cpuUs.client.toFixed(1)} µs, commits ${run.commits.toFixed(2)}, WAL flushes ${run.walSyncs.toFixed(2)} per delivery (load ${loadavg()[0]!.toFixed(2)})`);
      }
    }
  }
  console.log(`\nmedians over ${ROUNDS} rounds (load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  console.log('| scenario | build | deliveries/s | × floor | server µs/delivery | × floor | client µs/delivery | × floor | commits/delivery | WAL flushes/delivery |');
  console.log('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const { n, k } of SCENARIOS) {
    const stat = (label: string) => {
      const list = runs.get(`${n}x${k} ${label}`)!;
      return {
        rate: median(list.map((r) => r.deliveries / (r.ms / 1000))),
        server: median(list.map((r) => r.serverUs)),
        client: median(list.map((r) => r.cpuUs.client)),
        commits: median(list.map((r) => r.commits)),
        walSyncs: median(list.map((r) => r.walSyncs)),
      };
    };
    const floor = stat('floor');
    for (const label of labels) {
      const s = stat(label);
      console.log(`| N=${n}×K=${k} | ${label} | ${s.rate.toFixed(0)} | ${(s.rate / floor.rate).toFixed(2)} | ${s.server.toFixed(0)} | ${(s.server / floor.server).toFixed(1)} | ${s.client.toFixed(0)} | ${(s.client / floor.client).toFixed(1)} | ${s.commits.toFixed(2)} | ${s.walSyncs.toFixed(2)} |`);
    }
  }
} finally {
  await server.stop();
}
