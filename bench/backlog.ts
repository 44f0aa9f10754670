/**
 * A backlog of 1,000,000 pending deliveries (1,000 events × 1,000 subscriptions), and a process started on
 * it as after a restart: the time from `hooks.start()` to the receiver's first request, and the peak RSS of
 * that process while it delivers for a fixed window (it must never load the backlog into memory). Beside
 * it, the same process on a backlog of 200,000: what a restart and delivering at that rate cost anyway.
 *
 * The backlog is built fast but in the store's own shape: subscriptions and events through the API and
 * `hooks.model()` (real rows), the events then marked fanned out as the fan-out marks them, and one delivery
 * row per (event, subscription) made by the store's own `newDeliveryRow` and inserted with a prepared
 * statement in large transactions, rather than by a million fan-outs.
 * Alone: npm run bench -- --only backlog
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { build } from 'esbuild';
import { createHooks, sqliteStore } from '../src/index.js';
import { newDeliveryRow } from '../src/store/rows.js';
import type { Receiver } from './receiver-process.js';
import { book, now } from './scenario.js';
import type { Scenario, ScenarioContext, ScenarioReport } from './scenario-report.js';
import { fmt } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD_SOURCE = join(ROOT, 'bench', 'backlog-child.ts');
// Inside the project, so that the bundle's bare imports (better-sqlite3, undici, kysely) resolve from its node_modules.
const CHILD = join(ROOT, 'node_modules', '.cache', 'resthooks-bench', 'backlog-child.mjs');
export const BACKLOG_RSS_TARGET_MB = 200;
const INSERTS_PER_TRANSACTION = 50_000;

export interface BacklogShape {
  readonly events: number;
  readonly subscriptions: number;
}

export interface BacklogRun {
  readonly pending: number;
  readonly buildMs: number;
  readonly fileMb: number;
  /** From `hooks.start()` in the restarted process to the receiver's first request. */
  readonly firstAfterStartMs: number;
  /** From spawning the process (module loading included) to the receiver's first request. */
  readonly firstAfterSpawnMs: number;
  readonly drainMs: number;
  readonly delivered: number;
  readonly rssMaxMb: number;
  readonly rssAtStartMb: number;
  readonly heapMaxMb: number;
  /** Heap in use after a full GC at the end of the window: what the process keeps. */
  readonly heapAfterGcMb: number;
  /** The sample with the highest RSS: V8's heap (committed and in use) and memory outside it, MB. */
  readonly atPeakMb: { readonly heapTotal: number; readonly heapUsed: number; readonly external: number; readonly arrayBuffers: number };
}

const mb = (bytes: number) => bytes / 2 ** 20;

