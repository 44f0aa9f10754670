/**
 * `npm run bench`: the hot path (one `hooks.model()` call, alone and against the durable floor's bare
 * INSERT with the cost of each index of the event row), what each ORM adapter adds to a single-row insert,
 * and end-to-end delivery throughput against a bare-undici ceiling, written to docs/benchmarks.md. Bounded in time, cleans up after
 * itself (temp dir, child process). Timings are reported, never asserted.
 */
import './production-env.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hooks } from '../src/index.js';
import { ceilingEndToEnd } from './ceiling.js';
import { durableFloorEndToEnd } from './durable-floor.js';
import { hotPathAgainstFloor, type HotPathRow } from './event-row.js';
import { adapterCosts, isJudged, isRawRecipe, type AdapterCost } from './orm-insert.js';
import { PEERS_END, PEERS_START } from './peers-section.js';
import { postgresBench } from './postgres-scenarios.js';
import { spliceSection, sectionOf, type ScenarioReport } from './scenario-report.js';
import { runScenarios, scenarioNamed, SCENARIOS } from './scenarios.js';
import { txCostScenario } from './tx-cost.js';
import { Receiver, type RunResult as E2eResult } from './receiver-process.js';
import { book, CONCURRENCY, newHooks as newHooksIn, now, resthooksEndToEnd as scenarioEndToEnd } from './scenario.js';
import { fmt, machine, medianOf, medianRatio, rate, ratiosOf, spread } from './stats.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const DOC = join(HERE, '..', 'docs', 'benchmarks.md');
// The SQLite part and its scenarios inside 10 minutes, the PostgreSQL part (fsync on) inside 20 more: its three
// rounds take ~7 minutes on a quiet machine (one took ~2.5 in a full run at load 1.4) and ~9 under load.
const HARD_LIMIT_MS = 600_000 + 1_200_000;
// `--only <scenario>`: that scenario alone, its section of the page replaced (bench/scenarios.ts).
const ONLY = process.argv.includes('--only') ? scenarioNamed(process.argv[process.argv.indexOf('--only') + 1] ?? '') : undefined;
const HOT_WARMUP = 2_000;
const HOT_CALLS = 20_000;
// With the dispatcher running, every call also makes K deliveries that the loop lets it send between
// calls: fewer calls (and a wall-clock cap), and the backlog is not drained.
const HOT_RUNNING = { warmup: 500, calls: { 1: 5_000, 100: 1_000 } as Record<number, number>, capMs: 10_000 };
// Against the floor: rounds of this many awaited inserts per row, rotating which row goes first.
const FLOOR_ROUNDS = 21;
const FLOOR_INSERTS = 1_000;
const ADAPTER_ROUNDS = 21;
const HOT_TARGET = 1.5; // × the floor's bare INSERT, and × the same insert without resthooks for an adapter
// Each scenario's resthooks, floor and ceiling runs rotate, each first in a third of the rounds; medians over rounds are
// reported. A run of N=1,000 × K=1 lasts ~0.1 s, so one GC pause or stall moves it: with 3 rounds its median resthooks /
// floor was 87% in one full run and 75% in the next (no change to the delivery path between them), more than the target's margin.
const E2E_ROUNDS = 9;
// End to end on SQLite, against the durable floor: deliveries/s at least this share of the floor's and client CPU per
// delivery at most this multiple of it; where the floor itself reaches FLOOR_NEAR_CEILING of the ceiling, resthooks
// at least OF_CEILING_TARGET of the ceiling too.
const OF_FLOOR_TARGET = 0.9;
const FLOOR_CPU_TARGET = 1.2;
const FLOOR_NEAR_CEILING = 0.66;
const OF_CEILING_TARGET = 0.6;
const E2E_SCENARIOS = [
  { n: 1_000, k: 1 },
  { n: 100, k: 100 },
  { n: 20_000, k: 1 },
] as const;

const tmp = mkdtempSync(join(tmpdir(), 'resthooks-bench-'));
let receiver: Receiver | undefined;

