/**
 * `npm run bench`: the hot path (one `hooks.model()` call) and end-to-end delivery throughput
 * against a bare-undici ceiling, written to docs/benchmarks.md. Bounded in time, cleans up after
 * itself (temp dir, child process). Timings are reported, never asserted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { createHooks, sqliteStore, signatureHeaders, generateSecret, type Hooks } from '../src/index.js';
import { drive, Receiver, type Reached } from './receiver-process.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const DOC = join(HERE, '..', 'docs', 'benchmarks.md');
const CONCURRENCY = 64;
const HARD_LIMIT_MS = 170_000; // the whole run must end well inside 3 minutes
const HOT_WARMUP = 2_000;
const HOT_CALLS = 20_000;
// With the dispatcher running, every call also makes K deliveries that the loop lets it send between
// calls: fewer calls (and a wall-clock cap), and the backlog is not drained.
const HOT_RUNNING = { warmup: 500, calls: { 1: 5_000, 100: 1_000 } as Record<number, number>, capMs: 10_000 };
const E2E_ROUNDS = 3; // each scenario's resthooks and ceiling runs alternate; the best of each is reported
const E2E_SCENARIOS = [
  { n: 1_000, k: 1 },
  { n: 100, k: 100 },
  { n: 20_000, k: 1 },
] as const;

const now = () => performance.timeOrigin + performance.now(); // comparable across processes on one machine
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

function book(i: number) {
  return {
    id: i,
    title: 'The Fellowship of the Ring',
    author: 'J. R. R. Tolkien',
    isbn: '978-0-261-10235-4',
    pages: 423,
    ownerId: 'alice',
    createdAt: new Date(1_700_000_000_000 + i),
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

let dbCount = 0;
async function newHooks(port: number, k: number): Promise<{ hooks: Hooks; file: string }> {
  const file = join(tmp, `hooks-${++dbCount}.db`);
  const hooks = createHooks({
    events: { 'book.added': 'Book.created' },
    store: sqliteStore(new Database(file)),
    allowPrivateTargets: true,
    delivery: { concurrency: CONCURRENCY, connectionsPerOrigin: CONCURRENCY },
  });
  for (let i = 0; i < k; i++) {
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `http://127.0.0.1:${port}/hook/${i}` });
  }
  return { hooks, file };
}

const rate = (r: E2eResult) => (r.deliveries / r.ms) * 1000;
const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

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

interface E2eResult {
  deliveries: number;
  ms: number;
  triggerMs?: number;
  /** CPU time (user + system) of this process and of the receiver, per delivery, over the run. */
  cpuUs: { client: number; receiver: number };
}

const cpuPerDelivery = (clientStart: NodeJS.CpuUsage, reached: Reached, deliveries: number) => {
  const client = process.cpuUsage(clientStart);
  return { client: (client.user + client.system) / deliveries, receiver: reached.cpuUs / deliveries };
};

async function resthooksEndToEnd(rx: Receiver, n: number, k: number): Promise<E2eResult> {
  const { hooks, file } = await newHooks(rx.port, k);
  await hooks.start();
  const total = n * k;
  const reached = await rx.expect(total, 120_000);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const result = await hooks.model('Book', 'created', book(i));
    if (result.status !== 'queued') throw new Error(`hooks.model() returned ${JSON.stringify(result)}`);
  }
  const triggered = now();
  const end = await reached();
  const cpuUs = cpuPerDelivery(cpu0, end, total);
  await hooks.idle({ timeout: '30s' });
  await hooks.close();
  // Every delivery must have been delivered exactly once (one attempt), or the number means nothing.
  const db = new Database(file, { readonly: true });
  const rows = db.prepare('select status, attempts, count(*) as n from resthooks_deliveries group by status, attempts').all() as Array<{ status: string; attempts: number; n: number }>;
  db.close();
  if (rows.length !== 1 || rows[0]!.status !== 'delivered' || rows[0]!.attempts !== 1 || rows[0]!.n !== total) {
    throw new Error(`unexpected delivery states after the run: ${JSON.stringify(rows)}`);
  }
  return { deliveries: total, ms: end.at - t0, triggerMs: triggered - t0, cpuUs };
}

