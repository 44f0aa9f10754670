/**
 * One run of bench/sqlite-ab.ts in a process of its own: the end-to-end scenario N=AB_N events to K=AB_K
 * subscriptions on a fresh SQLite file, by the build at AB_ROOT (its bench/scenario.ts), or by the durable
 * floor (AB_ROOT=floor). Unreported runs of the same scenario (about 20,000 deliveries) warm the process up first, as the
 * earlier runs of `npm run bench` do. Prints the measured run as one line of JSON. With AB_PROFILE set to a
 * file, the measured run's CPU profile is written there (for `--cpu-prof`-style analysis). With AB_STATEMENTS
 * set, every better-sqlite3 statement the measured run makes (its setup included: migrations, subscriptions)
 * is counted and timed (wall clock, so a busy machine inflates it), and the dearest are listed on stderr
 * per delivery; the timing itself adds ~0.1 µs per statement.
 * @module
 */
import './production-env.js';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { durableFloorEndToEnd } from './durable-floor.js';
import { Receiver, type RunResult } from './receiver-process.js';
import { book, CONCURRENCY, now } from './scenario.js';

const env = (name: string) => process.env[name] ?? (() => { throw new Error(`${name} is not set`); })();
const root = env('AB_ROOT');
const [n, k] = [Number(env('AB_N')), Number(env('AB_K'))];
const profile = process.env.AB_PROFILE;
// The processes of `npm run bench` have run the hot-path benches and earlier scenarios by then: a first
// run of 1,000 deliveries in a fresh process is mostly compiling (3× the CPU per delivery).
const warmups = Number(process.env.AB_WARMUPS ?? Math.max(1, Math.ceil(20_000 / (n * k))));

/** Per SQL text: runs and wall-clock µs, while `counting.on`. */
const statements = new Map<string, { runs: number; us: number }>();
const counting = { on: false };
if (process.env.AB_STATEMENTS) {
  const probe = new Database(':memory:');
  const prototype = Object.getPrototypeOf(probe.prepare('select 1')) as Record<'run' | 'all' | 'get', (...parameters: unknown[]) => unknown>;
  probe.close();
  for (const method of ['run', 'all', 'get'] as const) {
    const original = prototype[method];
    prototype[method] = function (this: { readonly source: string }, ...parameters: unknown[]) {
      if (!counting.on) return original.apply(this, parameters);
      const started = performance.now();
      try {
        return original.apply(this, parameters);
      } finally {
        const entry = statements.get(this.source) ?? { runs: 0, us: 0 };
        entry.runs++;
        entry.us += (performance.now() - started) * 1000;
        statements.set(this.source, entry);
      }
    };
  }
}

type EndToEnd = (rx: Receiver, run: { dir: string; n: number; k: number }) => Promise<RunResult>;

const dir = mkdtempSync(join(tmpdir(), 'resthooks-ab-'));
const rx = await Receiver.start();
try {
  let files = 0;
  const once: EndToEnd =
    root === 'floor'
      ? (r, run) => durableFloorEndToEnd(r, { file: join(run.dir, `floor-${++files}.db`), events: run.n, subscriptionsPerEvent: run.k, inFlight: CONCURRENCY, now, data: (i) => JSON.stringify(book(i)) })
      : ((await import(pathToFileURL(join(root, 'bench/scenario.ts')).href)) as { resthooksEndToEnd: EndToEnd }).resthooksEndToEnd;
  for (let i = 0; i < warmups; i++) {
    const warm = await once(rx, { dir, n, k });
    if (process.env.AB_VERBOSE) console.error(`warm-up ${i + 1}: ${warm.ms.toFixed(0)} ms, client ${warm.cpuUs.client.toFixed(1)} µs`);
  }
  const session = profile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  counting.on = true;
  const run = await once(rx, { dir, n, k });
  counting.on = false;
  if (statements.size > 0) {
    const deliveries = n * k;
    const listed = [...statements].sort((a, b) => b[1].us - a[1].us).slice(0, Number(process.env.AB_STATEMENTS) || 12);
    let total = 0;
    for (const [, { us }] of statements) total += us;
    console.error(`statements of the measured run (${root}), per delivery: ${(total / deliveries).toFixed(2)} µs in all`);
    for (const [source, { runs, us }] of listed) {
      console.error(`${(us / deliveries).toFixed(2).padStart(7)} µs ${(runs / deliveries).toFixed(3).padStart(7)} runs ${(us / runs).toFixed(1).padStart(8)} µs/run  ${source.replace(/\s+/g, ' ').slice(0, 120)}`);
    }
  }
  if (session) {
    const { profile: taken } = await session.post('Profiler.stop');
    writeFileSync(profile!, JSON.stringify(taken));
    session.disconnect();
  }
  console.log(JSON.stringify(run));
} finally {
  rx.close();
  rmSync(dir, { recursive: true, force: true });
}