function cleanup(): void {
  receiver?.close();
  receiver = undefined;
  rmSync(tmp, { recursive: true, force: true });
}
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${HARD_LIMIT_MS / 1000} s; giving up`);
  cleanup();
  process.exit(2);
}, HARD_LIMIT_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanup();
    process.exit(130);
  });
}

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

let dbCount = 0;
const newHooks = (port: number, k: number) => newHooksIn(tmp, port, k);

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const times = (x: number) => `${x.toFixed(2)}×`;

// ── hot path ──────────────────────────────────────────────────────────────────────────────────

interface HotRow {
  k: number;
  dispatcher: 'stopped' | 'running';
  calls: number;
  median: number;
  p99: number;
  mean: number;
}

async function hotPath(port: number, k: number, dispatcher: HotRow['dispatcher']): Promise<HotRow> {
  const { hooks } = await newHooks(port, k);
  if (dispatcher === 'running') await hooks.start();
  const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));
  const warmup = dispatcher === 'running' ? HOT_RUNNING.warmup : HOT_WARMUP;
  const wanted = dispatcher === 'running' ? (HOT_RUNNING.calls[k] ?? 1_000) : HOT_CALLS;
  const samples = new Float64Array(wanted);
  const cap = performance.now() + HOT_RUNNING.capMs;
  let calls = 0;
  for (let i = 0; i < warmup + wanted; i++) {
    const instance = book(i);
    const t = performance.now();
    const result = await hooks.model('Book', 'created', instance);
    const dt = performance.now() - t;
    if (result.status !== 'queued') throw new Error(`hooks.model() returned ${JSON.stringify(result)}`);
    if (i >= warmup) samples[calls++] = dt * 1000;
    // With the dispatcher running, let it deliver between calls (outside the timed span).
    if (dispatcher === 'running') {
      await yieldNow();
      if (performance.now() > cap) break;
    }
  }
  await hooks.close({ timeout: '2s' }); // the backlog stays in the temp file

  const sorted = Array.from(samples.subarray(0, calls)).sort((a, b) => a - b);
  return { k, dispatcher, calls, median: percentile(sorted, 50), p99: percentile(sorted, 99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

// ── end to end ────────────────────────────────────────────────────────────────────────────────

/** One rotating round of a scenario: each of the three measured once, minutes apart. */
interface E2eRound {
  readonly ours: E2eResult;
  readonly ceiling: E2eResult;
  readonly floor: E2eResult;
}

interface E2eRow {
  readonly n: number;
  readonly k: number;
  readonly rounds: E2eRound[];
}

/** Deliveries per second counted from the end of the trigger loop: the outbox drained. */
const drained = (x: E2eResult) => (x.deliveries / (x.ms - (x.triggerMs ?? 0))) * 1000;

const resthooksEndToEnd = (rx: Receiver, n: number, k: number) => scenarioEndToEnd(rx, { dir: tmp, n, k });

/** The durable floor (bench/durable-floor.ts): the same scenario by hand, on a fresh SQLite file. */
function floorEndToEnd(rx: Receiver, n: number, k: number): Promise<E2eResult> {
  const data = (i: number) => JSON.stringify(book(i));
  return durableFloorEndToEnd(rx, { file: join(tmp, `floor-${++dbCount}.db`), events: n, subscriptionsPerEvent: k, inFlight: CONCURRENCY, now, data });
}

// ── the run ───────────────────────────────────────────────────────────────────────────────────


async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  receiver = await Receiver.start();
  const rx = receiver;
  console.log(`receiver: pid ${rx.child.pid}, port ${rx.port}`);

  // The body the resthooks runs send (envelope + the same book), so the ceiling sends the same size.
  const sampleHook = { id: 'sub_0000000000000000000000000a', event: 'book.added', target: `http://127.0.0.1:${rx.port}/hook/0` };
  const bodyLength = `{"hook":${JSON.stringify(sampleHook)},"data":${JSON.stringify(book(10_000))}}`.length;
  const scenarioContext = { rx, dir: tmp, bodyLength, log: (line: string) => console.log(line) };
  if (ONLY) {
    const [report] = await runScenarios(scenarioContext, [ONLY]);
    writeFileSync(DOC, spliceSection(readFileSync(DOC, 'utf8'), report!, '## What bounds these numbers'));
    console.log(`wrote the ${ONLY.name} section of ${DOC} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return;
  }

  console.log('warm-up (JIT, sockets) …');
  await resthooksEndToEnd(rx, 2_000, 1);
  await ceilingEndToEnd(rx, 2_000, bodyLength);
  await floorEndToEnd(rx, 2_000, 1);

  console.log('hot path …');
  const hot: HotRow[] = [];
  for (const dispatcher of ['stopped', 'running'] as const) {
    for (const k of [1, 100]) {
      const row = await hotPath(rx.port, k, dispatcher);
      hot.push(row);
      console.log(`  [${((Date.now() - started) / 1000).toFixed(1)} s] K=${k} dispatcher ${dispatcher}: median ${row.median.toFixed(1)} µs, p99 ${row.p99.toFixed(1)} µs`);
    }
  }

  console.log('hot path against the durable floor …');
  const subscribe = async (hooks: Hooks, k: number) => {
    for (let i = 0; i < k; i++) await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `http://127.0.0.1:${rx.port}/hook/${i}` });
  };
  const againstFloor = await hotPathAgainstFloor({ ks: [1, 100], rounds: FLOOR_ROUNDS, insertsPerRound: FLOOR_INSERTS, book, subscribe });
  for (const r of againstFloor) console.log(`  ${r.name}: ${r.us.toFixed(1)} µs (${r.ratio.toFixed(2)}× floor), CPU ${r.cpuUs.toFixed(1)} µs (${r.cpuRatio.toFixed(2)}×), ${r.walPages.toFixed(2)} WAL pages`);

  console.log('end to end …');
  const e2e: E2eRow[] = [];
  for (let round = 1; round <= E2E_ROUNDS; round++) {
    for (const [index, { n, k }] of E2E_SCENARIOS.entries()) {
      // Rotate which goes first, so none always runs on a warmer (or busier) machine.
      const runs = { ceiling: () => ceilingEndToEnd(rx, n * k, bodyLength), ours: () => resthooksEndToEnd(rx, n, k), floor: () => floorEndToEnd(rx, n, k) };
      const order = (['ceiling', 'ours', 'floor'] as const).map((_, i, all) => all[(i + round) % all.length]!);
      const result = {} as Record<keyof typeof runs, E2eResult>;
      for (const which of order) result[which] = await runs[which]();
      const { ours, floor, ceiling: ceilingResult } = result;
      (e2e[index] ??= { n, k, rounds: [] }).rounds.push({ ours, ceiling: ceilingResult, floor });
      console.log(
        `  [${((Date.now() - started) / 1000).toFixed(1)} s] round ${round} N=${n}×K=${k}: resthooks ${fmt(rate(ours))}/s (triggers ${fmt(ours.triggerMs!)} ms of ${fmt(ours.ms)} ms), ` +
          `floor ${fmt(rate(floor))}/s, ceiling ${fmt(rate(ceilingResult))}/s, resthooks / ceiling ${pct(rate(ours) / rate(ceilingResult))}, floor / ceiling ${pct(rate(floor) / rate(ceilingResult))}, ` +
          `resthooks / floor ${pct(rate(ours) / rate(floor))}; from the end of the triggers resthooks / ceiling ${pct(drained(ours) / rate(ceilingResult))}, ` +
          `floor / ceiling ${pct(drained(floor) / rate(ceilingResult))}; resthooks / ceiling client CPU ${(ours.cpuUs.client / ceilingResult.cpuUs.client).toFixed(1)}×; ` +
          `CPU µs per delivery: resthooks ${ours.cpuUs.client.toFixed(1)} (receiver ${ours.cpuUs.receiver.toFixed(1)}), floor ${floor.cpuUs.client.toFixed(1)}, ceiling ${ceilingResult.cpuUs.client.toFixed(1)} (receiver ${ceilingResult.cpuUs.receiver.toFixed(1)})`,
      );
    }
  }

  // The scenarios and the PostgreSQL runs measure resthooks in this process, so they run before the ORM adapters'
  // bench loads every ORM: an app's process holds one, and five ORMs' heap would make each major GC (which resthooks'
  // throughput pays more often than the floor's) cost what no app pays. The `{ tx }` scenario reuses the adapters' table.
  const [beforeOrms, afterOrms] = [SCENARIOS.filter((s) => s !== txCostScenario), [txCostScenario]];
  const scenarios = await runScenarios(scenarioContext, beforeOrms);
  const postgres = await postgresBench({ rx, ceiling: (total) => ceilingEndToEnd(rx, total, bodyLength), log: console.log });

  console.log('ORM adapters …');
  const adapters = await adapterCosts(ADAPTER_ROUNDS);
  for (const r of adapters) console.log(`  ${r.adapter}: ${r.plainUs.toFixed(1)} µs plain, ${r.hookedUs.toFixed(1)} µs with resthooks, ${r.ratio.toFixed(2)}× (CPU ${r.cpuRatio.toFixed(2)}×)`);

  scenarios.push(...(await runScenarios({ ...scenarioContext, adapterCosts: adapters }, afterOrms)));

  writeDoc({ ...machine(), load: [loadAtStart, loadavg()[0]!] }, { hot, againstFloor, adapters, e2e, scenarios, postgres }, Date.now() - started);
  console.log(`wrote ${DOC} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function writeDoc(
  m: ReturnType<typeof machine> & { load: [number, number] },
  results: { hot: readonly HotRow[]; againstFloor: readonly HotPathRow[]; adapters: readonly AdapterCost[]; e2e: readonly E2eRow[]; scenarios: readonly ScenarioReport[]; postgres: readonly string[] },
  runMs: number,
): void {
  const { hot, againstFloor, adapters, e2e, scenarios } = results;
  const calls = againstFloor.filter((r) => r.name.startsWith('`hooks.model()`'));
  const floorMet = calls.every((r) => r.ratio <= HOT_TARGET);
  const adaptersMet = adapters.filter(isJudged).every((r) => r.ratio <= HOT_TARGET);
  const hotMet = hot.filter((r) => r.dispatcher === 'stopped').every((r) => r.median <= 50);
  const verdicts = e2e.map(endToEndVerdict);
  const e2eMet = verdicts.every((v) => v.met);
  const lines = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.ts); edits here are overwritten. -->',
    '',
    'Two numbers matter for a webhooks library: what a model save pays to record an event (the **hot path**,',
    'which must not grow with the number of subscribers), and how fast recorded events reach receivers',
    '(**end to end**), compared with the fastest this machine can POST the same bodies with undici alone.',
    'Embedded engine: better-sqlite3 file store (WAL, `synchronous = normal`) in a temp dir, in-process dispatcher; subscription secrets sealed at rest (AES-GCM, a key made per run: bench/production-env.ts), as in production.',
    '',
    `- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.memory} RAM, Node ${m.node}, ${process.platform}`,
    '- **Command:** `npm run bench`',
    `- **Date:** ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} (run took ${(runMs / 1000).toFixed(0)} s)`,
    `- **Load:** 1-minute load average ${m.load[0].toFixed(1)} at the start, ${m.load[1].toFixed(1)} at the end (${m.cores} cores; anything above ~2 means other processes competed for the CPU and the numbers are pessimistic).`,
    `- **Receiver:** a separate Node process (\`bench/receiver.mjs\`, node:http, 200 + keep-alive), shared by every run.`,
    '',
    '## Hot path: one awaited `hooks.model()` call',
    '',
    `${fmt(HOT_WARMUP)} warm-up calls, then each call awaited and timed alone; one outbox row each.`,
    '"Stopped": the dispatcher was never started (the subscribers exist, nothing is delivered).',
    '"Running": the dispatcher is started and delivers to the receiver between calls (the loop yields with',
    '`setImmediate` after each call, outside the timed span); its backlog is not drained. These rows are wall-clock on a',
    'thread that is also delivering: when dispatcher work is queued ahead of the call\'s continuation, it lands in the',
    'timed span (with K=100 one such chunk signs and sends 100 deliveries). The target is about the call\'s own cost, the stopped rows.',
    '',
    '| K subscriptions | dispatcher | calls timed | median µs | p99 µs | mean µs | target: median ≤ 50 µs |',
    '|---:|---|---:|---:|---:|---:|---|',
    ...hot.map((r) => `| ${r.k} | ${r.dispatcher} | ${fmt(r.calls)} | ${r.median.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.mean.toFixed(1)} | ${r.dispatcher === 'stopped' ? (r.median <= 50 ? 'met' : 'missed') : 'n/a (see above)'} |`),
    '',
    'For comparison, django-rest-hooks measures 4.6 ms per save with K=1 and 25 ms with K=100 on this',
    'machine: its save looks the hooks up and starts every delivery itself, so it grows with K.',
    '',
    ...floorSection(againstFloor, floorMet),
    '',
    ...adapterSection(adapters, adaptersMet),
    '',
    '## End to end: deliveries per second to a local keep-alive receiver',
    '',
    `Time runs from the first trigger call to the receiver's receipt of the last delivery (receiver clock), and starts once \`hooks.start()\` has returned`,
    'and the SQLite store\'s checkpointer thread has booted (a one-time start of ~40 ms of CPU, as opening the database is; the floor starts no thread).',
    'Triggers are fired as fast as possible, awaited one after the other, with the dispatcher started. Each awaited call',
    'settles without an event-loop turn (better-sqlite3 is synchronous), so the dispatcher only starts once the last trigger has',
    'returned: the time is the trigger loop (shown separately) plus the delivery of the backlog. Every delivery is checked afterwards',
    `to be \`delivered\` after exactly one attempt. resthooks: concurrency ${CONCURRENCY}, ${CONCURRENCY} connections per origin, one owner with \`ownerShare: 1\`,`,
    `signed (Standard Webhooks), SSRF-guarded connector. Ceiling: a bare undici \`Pool\` (${CONCURRENCY} connections) with ${CONCURRENCY}`,
    'requests in flight, POSTing a body of the same size with the same headers (precomputed) to the same receiver.',
    'Durable floor (`bench/durable-floor.ts`): the same scenario written by hand on better-sqlite3 and undici, on one thread, with',
    'only what durable delivery needs: one autocommit INSERT per event in the same awaited loop, delivery rows with a due index',
    'created in fan-out transactions as large as the engine\'s queue, a signed POST, an attempt row and a status update per delivery',
    'in batched transactions, the same WAL settings. It has none of the rest (string ids and the indexes behind the API, the',
    '(event, subscription) key that makes a repeated fan-out harmless, per-subscription history, retries, 410 handling, SSRF checks,',
    'timeouts, excerpts, callbacks): a sketch of how fast an embedded durable outbox could go here at best, not a design to ship.',
    `Each scenario runs ${E2E_ROUNDS} rounds, rotating which of the three goes first, on a fresh SQLite file per run; each figure is the median over`,
    'rounds, each ratio the median of the per-round ratios (the three measured in the same round), and the target is judged on that',
    'median; "per round" shows the lowest and highest of the rounds\' resthooks / floor. Target: resthooks at least',
    `${pct(OF_FLOOR_TARGET)} of the floor's deliveries/s with client CPU per delivery at most ${FLOOR_CPU_TARGET}× the floor's (CPU table below), and at least`,
    `${pct(OF_CEILING_TARGET)} of the ceiling where the floor reaches ${pct(FLOOR_NEAR_CEILING)} of it.`,
    '',
    '| scenario | deliveries | resthooks /s | (of which triggers, ms) | durable floor /s | ceiling /s | resthooks / ceiling | floor / ceiling | resthooks / floor | per round | target |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...e2e.map((r, i) => {
      const perRound = spread(ratiosOf(r.rounds, (x) => rate(x.ours), (x) => rate(x.floor)), pct);
      const [ours, floor, ceiling] = [medianOf(r.rounds, (x) => rate(x.ours)), medianOf(r.rounds, (x) => rate(x.floor)), medianOf(r.rounds, (x) => rate(x.ceiling))];
      const triggers = `${fmt(medianOf(r.rounds, (x) => x.ours.triggerMs!))} of ${fmt(medianOf(r.rounds, (x) => x.ours.ms))}`;
      const verdict = verdicts[i]!;
      return `| N=${fmt(r.n)} × K=${r.k} | ${fmt(r.n * r.k)} | ${fmt(ours)} | ${triggers} | ${fmt(floor)} | ${fmt(ceiling)} | ${pct(verdict.ofCeiling)} | ${pct(verdict.floorOfCeiling)} | ${pct(verdict.ofFloor)} | ${perRound} | ${verdict.text} |`;
    }),
    '',
    'The same runs counted from the end of the trigger loop, i.e. the outbox drained by fan-out, dispatch, signed send and record',
    '(the ceiling has no trigger loop; its rate is unchanged):',
    '',
    '| scenario | resthooks /s | durable floor /s | ceiling /s | resthooks / ceiling | floor / ceiling | resthooks / floor |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...e2e.map((r) => {
      const [ours, floor, ceiling] = [medianOf(r.rounds, (x) => drained(x.ours)), medianOf(r.rounds, (x) => drained(x.floor)), medianOf(r.rounds, (x) => rate(x.ceiling))];
      const ratios = [
        medianRatio(r.rounds, (x) => drained(x.ours), (x) => rate(x.ceiling)),
        medianRatio(r.rounds, (x) => drained(x.floor), (x) => rate(x.ceiling)),
        medianRatio(r.rounds, (x) => drained(x.ours), (x) => drained(x.floor)),
      ];
      return `| N=${fmt(r.n)} × K=${r.k} | ${fmt(ours)} | ${fmt(floor)} | ${fmt(ceiling)} | ${ratios.map(pct).join(' | ')} |`;
    }),
    '',
    'CPU time of each process over the same runs (user + system, per delivery): the client is this process (resthooks, the floor,',
    'or the bare Pool), the receiver is the other process. The client is the one that saturates its core; the receiver has room to spare.',
    '',
    `| scenario | resthooks client µs | floor client µs | resthooks / floor client CPU | per round | ceiling client µs | resthooks / ceiling client CPU | receiver µs (resthooks run) | receiver µs (ceiling run) |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...e2e.map((r, i) => {
      const us = (figure: (x: E2eRound) => number) => medianOf(r.rounds, figure).toFixed(1);
      const ofCeilingCpu = medianRatio(r.rounds, (x) => x.ours.cpuUs.client, (x) => x.ceiling.cpuUs.client);
      const perRound = spread(ratiosOf(r.rounds, (x) => x.ours.cpuUs.client, (x) => x.floor.cpuUs.client), times);
      return `| N=${fmt(r.n)} × K=${r.k} | ${us((x) => x.ours.cpuUs.client)} | ${us((x) => x.floor.cpuUs.client)} | ${times(verdicts[i]!.floorCpu)} | ${perRound} | ${us((x) => x.ceiling.cpuUs.client)} | ${ofCeilingCpu.toFixed(1)}× | ${us((x) => x.ours.cpuUs.receiver)} | ${us((x) => x.ceiling.cpuUs.receiver)} |`;
    }),
    '',
    `Targets: hot path ${hotMet ? 'met' : 'missed'}; hot path ≤ ${HOT_TARGET}× the floor's bare INSERT ${floorMet ? 'met' : 'missed'}; ` +
      `every adapter in its documented setup ≤ ${HOT_TARGET}× ${adaptersMet ? 'met' : 'missed'}; end to end ${e2eMet ? 'met' : 'missed'}.`,
    '',
    ...results.postgres,
    '',
    ...scenarios.flatMap((report) => [...sectionOf(report), '']),
    '## What bounds these numbers',
    '',
    ...measuredBounds(e2e),
    '',
    BOUNDS_DATED,
    '',
    ...BOUNDS,
    '',
  ];
  // The peers table is written by `npm run bench:peers` (a longer run of its own): keep it.
  const previous = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '';
  const peers = previous.includes(PEERS_START) ? previous.slice(previous.indexOf(PEERS_START), previous.indexOf(PEERS_END) + PEERS_END.length) : '';
  writeFileSync(DOC, `${lines.join('\n').trimEnd()}\n${peers ? `\n${peers}\n` : ''}`);
}