/** The ceiling: a bare undici Pool, 64 requests in flight, same bodies and headers, same receiver. */
async function ceilingEndToEnd(rx: Receiver, total: number, bodyLength: number): Promise<E2eResult> {
  const origin = `http://127.0.0.1:${rx.port}`;
  const pool = new Pool(origin, { connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  const hook = { id: 'sub_0000000000000000000000000a', event: 'book.added', target: `${origin}/hook/0` };
  const prefix = `{"hook":${JSON.stringify(hook)},"data":`;
  const data = JSON.stringify(book(0));
  const body = (prefix + data + '}').padEnd(bodyLength, ' ');
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'resthooks',
    ...signatureHeaders('dlv_0000000000000000000000000a', Math.floor(Date.now() / 1000), body, [generateSecret()]),
  };
  const reached = await rx.expect(total, 120_000);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await drive(CONCURRENCY, total, async () => {
    const response = await pool.request({ method: 'POST', path: '/hook/0', headers, body });
    await response.body.text();
    if (response.statusCode !== 200) throw new Error(`ceiling: HTTP ${response.statusCode}`);
  });
  const end = await reached();
  const cpuUs = cpuPerDelivery(cpu0, end, total);
  await pool.close();
  return { deliveries: total, ms: end.at - t0, cpuUs };
}

// ── the run ───────────────────────────────────────────────────────────────────────────────────

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return { cpu: model, cores: cpus().length, memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`, node: process.version };
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  receiver = await Receiver.start();
  const rx = receiver;
  console.log(`receiver: pid ${rx.child.pid}, port ${rx.port}`);

  // The body the resthooks runs send (envelope + the same book), so the ceiling sends the same size.
  const sampleHook = { id: 'sub_0000000000000000000000000a', event: 'book.added', target: `http://127.0.0.1:${rx.port}/hook/0` };
  const bodyLength = `{"hook":${JSON.stringify(sampleHook)},"data":${JSON.stringify(book(10_000))}}`.length;

  console.log('warm-up (JIT, sockets) …');
  await resthooksEndToEnd(rx, 2_000, 1);
  await ceilingEndToEnd(rx, 2_000, bodyLength);

  console.log('hot path …');
  const hot: HotRow[] = [];
  for (const dispatcher of ['stopped', 'running'] as const) {
    for (const k of [1, 100]) {
      const row = await hotPath(rx.port, k, dispatcher);
      hot.push(row);
      console.log(`  [${((Date.now() - started) / 1000).toFixed(1)} s] K=${k} dispatcher ${dispatcher}: median ${row.median.toFixed(1)} µs, p99 ${row.p99.toFixed(1)} µs`);
    }
  }

  console.log('end to end …');
  const e2e: Array<{ n: number; k: number; ours: E2eResult; ceiling: E2eResult }> = [];
  const best = (a: E2eResult | undefined, b: E2eResult) => (a === undefined || b.ms < a.ms ? b : a);
  for (let round = 1; round <= E2E_ROUNDS; round++) {
    for (const [index, { n, k }] of E2E_SCENARIOS.entries()) {
      // Alternate which goes first, so neither always runs on a warmer (or busier) machine.
      const ceilingFirst = round % 2 === 1;
      const ceiling = ceilingFirst ? await ceilingEndToEnd(rx, n * k, bodyLength) : undefined;
      const ours = await resthooksEndToEnd(rx, n, k);
      const ceilingResult = ceiling ?? (await ceilingEndToEnd(rx, n * k, bodyLength));
      const row = (e2e[index] ??= { n, k, ours, ceiling: ceilingResult });
      row.ours = best(row.ours, ours);
      row.ceiling = best(row.ceiling, ceilingResult);
      console.log(
        `  [${((Date.now() - started) / 1000).toFixed(1)} s] round ${round} N=${n}×K=${k}: resthooks ${fmt(rate(ours))}/s (triggers ${fmt(ours.triggerMs!)} ms of ${fmt(ours.ms)} ms), ` +
          `ceiling ${fmt(rate(ceilingResult))}/s, ratio ${((rate(ours) / rate(ceilingResult)) * 100).toFixed(0)}%; ` +
          `CPU µs per delivery: resthooks ${ours.cpuUs.client.toFixed(1)} (receiver ${ours.cpuUs.receiver.toFixed(1)}), ceiling ${ceilingResult.cpuUs.client.toFixed(1)} (receiver ${ceilingResult.cpuUs.receiver.toFixed(1)})`,
      );
    }
  }

  writeDoc({ ...machine(), load: [loadAtStart, loadavg()[0]!] }, hot, e2e, Date.now() - started);
  console.log(`wrote ${DOC} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function writeDoc(
  m: ReturnType<typeof machine> & { load: [number, number] },
  hot: readonly HotRow[],
  e2e: ReadonlyArray<{ n: number; k: number; ours: E2eResult; ceiling: E2eResult }>,
  runMs: number,
): void {
  const hotMet = hot.filter((r) => r.dispatcher === 'stopped').every((r) => r.median <= 50);
  const e2eMet = e2e.every((r) => rate(r.ours) / rate(r.ceiling) >= 0.6);
  const lines = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.ts); edits here are overwritten. -->',
    '',
    'Two numbers matter for a webhooks library: what a model save pays to record an event (the **hot path**,',
    'which must not grow with the number of subscribers), and how fast recorded events reach receivers',
    '(**end to end**), compared with the fastest this machine can POST the same bodies with undici alone.',
    'Embedded engine: better-sqlite3 file store (WAL, `synchronous = normal`) in a temp dir, in-process dispatcher.',
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
    'For comparison, django-rest-hooks (the seed) measures 4.6 ms per save with K=1 and 25 ms with K=100 on this',
    'machine: its save looks the hooks up and starts every delivery itself, so it grows with K.',
    '',
    '## End to end: deliveries per second to a local keep-alive receiver',
    '',
    `Time runs from the first trigger call to the receiver's receipt of the last delivery (receiver clock).`,
    'Triggers are fired as fast as possible, awaited one after the other, with the dispatcher started. Each awaited call',
    'settles without an event-loop turn (better-sqlite3 is synchronous), so the dispatcher only starts once the last trigger has',
    'returned: the time is the trigger loop (shown separately) plus the delivery of the backlog. Every delivery is checked afterwards',
    `to be \`delivered\` after exactly one attempt. resthooks: concurrency ${CONCURRENCY}, ${CONCURRENCY} connections per origin,`,
    `signed (Standard Webhooks), SSRF-guarded connector. Ceiling: a bare undici \`Pool\` (${CONCURRENCY} connections) with ${CONCURRENCY}`,
    'requests in flight, POSTing a body of the same size with the same headers (precomputed) to the same receiver.',
    `Each scenario runs ${E2E_ROUNDS} times, alternating which of the two goes first; the best of each is shown. Fresh SQLite file per run.`,
    '',
    '| scenario | deliveries | resthooks /s | (of which triggers, ms) | ceiling /s | resthooks / ceiling | target ≥ 60% |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...e2e.map((r) => {
      const ratio = rate(r.ours) / rate(r.ceiling);
      return `| N=${fmt(r.n)} × K=${r.k} | ${fmt(r.ours.deliveries)} | ${fmt(rate(r.ours))} | ${fmt(r.ours.triggerMs!)} of ${fmt(r.ours.ms)} | ${fmt(rate(r.ceiling))} | ${(ratio * 100).toFixed(0)}% | ${ratio >= 0.6 ? 'met' : 'missed'} |`;
    }),
    '',
    'CPU time of each process over the same runs (user + system, per delivery): the client is this process (resthooks, or the',
    'bare Pool), the receiver is the other process. The client is the one that saturates its core; the receiver has room to spare.',
    '',
    '| scenario | resthooks client µs | ceiling client µs | resthooks / ceiling client CPU | receiver µs (resthooks run) | receiver µs (ceiling run) |',
    '|---|---:|---:|---:|---:|---:|',
    ...e2e.map(
      (r) =>
        `| N=${fmt(r.n)} × K=${r.k} | ${r.ours.cpuUs.client.toFixed(1)} | ${r.ceiling.cpuUs.client.toFixed(1)} | ${(r.ours.cpuUs.client / r.ceiling.cpuUs.client).toFixed(1)}× | ${r.ours.cpuUs.receiver.toFixed(1)} | ${r.ceiling.cpuUs.receiver.toFixed(1)} |`,
    ),
    '',
    `Targets: hot path ${hotMet ? 'met' : 'missed'}; end to end ${e2eMet ? 'met' : 'missed'}.`,
    '',
    '## What bounds these numbers',
    '',
    ...BOUNDS,
    '',
  ];
  writeFileSync(DOC, lines.join('\n'));
}

