/**
 * Builds of resthooks side by side on SQLite, beside the durable floor: the end-to-end scenarios of
 * `npm run bench` and the fan-out of one event to 10,000 subscriptions, each run in a fresh process
 * (bench/sqlite-ab-child.ts), the order rotating per round; medians over the rounds. For a change to the
 * delivery path, measured against the build it changes (a checkout of the commit before, with a
 * `node_modules` beside its `src`).
 *
 * `npx tsx bench/sqlite-ab.ts before=/path/to/old/checkout after=.`
 * (AB_ROUNDS, default 3; AB_SCENARIOS, default `1000x1,100x100,20000x1,1x10000`)
 * @module
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunResult } from './receiver-process.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.AB_ROUNDS ?? 3);
const SCENARIOS = (process.env.AB_SCENARIOS ?? '1000x1,100x100,20000x1,1x10000').split(',').map((s) => {
  const [n, k] = s.split('x').map(Number);
  return { n: n!, k: k! };
});
const CHILD = fileURLToPath(new URL('./sqlite-ab-child.ts', import.meta.url));

const builds = process.argv.slice(2).map((arg) => {
  const [label, root] = arg.split('=');
  if (!label || !root) throw new Error(`expected label=path, got ${arg}`);
  return { label, root: resolve(root) };
});
if (builds.length === 0) throw new Error('usage: sqlite-ab.ts before=/old/checkout after=.');

function runChild(env: Record<string, string>): Promise<RunResult> {
  return new Promise((done, fail) => {
    execFile(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 }, (error, stdout, stderr) => {
      if (error) return fail(new Error(`${error.message}\n${stderr}`));
      done(JSON.parse(stdout.trim().split('\n').at(-1)!) as RunResult);
    });
  });
}

const labels = [...builds.map((b) => b.label), 'floor'];
const runs = new Map<string, RunResult[]>();
console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (let round = 1; round <= ROUNDS; round++) {
  for (const { n, k } of SCENARIOS) {
    const order = labels.map((_, i) => labels[(i + round) % labels.length]!);
    for (const label of order) {
      const root = builds.find((b) => b.label === label)?.root ?? 'floor';
      const run = await runChild({ AB_ROOT: root, AB_N: String(n), AB_K: String(k) });
      const key = `${n}x${k} ${label}`;
      runs.set(key, [...(runs.get(key) ?? []), run]);
      console.log(`round ${round} N=${n}×K=${k} ${label}: ${(run.deliveries / (run.ms / 1000)).toFixed(0)}/s, ${run.ms.toFixed(0)} ms, client ${run.cpuUs.client.toFixed(1)} µs (load ${loadavg()[0]!.toFixed(2)})`);
    }
  }
}
console.log(`\nmedians over ${ROUNDS} rounds (load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
console.log('| scenario | build | deliveries/s | × floor | ms | client µs/delivery | × floor |');
console.log('|---|---|--:|--:|--:|--:|--:|');
for (const { n, k } of SCENARIOS) {
  const stat = (label: string) => {
    const list = runs.get(`${n}x${k} ${label}`)!;
    return { rate: median(list.map((r) => r.deliveries / (r.ms / 1000))), ms: median(list.map((r) => r.ms)), client: median(list.map((r) => r.cpuUs.client)) };
  };
  const floor = stat('floor');
  for (const label of labels) {
    const s = stat(label);
    console.log(`| N=${n}×K=${k} | ${label} | ${s.rate.toFixed(0)} | ${(s.rate / floor.rate).toFixed(2)} | ${s.ms.toFixed(0)} | ${s.client.toFixed(1)} | ${(s.client / floor.client).toFixed(2)} |`);
  }
}