function floorSection(rows: readonly HotPathRow[], met: boolean): string[] {
  const floor = rows[0]!;
  return [
    '## Hot path against the durable floor, and what each index of the event row costs',
    '',
    `Each row is one awaited insert per event on a fresh SQLite file of its own (WAL, \`synchronous = normal\`), ${fmt(FLOOR_INSERTS)} per`,
    `round, ${FLOOR_ROUNDS} rounds in a rotating order after a warm-up; times are medians over rounds, and "× floor" is the median over rounds`,
    'of the round\'s ratio to the floor (wall clock, and CPU time of this process, which other processes on the machine disturb less).',
    'The floor is the durable floor\'s trigger (`bench/durable-floor.ts`): `JSON.stringify` of the book and one INSERT into a table',
    'with an integer key. `hooks.model()` runs with the dispatcher stopped. The event-row rows run the store\'s own INSERT (its SQL, and',
    'the parameters `hooks.model()` gives it for the same book) with bare better-sqlite3, into tables that differ from the row above',
    'by one B-tree: the difference between two rows is that index\'s cost. WAL pages per insert are counted exactly (a commit writes',
    'every page it changed, and each page is 4 KiB written to the WAL and later copied into the database by a checkpoint).',
    '',
    `| what | which is | µs per insert | × floor | CPU µs | × floor (CPU) | WAL pages per insert | target ≤ ${HOT_TARGET}× floor |`,
    '|---|---|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => {
      const target = r === floor ? 'floor' : r.name.startsWith('`hooks.model()`') ? (r.ratio <= HOT_TARGET ? 'met' : 'missed') : '';
      return `| ${r.name} | ${r.note} | ${r.us.toFixed(1)} | ${r.ratio.toFixed(2)}× | ${r.cpuUs.toFixed(1)} | ${r.cpuRatio.toFixed(2)}× | ${r.walPages.toFixed(2)} | ${target} |`;
    }),
    '',
    `Target ≤ ${HOT_TARGET}× the floor's bare INSERT per awaited \`hooks.model()\`: ${met ? 'met' : 'missed'}.`,
    ...FLOOR_NOTES,
  ];
}