// Written from profiles of this bench (node --cpu-prof, statement timers, and isolated Sender/undici and
// better-sqlite3 micro-runs on this machine); update when the profile changes.
const BOUNDS = [
  'Each `hooks.model()` call is one INSERT in autocommit on the WAL file: the commit appends the row and its three outbox index',
  'entries, 4–5 pages, to the WAL (a bare better-sqlite3 insert into the same table takes ~20 µs median, ~40 µs mean here), so',
  'it does not depend on K. Its p99 is mostly the WAL checkpoint paid by whichever commit crosses the threshold (10,000 pages).',
  'End to end, the client process is the one that saturates its core (CPU table above); the receiver spends 20–30 µs per',
  'request of the other core and leaves the rest idle. The HTTP attempt itself (`Sender.send` on undici `dispatch`) costs the same',
  'CPU as the ceiling\'s bare `pool.request` (bench/sender-bench.ts). What the ceiling does not pay, per delivery: its durable',
  'record, ~15 µs of SQLite (statement timers, N=100 × K=100: the fan-out insert with its index entries ~7 µs; the attempt insert',
  'and the delivery update ~8 µs, half of what they cost before attempts were keyed by delivery), signing ~2 µs, the envelope,',
  'the claim objects and GC. For K=1 each delivery also pays for its own event: the trigger\'s commit (~40 µs mean inside the',
  'loop, which holds the thread, so the dispatcher only starts once it returns) and marking the event fanned out.',
  'So 60% of the ceiling means at most ~1.7× the ceiling client\'s CPU per delivery. For K=1 the trigger commit alone uses most of',
  'that on the one thread that also sends; for K=100 it leaves ~10 µs for every durable write.',
  'Run-to-run noise on this shared 2-core machine is large: the ceiling itself moves between ~15k and ~40k requests/s within one',
  'run, and so does the receiver\'s CPU per request, which does the same work every time.',
];

try {
  await main();
} finally {
  cleanup();
  clearTimeout(watchdog);
}