/** Writes `events × subscriptions` pending deliveries into a new store at `file`, all due now. */
export async function buildBacklog(file: string, port: number, { events, subscriptions }: BacklogShape): Promise<number> {
  const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(new Database(file)), allowPrivateTargets: true, delivery: { pollInterval: 3_600_000 } });
  await hooks.start(); // migrates
  await hooks.stop(); // nothing is fanned out or sent while the backlog is built
  for (let i = 0; i < subscriptions; i++) await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `http://127.0.0.1:${port}/hook/${i}` });
  for (let i = 0; i < events; i++) {
    const result = await hooks.model('Book', 'created', book(i));
    if (result.status !== 'queued') throw new Error(`hooks.model() returned ${JSON.stringify(result)}`);
  }
  await hooks.close();

  const db = new Database(file);
  try {
    db.pragma('journal_mode = wal');
    db.pragma('synchronous = normal');
    // The fresh events (migration 0006) moved into resthooks_events as the fan-out would, then marked done below.
    const fresh = 'id, name, model, action, owner, all_owners, data, body, created_at';
    db.transaction(() => {
      db.exec(`insert into resthooks_events (${fresh}, status) select ${fresh}, 'pending' from resthooks_outbox order by seq`);
      db.exec('delete from resthooks_outbox');
    })();
    const eventIds = (db.prepare("select id from resthooks_events where status = 'pending' order by id").all() as Array<{ id: string }>).map((r) => r.id);
    const subscriptionIds = (db.prepare('select id from resthooks_subscriptions order by id').all() as Array<{ id: string }>).map((r) => r.id);
    if (eventIds.length !== events || subscriptionIds.length !== subscriptions) throw new Error(`backlog: ${eventIds.length} events and ${subscriptionIds.length} subscriptions written`);
    const columns = Object.keys(newDeliveryRow('', '', 0));
    const insert = db.prepare(`insert into resthooks_deliveries (${columns.join(', ')}) values (${columns.map((c) => `@${c}`).join(', ')})`);
    const markDone = db.prepare("update resthooks_events set status = 'done' where id = ? and status = 'pending'");
    const insertMany = db.transaction((rows: ReturnType<typeof newDeliveryRow>[]) => {
      for (const row of rows) insert.run(row);
    });
    const at = Date.now();
    let batch: ReturnType<typeof newDeliveryRow>[] = [];
    for (const eventId of eventIds) {
      for (const subscriptionId of subscriptionIds) {
        batch.push(newDeliveryRow(eventId, subscriptionId, at));
        if (batch.length === INSERTS_PER_TRANSACTION) {
          insertMany(batch);
          batch = [];
        }
      }
      markDone.run(eventId);
    }
    insertMany(batch);
    // As after a clean shutdown: the WAL folded into the database file.
    db.pragma('wal_checkpoint(TRUNCATE)');
    return (db.prepare("select count(*) as n from resthooks_deliveries where status = 'pending'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * The restarted process runs compiled JavaScript, as an app does: bench/backlog-child.ts and the sources it
 * imports bundled by esbuild (packages left as imports), not the sources under a TypeScript loader, whose
 * compiler and caches would be counted in the RSS the scenario measures.
 */
let compiledChild: Promise<string> | undefined;
function compileChild(): Promise<string> {
  mkdirSync(join(CHILD, '..'), { recursive: true });
  compiledChild ??= build({ entryPoints: [CHILD_SOURCE], outfile: CHILD, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' }).then(() => CHILD);
  return compiledChild;
}

/** Starts a process on the store at `file` (bench/backlog-child.ts, compiled), lets it deliver for `drainMs`, and stops it. */
export async function restartOn(rx: Receiver, file: string, drainMs: number): Promise<Omit<BacklogRun, 'pending' | 'buildMs' | 'fileMb'>> {
  const script = await compileChild();
  const first = await rx.expect(1, 120_000);
  const spawnedAt = now();
  const child = spawn(process.execPath, ['--expose-gc', script, file], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const started = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { type: string; at: number }) => (m.type === 'started' ? resolve(m.at) : reject(new Error(`backlog child: ${JSON.stringify(m)}`))));
      void exited.then((code) => reject(new Error(`backlog child exited (${code}) before it started`)));
    });
    const firstAt = (await first()).at;
    await new Promise((resolve) => setTimeout(resolve, drainMs));
    const stopped = new Promise<{ rssMax: number; heapMax: number; rssAtStart: number; heapAfterGc: number; samples: number; atPeak: NodeJS.MemoryUsage }>((resolve, reject) => {
      child.once('message', resolve);
      void exited.then((code) => reject(new Error(`backlog child exited (${code}) before it reported`)));
    });
    child.send({ type: 'stop' });
    const report = await stopped;
    if (report.samples < 2) throw new Error('backlog child: too few RSS samples');
    const db = new Database(file, { readonly: true });
    const states = db.prepare('select status, count(*) as n from resthooks_deliveries group by status').all() as Array<{ status: string; n: number }>;
    db.close();
    const delivered = states.find((s) => s.status === 'delivered')?.n ?? 0;
    const other = states.filter((s) => s.status !== 'delivered' && s.status !== 'pending');
    if (delivered === 0 || other.some((s) => s.n > 0)) throw new Error(`backlog: unexpected delivery states after the drain: ${JSON.stringify(states)}`);
    return {
      firstAfterStartMs: firstAt - started,
      firstAfterSpawnMs: firstAt - spawnedAt,
      drainMs,
      delivered,
      rssMaxMb: mb(report.rssMax),
      rssAtStartMb: mb(report.rssAtStart),
      heapMaxMb: mb(report.heapMax),
      heapAfterGcMb: mb(report.heapAfterGc),
      atPeakMb: { heapTotal: mb(report.atPeak.heapTotal), heapUsed: mb(report.atPeak.heapUsed), external: mb(report.atPeak.external), arrayBuffers: mb(report.atPeak.arrayBuffers) },
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
}

/** The RSS of a node process that runs `script` with `flags`, in bytes, as it reports it. */
function processRss(what: string, flags: readonly string[], script: string): number {
  const out = spawnSync(process.execPath, [...flags, '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`backlog: measuring ${what}'s RSS failed: ${out.stderr}`);
  return Number(out.stdout);
}

const REPORT_RSS = 'process.stdout.write(String(process.memoryUsage.rss()))';

/**
 * The RSS a worker thread adds to a process, as the SQLite store's checkpointer thread does (a V8 isolate of
 * its own): a script that starts an idle thread against one that does not, the median of three pairs.
 */
export function threadOverheadMb(): number {
  const startThread = "new (require('node:worker_threads').Worker)('setInterval(() => {}, 1000)', { eval: true }).unref();";
  const rss = (withThread: boolean) => processRss('a thread', [], `${withThread ? startThread : ''} setTimeout(() => ${REPORT_RSS}, 500)`);
  const pairs = [0, 1, 2].map(() => rss(true) - rss(false)).sort((a, b) => a - b);
  return mb(pairs[1]!);
}

export async function measureBacklog(context: ScenarioContext, shape: BacklogShape, drainMs: number, name: string): Promise<BacklogRun> {
  const file = join(context.dir, `backlog-${name}.db`);
  const t0 = Date.now();
  const pending = await buildBacklog(file, context.rx.port, shape);
  const buildMs = Date.now() - t0;
  const fileMb = mb(statSync(file).size);
  context.log(`  backlog ${name}: ${fmt(pending)} pending deliveries built in ${fmt(buildMs)} ms (${fmt(fileMb)} MB)`);
  const run = await restartOn(context.rx, file, drainMs);
  context.log(`  backlog ${name}: first delivery ${fmt(run.firstAfterStartMs, 1)} ms after start(), RSS max ${fmt(run.rssMaxMb)} MB, ${fmt(run.delivered)} delivered in ${fmt(drainMs)} ms`);
  return { pending, buildMs, fileMb, ...run };
}

export function backlogReport(big: BacklogRun, small: BacklogRun, threadMb?: number): ScenarioReport {
  const appRss = big.rssMaxMb;
  const met = appRss <= BACKLOG_RSS_TARGET_MB;
  const thread =
    threadMb === undefined
      ? ''
      : ` Of the process's fixed cost, ${fmt(threadMb)} MB is the SQLite store's checkpointer thread (a worker thread's isolate, measured in this run: an idle thread against none), which keeps WAL checkpoints off the delivering thread (see the latency section); \`sqliteStore(db, { checkpointer: false })\` gives it up.`;
  const verdict =
    `backlog of ${fmt(big.pending)}: peak RSS ${fmt(appRss)} MB while delivering; ` +
    `target ≤ ${BACKLOG_RSS_TARGET_MB} MB: ${met ? 'met' : 'missed'}. Heap in use after a full GC at the end: ${fmt(big.heapAfterGcMb)} MB, against ${fmt(small.heapAfterGcMb)} MB ` +
    `with a backlog of ${fmt(small.pending)}${met ? '.' : ': the backlog is not held in memory; the peak is garbage not yet collected and the process\'s fixed cost.'} ` +
    `At the peak sample V8's heap held ${fmt(big.atPeakMb.heapTotal)} MB (${fmt(big.atPeakMb.heapUsed)} MB of it in use, live or garbage) and the rest of the RSS, about ` +
    `${fmt(big.rssMaxMb - big.atPeakMb.heapTotal)} MB, is the node binary's code, the C heap (SQLite's page cache, the drivers) and the threads' stacks and isolates.${thread}`;
  const row = (r: BacklogRun) =>
    `| ${fmt(r.pending)} | ${fmt(r.fileMb)} | ${fmt(r.buildMs / 1000, 1)} | ${fmt(r.firstAfterStartMs, 1)} | ${fmt(r.firstAfterSpawnMs)} | ${fmt(r.rssAtStartMb)} | ${fmt(r.rssMaxMb)} | ${fmt(r.heapMaxMb)} | ${fmt(r.heapAfterGcMb)} | ${fmt(r.delivered)} in ${fmt(r.drainMs / 1000)} s |`;
  return {
    name: 'backlog',
    verdicts: [verdict],
    lines: [
      `## A backlog of ${fmt(big.pending)} pending deliveries: restart and drain`,
      '',
      'A store holding that many pending deliveries, all due (1,000 events × 1,000 subscriptions, built as bench/backlog.ts says: real',
      'subscriptions and events, then delivery rows made by the store\'s own `newDeliveryRow`, the WAL checkpointed as after a clean shutdown),',
      'and a fresh process started on it (bench/backlog-child.ts, the bench\'s delivery settings): time from its `hooks.start()` to the',
      'receiver\'s first request, the same from spawning the process (loading the modules included), and its RSS and heap, sampled every 50 ms',
      'while it delivers for a fixed window, and the heap still in use after a full GC at its end. Beside it the same on a smaller backlog that',
      'lasts the window too: what a restart and delivering at that rate cost anyway. The process runs compiled JavaScript, as an app does',
      '(bench/backlog-child.ts and the sources it imports bundled by esbuild, packages left as imports), under plain `node --expose-gc`.',
      '',
      '| pending deliveries | file MB | build s | first delivery after `start()` ms | after spawn ms | RSS at start MB | peak RSS MB | peak heap MB | heap after GC MB | delivered |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      row(big),
      row(small),
      '',
      verdict,
    ],
  };
}

export const backlogScenario: Scenario = {
  name: 'backlog',
  async run(context) {
    const drainMs = 15_000;
    // Large enough to last the window at this machine's rate, so both deliver all the time.
    const small = await measureBacklog(context, { events: 200, subscriptions: 1_000 }, drainMs, 'small');
    const big = await measureBacklog(context, { events: 1_000, subscriptions: 1_000 }, drainMs, 'large');
    return backlogReport(big, small, threadOverheadMb());
  },
};