function adapterSection(rows: readonly AdapterCost[], met: boolean): string[] {
  return [
    '## What each ORM adapter adds to a single-row insert (SQLite)',
    '',
    'The same insert of one book with and without resthooks, in the same run (`bench/orm-insert.ts`, also `npm run bench:orm`): one',
    'transaction per insert on a SQLite file (WAL), the resthooks store in the same file so that the outbox row is written in the',
    'insert\'s own transaction (`transaction` mode), except for Sequelize, whose SQLite driver (`sqlite3`) must not share a file with',
    'the store\'s (`better-sqlite3`): there the row is appended to the store\'s own file after the COMMIT (`after-commit` mode).',
    'Each adapter runs in a child process of its own, on fresh files, with only its ORM loaded (`bench/orm-insert-case.ts`): measured in',
    'one process, each may also pay for the others (their heaps in every garbage collection, the type feedback of the trigger code they',
    'share, their events in a shared outbox), which is no cost of the adapter measured.',
    `${ADAPTER_ROUNDS} rounds: each runs every adapter, one child at a time (rotating which goes first), with its plain and hooked inserts`,
    'alternating which goes first, as many inserts per side as fill ~100 ms; times are medians over rounds and the ratio is the median over',
    'rounds of hooked / plain, in wall-clock time (what decides the target) and in CPU time of the child (which other processes on the',
    'machine disturb less).',
    '',
    `| adapter | insert | outbox row | inserts per side | plain µs | with resthooks µs | ratio | plain CPU µs | with resthooks CPU µs | ratio (CPU) | target ≤ ${HOT_TARGET}× |`,
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.adapter} | ${r.insert} | ${r.mode} | ${fmt(r.inserts)} | ${r.plainUs.toFixed(1)} | ${r.hookedUs.toFixed(1)} | ${r.ratio.toFixed(2)}× | ${r.plainCpuUs.toFixed(1)} | ${r.hookedCpuUs.toFixed(1)} | ${r.cpuRatio.toFixed(2)}× | ${isRawRecipe(r) ? 'no adapter' : !isJudged(r) ? 'other setup' : r.ratio <= HOT_TARGET ? 'met' : 'missed'} |`,
    ),
    '',
    `Target ≤ ${HOT_TARGET}× for every adapter, each in the setup docs/orms.md gives it: ${met ? 'met' : 'missed'}${met ? '.' : ` (${rows.filter((r) => isJudged(r) && r.ratio > HOT_TARGET).map((r) => r.adapter).join('; ')}).`}` +
      otherSetups(rows) +
      ` The raw better-sqlite3 rows are no adapter but the \`{ tx }\` recipe for raw drivers (docs/orms.md), measured here beside them: ${rows
        .filter(isRawRecipe)
        .map((r) => `${r.adapter} ${r.ratio.toFixed(2)}×`)
        .join(', ')}; their insert is a few µs, so the outbox row's own page weighs more there (see below and the \`{ tx }\` section).`,
    ...ADAPTER_NOTES,
  ];
}

/** The setups measured beside the documented ones, grouped by why they are not what the target judges. */
function otherSetups(rows: readonly AdapterCost[]): string {
  const byReason = new Map<string, AdapterCost[]>();
  for (const r of rows) if (r.otherSetup !== undefined) byReason.set(r.otherSetup, [...(byReason.get(r.otherSetup) ?? []), r]);
  if (byReason.size === 0) return '';
  const groups = [...byReason].map(([reason, group]) => `${group.map((r) => `${r.adapter} ${r.ratio.toFixed(2)}×`).join(', ')}: ${reason}`);
  return ` Other setups, measured beside them and not what the target judges: ${groups.join('. ')}.`;
}

// Written from this bench's own tables and isolated better-sqlite3 runs on this machine; update when they change.
const FLOOR_NOTES = [
  '',
  'What the event row costs, measured: the cost of an autocommit write on SQLite is the pages its commit writes to the WAL. Since',
  'migration 0006 a save writes its event into `resthooks_outbox`, a table of one B-tree (the rowid; `id` not indexed): one page per',
  'commit, as the floor\'s row ("fresh event row"). Before, the event row in `resthooks_events` wrote three: the row, the unique index',
  'on its text id (a rowid table keeps its key in a B-tree of its own) and the pending index the fan-out scans (the "before 0006" rows).',
  'The fan-out reads fresh events in order and moves each into `resthooks_events`, with the status it ends in, in the transaction that',
  'writes its deliveries: the key and the indexes are written there, in batched transactions, off the save. `hooks.model()` itself adds',
  'a few µs over the same INSERT run bare (compare it with the "fresh event row" row): serializing, routing and the id. Migration 0004',
  'took the name index off the write path (the "before 0004" row shows what it cost on every save). `WITHOUT ROWID` would keep row and',
  'key in one B-tree, but saves less than that row shows once data passes ~1 KB (index B-tree cells overflow: the 2 KB rows).',
];
const ADAPTER_NOTES = [
  '',
  'Where the time goes, from profiles (`node --cpu-prof`) of these inserts and isolated better-sqlite3 runs, in CPU time inside one',
  'transaction: resthooks\' own work per event (route, serialize, id, owner, row, metrics) is ~3 µs; the rest is SQLite. (1) The outbox',
  'row adds its B-trees to the commit of an insert that itself writes one or two pages (the book\'s leaf, and `sqlite_sequence` for an',
  'AUTOINCREMENT key): one since migration 0006 (the fresh table, ~7 µs), three before (the row, the unique index on its text id, the',
  'pending index: ~18 µs with its statement prepared once), where the book\'s whole insert costs ~11 µs. (2) Preparing the outbox INSERT costs',
  '~7–11 µs more (SQLite compiles it into every index of the table) wherever the driver prepares each statement it runs:',
  '`sqliteTx(db)` for the raw recipes and Kysely\'s `sqlite` option prepare it once per connection (compare the rows without them);',
  'Drizzle (through `$client`) and TypeORM (its statement cache) already did, and so does Prisma with `resthooksAdapter` on better-sqlite3',
  '(on the driver transaction\'s own `Database`); MikroORM\'s driver still prepares it per',
  'write (MikroORM\'s raw statement through Knex costs ~40 µs in all, against ~3 µs for the prepared statement run bare). (3) Prisma\'s',
  'raw-statement path (`tx.$executeRawUnsafe`) costs more than half of a `$transaction` create by itself, and',
  'standalone, resthooks runs the write in an interactive transaction so that its outbox row commits with it, which costs far more than',
  'Prisma\'s implicit one (`standalone: \'after-write\'` avoids that, at the price of atomicity). `resthooksAdapter` avoids both, and on',
  'better-sqlite3 it runs the outbox INSERT (and the COMMIT of a transaction it holds) on the transaction\'s `Database`, prepared once,',
  'and records the event with `modelSync`, without `model()`\'s awaits. Prisma\'s',
  'own floor through its public API, measured in one process beside the hooked client (CPU, medians of interleaved batches, shared 2-core',
  'machine; `npm run bench:orm 7 prisma-tx-floor,prisma-standalone-floor` measures the same in this bench\'s way): a no-op query extension took 1.04–1.09× a `$transaction` create and 1.10–1.25× a standalone one; adding the outbox INSERT',
  'through the driver transaction (prepared on each write, as Prisma\'s driver adapter prepares every statement) made it 1.22–1.30× in',
  '`$transaction`; standalone, BEGIN (prepared on every call, behind the adapter\'s async mutex), the INSERT and COMMIT around a create',
  'that alone is one autocommit statement made it 1.78–1.96×, above the 1.5× target before resthooks does anything: what is left',
  'standalone is that. What resthooks adds over the floor is mostly promises and allocation, counted per create (async_hooks; V8\'s',
  'sampling heap profiler): in `$transaction` 120 promises, against the floor\'s 116 and the bare create\'s 106 (141 before the',
  'better-sqlite3 path), and ~17 KB allocated over the bare create\'s ~91 KB (~23 KB before); standalone 62 promises against 54 and 32',
  '(85 before), ~21 KB over ~40 KB (~29 KB before). In CPU time that took 1–2% off a hooked `$transaction` create and 7–14% off a',
  'standalone one (the hooked sides before and after, in one process, alternating 20 ms slices).',
  'On Node 20 the AsyncLocalStorage that follows',
  '`$transaction` calls makes every promise of the process call a hook and allocate ~70 bytes more (~9 KB per create), the bare side\'s too.',
  'The ORMs that spend more of their own',
  'time per insert (Prisma, MikroORM, Sequelize) dilute (1) and (2); the raw recipes, whose insert is a few µs, cannot: (1) alone is more',
  'than their whole insert. Sequelize is `after-commit` here: the row is an autocommit INSERT in another file after the COMMIT.',
  'On a loaded machine the wall-clock',
  'ratios exceed the CPU ones: a commit that writes more WAL pages also waits longer for the disk and the scheduler (its writes, and',
  'the checkpoints they bring sooner), which CPU time does not count.',
];

/** resthooks / ceiling deliveries/s of a scenario: the median of the per-round ratios. */
const ofCeiling = (r: E2eRow) => medianRatio(r.rounds, (x) => rate(x.ours), (x) => rate(x.ceiling));

/** One scenario against the end-to-end target (each ratio the median of the per-round ratios), and what it says. */
function endToEndVerdict(r: E2eRow) {
  const ofFloor = medianRatio(r.rounds, (x) => rate(x.ours), (x) => rate(x.floor));
  const floorCpu = medianRatio(r.rounds, (x) => x.ours.cpuUs.client, (x) => x.floor.cpuUs.client);
  const floorOfCeiling = medianRatio(r.rounds, (x) => rate(x.floor), (x) => rate(x.ceiling));
  const oursOfCeiling = ofCeiling(r);
  const misses = [
    ...(ofFloor < OF_FLOOR_TARGET ? [`${pct(ofFloor)} of floor`] : []),
    ...(floorCpu > FLOOR_CPU_TARGET ? [`CPU ${times(floorCpu)} floor`] : []),
    ...(floorOfCeiling >= FLOOR_NEAR_CEILING && oursOfCeiling < OF_CEILING_TARGET ? [`${pct(oursOfCeiling)} of ceiling`] : []),
  ];
  return { ofFloor, floorCpu, floorOfCeiling, ofCeiling: oursOfCeiling, met: misses.length === 0, text: misses.length === 0 ? 'met' : `missed (${misses.join(', ')})` };
}

/** The figures the analysis below leans on, as this run measured them (medians over rounds, as in the tables). */
function measuredBounds(e2e: readonly E2eRow[]): string[] {
  const range = (values: readonly number[]) => spread(values, pct);
  const floorOfCeiling = (r: E2eRow, floor: (x: E2eResult) => number) => medianRatio(r.rounds, (x) => floor(x.floor), (x) => rate(x.ceiling));
  const k1 = e2e.filter((r) => r.k === 1);
  const fanned = e2e.filter((r) => r.k > 1);
  const line = (r: E2eRow) => {
    const us = (figure: (x: E2eRound) => number) => medianOf(r.rounds, figure).toFixed(1);
    return (
      `N=${fmt(r.n)} × K=${r.k}: client CPU per delivery resthooks ${us((x) => x.ours.cpuUs.client)} µs, floor ${us((x) => x.floor.cpuUs.client)} µs, ceiling ` +
      `${us((x) => x.ceiling.cpuUs.client)} µs (resthooks − floor: ${us((x) => x.ours.cpuUs.client - x.floor.cpuUs.client)} µs); receiver ${us((x) => x.ceiling.cpuUs.receiver)} µs per request in the ceiling run.`
    );
  };
  return [
    'Measured in this run (from the end-to-end tables above; medians over rounds):',
    '',
    `- The durable floor reaches ${range(k1.map((r) => floorOfCeiling(r, rate)))} of the ceiling for K=1 and ${range(fanned.map((r) => floorOfCeiling(r, rate)))} for K>1;`,
    `  counted from the end of the trigger loop, ${range(k1.map((r) => floorOfCeiling(r, drained)))} for K=1.`,
    ...e2e.map((r) => `- ${line(r)}`),
  ];
}

const BOUNDS_DATED =
  'The analysis below was written from profiles of this bench (node --cpu-prof, statement timers, isolated Sender/undici and better-sqlite3 ' +
  'micro-runs) over the runs up to the one of 2026-12-06T21:37:57Z (the page committed as 6ecbd7b); its figures are that analysis\'s, not ' +
  'recomputed by this run: compare them with the list above.';

// Written from profiles of this bench (node --cpu-prof, statement timers, and isolated Sender/undici and
// better-sqlite3 micro-runs on this machine) and from the durable floor; update when the profile changes.
const BOUNDS = [
  'A durable outbox pays for work the ceiling never does, and on this machine that work alone keeps the K=1 scenarios below 60%:',
  'the durable floor, which does nothing else, stays near half the ceiling for N=20,000 × K=1 (40–58% over the runs so far).',
  'Each event is one autocommit INSERT inside the awaited trigger loop: the floor\'s bare row writes one WAL page, and so does',
  'resthooks\' since migration 0006 (fresh events in a table of one B-tree; its key, the pending index and the name index behind',
  '`GET /events/:name/sample` are written at fan-out): see the hot-path table against the floor above. The same',
  'INSERT on bare better-sqlite3 costs about the same, so this is SQLite writing pages to the WAL, not the code around it.',
  'The HTTP attempt costs what the ceiling\'s whole request costs (`Sender.send` on undici `dispatch`',
  'measures the same CPU as a bare `pool.request`, bench/sender-bench.ts). 60% of the ceiling leaves ~1.7× the ceiling client\'s',
  'CPU per delivery on one thread. For K=1 the send uses 1×; the floor\'s bare event commit (~0.6×) with its fan-out, signature',
  'and record already exceed the other 0.7× (floor client CPU ~50 µs per delivery against the ceiling\'s ~25 µs).',
  'Counted from the end of the trigger loop (second table), the floor comes to 55–90% of the ceiling for K=1 in the runs so far:',
  'draining the outbox is within reach of the target, and resthooks\' distance to the floor is what is left to cut there.',
  'The second core is not idle: the receiver runs there (20–30 µs per request). Sending from a worker thread was tried (attempts',
  'posted in batches to a thread with its own undici pools): with three busy threads on two cores it was ~30% slower.',
  'Both cores together cannot reach it either, for N=20,000 × K=1. Per delivery, the rows resthooks\' features need cost ~50 µs of',
  'SQLite (the event row ~35, fan-out, claim and record ~15, in isolated better-sqlite3 runs) and the send ~24, before any of its',
  'own code; the receiver needs ~18 more: ~92 µs of CPU per delivery, against ~41 µs per request for the ceiling (client ~24,',
  'receiver ~18). Split perfectly over both cores, resthooks could reach at most 41/92 ≈ 45% of the rate the ceiling\'s CPU allows,',
  'and the ceiling reaches ~90% of that itself: ~50% at best. The floor\'s bare rows (~46 µs in the client, ~64 µs with the',
  'receiver) would allow ~70%, again only split perfectly over both cores.',
  'The receiver is the lightest possible (node:http, no body parsing, no signature check), so the ceiling is as high as this',
  'machine allows and the ratio measures the client alone; a receiver doing real work would slow both sides and lift every ratio.',
  'With K=100 one event commit serves 100 deliveries and the floor reaches 63–85% of the ceiling. resthooks spends ~10–30 µs more',
  'client CPU per delivery than the floor (35–70 µs over the runs, of which the send and the signature take ~28), most of it in SQLite:',
  'statement timers put it at ~21 µs per delivery: commits ~8 (a WAL checkpoint every 10,000 pages included), the delivery insert',
  '~5 (five B-trees: the row, its id, (event, subscription) for a harmless repeated fan-out, due deliveries, per-subscription',
  'history), the attempt insert and the delivery update ~2.6 each, the subscription read ~1.',
  'Tried, and no faster within the noise: recording attempts in larger batches (up to 3 ms apart, queue slots freed at once), no',
  'WAL checkpoint on the delivering thread, WITHOUT ROWID deliveries, HMAC from copied pre-keyed hashes. In isolated runs of',
  'the same writes, the per-subscription history index is the dearest with K=100 (~5 µs of the ~15 µs a delivery\'s rows cost: a',
  'fan-out transaction touches one of its pages per subscription); `GET /hooks/:id/deliveries` pages on it.',
  'Measured again on 2026-12-07 (isolated better-sqlite3 runs of the store\'s delivery insert and record update in fan-out',
  'transactions of 600 deliveries to 100 subscriptions, as the K=100 scenario makes them; load 5–6 on 2 cores): without the history',
  'index a delivery\'s insert with its share of the commit costs ~5 µs less CPU, and the transaction writes 0.09 WAL pages per',
  'delivery instead of 0.38 (the index is three quarters of the fan-out\'s pages); without the (event, subscription) key, ~0.5–1 µs',
  'and 0.03 pages less. A queue that asks for more only once three quarters of its claims are free (fan-out transactions of ~800',
  'deliveries instead of ~600, 9% fewer WAL pages per delivery) was no faster in side-by-side runs (load 8–14).',
  'Split again on 2026-12-07 (side-by-side runs, load 11–15 on 2 cores): `bench/sqlite-store-ab.ts` runs the store\'s side of',
  'N=100 × K=100 without HTTP (six events appended, their fan-out pass of 600 deliveries, the records in batches of 40, as the',
  'end-to-end run makes them) beside the floor\'s statements on its own schema, interleaved in one process. The store\'s side costs',
  '21–23 µs of CPU per delivery against the floor\'s 5–6, and writes 0.70 WAL pages per delivery against 0.14: of the ~30 µs that',
  'separate resthooks from the floor end to end, 16–17 are the store\'s statements, and a profile of the same passes puts three quarters of those',
  'in SQLite itself (the delivery insert\'s five B-trees and text keys, and the pages its commits write), not in the code around it.',
  'Statement timers of one end-to-end run (AB_STATEMENTS, wall clock, load 11): the delivery insert 10.7 µs per delivery, the record',
  'update 7.3, commits 5.5, `begin immediate` 1.8, the subscription read of each fan-out pass 1.5, against the floor\'s 3.3 + 3.6 + 4.2',
  '+ 2.1 for its insert, attempt row, update and commits. The other ~14 µs are the delivery path\'s own code (queue, attempt runner,',
  'recorder, one promise chain per delivery) and the checkpointer thread (the floor\'s runs never reach a checkpoint; the thread\'s',
  'share was 2–6 µs per delivery in runs at load 7–10, too noisy to pin down). Passing a statement\'s parameters to better-sqlite3 as',
  'arguments instead of one array (which the driver reads element by element through V8\'s property lookup) took 1.4 and 6.3 µs per',
  'delivery off the store\'s side in two runs (22.8 → 21.4, 28.9 → 22.6; medians of 10 rounds), ~0.6 µs per 11-parameter statement in',
  'isolated runs. Tried in isolated runs of the same statements and not kept: a multi-row INSERT … RETURNING for the fan-out (19.1–22.8 µs',
  'per delivery against 13.6–14.9 row by row), the record\'s update found by rowid as well as id (~0.6 µs less, within the noise), rows',
  'inserted with room for what the record adds (0.10 WAL pages per record instead of 0.13, ~0.5 µs, but values in a row before its',
  'attempt). Records in batches of 10 write 0.28 WAL pages per delivery, of 40 0.12; batches of 128 were no cheaper than 40.',
  'Measured on 2026-12-07 after migration 0008, which takes the per-subscription history index off SQLite\'s fan-out (side-by-side',
  'runs): the store\'s side of N=100 × K=100 (`bench/sqlite-store-ab.ts`, medians of 10 rounds, three runs at load 1.3–3.1) costs',
  '19.1, 19.2 and 24.1 µs of CPU per delivery against 25.2, 25.7 and 26.8 before, and writes 0.32 WAL pages per delivery instead',
  'of 0.70 (the index simply dropped: 17.4–19.6 µs, 0.22 pages; the floor 0.14). The difference to the dropped index is the',
  'history\'s catch-up, counted in those runs (it rides in the fan-out transaction once ~4,096 deliveries have no history entry):',
  'timed alone (load 2–2.5), 1.8–2.8 µs of CPU and 0.097 WAL pages per delivery it catches up at K=100, 0.9–1.3 µs and 0.02 pages',
  'at K=1. Every 1,024 deliveries it wrote 0.16 pages per delivery (store\'s side 23.6 µs, 0.50 pages), every 16,384 0.04 (20.9 and',
  '23.3 µs, 0.27 pages) but leaves readers a tail four times longer to scan; in a commit of its own it cost 20.7 µs against 19.2.',
  'End to end (`bench/sqlite-ab.ts`, fresh processes) the difference is below the noise of this machine: two runs of three rounds',
  '(load 2.5–5.0) gave client CPU per delivery 110.5 → 134.5 and 132.7 → 89.4 µs at K=100, 175.5 → 156.2 and 152.5 → 149.1 at',
  'N=20,000 × K=1, 168.7 → 168.2 and 170.1 → 137.3 at N=1,000; pooled with two more K=100 runs (5 and 8 rounds, load 1.2–3.2), the',
  'medians of 19 rounds are 121.0 before and 126.3 after (the index simply dropped: 125.5 over 13), with one build\'s rounds spread',
  'over 87–165 µs.',
  'Run-to-run noise on this shared 2-core machine is large: the ceiling moves between ~15k and ~45k requests/s within one run, and',
  'so does the receiver\'s CPU per request, which does the same work every time; the N=1,000 runs last 30–120 ms and move most.',
];

try {
  await main();
} finally {
  cleanup();
  clearTimeout(watchdog);
}
