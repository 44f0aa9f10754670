/**
 * Side-by-side A/B of the BullMQ worker's CPU per delivery against the in-process engine's, on the
 * PostgreSQL scenarios of bench/postgres-scenarios.ts (only those two runs: no floor, no ceiling, no
 * second worker). One PostgreSQL (fsync on) and one Redis serve every run; each run is a separate
 * process started from the source tree under test, so two trees (two commits) alternate:
 *
 *   npx tsx bench/bullmq-ab.ts <tree A> <tree B> [rounds]
 *
 * Each tree needs this file at bench/bullmq-ab.ts (copy it into an older checkout). Prints one line per
 * run (and, for BullMQ, Redis's calls per delivery: `lpush` counts the jobs added) and, at the end,
 * medians per tree and scenario. RESTHOOKS_BENCH_PG_SCENARIOS narrows the scenarios as in
 * postgres-scenarios.ts; RESTHOOKS_AB_WORKER_NODE_OPTIONS goes to the worker process only (a
 * `--require` that starts a CPU profile, say). RESTHOOKS_AB_WARMUP=<deliveries> warms both engines up
 * before their measured part with that many deliveries at the scenario's K, unmeasured: the in-process
 * run's process first runs the scenario that size (on a database of its own), the worker first delivers
 * them. Without it both start cold (and an older tree's copy of this file, which may not know it, does so anyway).
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createHooks, postgresStore } from '../src/index.js';
import { bullmqQueue } from '../src/queue/bullmq/index.js';
import { startCli, type CliProcess } from '../test/cli/cli-process.js';
import { createTestDatabase, startPostgres } from '../test/support/postgres.js';
import { startRedis } from '../test/support/redis.js';
import { Receiver } from './receiver-process.js';
import { CONCURRENCY, now, saveBooks } from './scenario.js';
import { checkDeliveredOnce, postmasterOf, processCpuUs, resthooksOnPostgres, SCENARIOS, warmUpWorkers } from './postgres-scenarios.js';
import { median } from './stats.js';

/** Deliveries each run first makes to warm its engine up, unmeasured (see the header). */
const WARM_UP = Number(process.env.RESTHOOKS_AB_WARMUP ?? 0);

interface Measured {
  readonly engine: 'in-process' | 'bullmq';
  readonly deliveries: number;
  readonly ms: number;
  /** In-process: this process's CPU per delivery; BullMQ: the worker process's. */
  readonly clientUs: number;
}

/** In-process: the bench's own run (bench/postgres-scenarios.ts); its client CPU is this process's. */
async function inProcess(rx: Receiver, url: string, n: number, k: number, warmUrl: string | undefined): Promise<Measured> {
  if (warmUrl) await resthooksOnPostgres(rx, warmUrl, Math.ceil(WARM_UP / k), k, await postmasterOf(warmUrl));
  const run = await resthooksOnPostgres(rx, url, n, k, await postmasterOf(url));
  return { engine: 'in-process', deliveries: run.deliveries, ms: run.ms, clientUs: run.cpuUs.client };
}

async function bullmq(rx: Receiver, url: string, redisUrl: string, n: number, k: number): Promise<Measured> {
  const queueName = `ab-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-ab-worker-'));
  const config = join(dir, 'worker.config.mjs');
  writeFileSync(config, `export default ${JSON.stringify({ events: {}, delivery: { concurrency: CONCURRENCY, connectionsPerOrigin: CONCURRENCY, ownerShare: 1 }, bullmq: { sharedLimits: true } })};\n`);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  const hooks = createHooks({
    events: { 'book.added': 'Book.created' },
    store: postgresStore(pool),
    queue: bullmqQueue({ connection: redisUrl, queueName, worker: false }),
    allowPrivateTargets: true,
    delivery: { concurrency: CONCURRENCY, connectionsPerOrigin: CONCURRENCY, ownerShare: 1 },
  });
  for (let i = 0; i < k; i++) await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `http://127.0.0.1:${rx.port}/hook/${i}` });
  await hooks.start();
  let cli: CliProcess | undefined;
  try {
    cli = startCli(['worker', '--db', url, '--redis', redisUrl, '--queue', queueName, '--allow-private-targets', '--concurrency', String(CONCURRENCY), '--shutdown-timeout', '2s', '--config', config], process.env.RESTHOOKS_AB_WORKER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.RESTHOOKS_AB_WORKER_NODE_OPTIONS } : {});
    await cli.waitFor(/Delivering jobs from/, 120_000);
    const warmups = WARM_UP > 0 ? await warmUpWorkers(rx, hooks, k, WARM_UP) : 0;
    const total = n * k;
    const reached = await rx.expect(total, 900_000);
    const stats0 = await commandStats(redisUrl);
    const worker0 = processCpuUs(cli.child.pid!);
    const t0 = now();
    await saveBooks(hooks, n);
    const end = await reached();
    const workerUs = (processCpuUs(cli.child.pid!) - worker0) / total;
    const stats1 = await commandStats(redisUrl);
    const calls = [...stats1].map(([command, count]) => `${command} ${((count - (stats0.get(command) ?? 0)) / total).toFixed(2)}`).filter((s) => !s.endsWith(' 0.00'));
    console.error(`  Redis calls per delivery (every client): ${calls.join(', ')}`);
    await hooks.idle({ timeout: '60s' });
    await checkDeliveredOnce(pool, warmups + total, 'the BullMQ run');
    return { engine: 'bullmq', deliveries: total, ms: end.at - t0, clientUs: workerUs };
  } finally {
    cli?.child.kill('SIGTERM');
    await cli?.exited;
    await hooks.close(); // ends the pool
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Redis's calls so far, by command. */
async function commandStats(url: string): Promise<Map<string, number>> {
  const client = new Redis(url);
  try {
    const text = await client.info('commandstats');
    return new Map([...text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  } finally {
    client.disconnect();
  }
}

/** One run in this process: `--child <engine> <n> <k> <db url> <redis url> [<warm-up db url>]`; prints its result as JSON. */
async function child([engine, n, k, url, redisUrl, warmUrl]: string[]): Promise<void> {
  const rx = await Receiver.start();
  try {
    const result = engine === 'bullmq' ? await bullmq(rx, url!, redisUrl!, Number(n), Number(k)) : await inProcess(rx, url!, Number(n), Number(k), warmUrl);
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    rx.close();
  }
}

function runChild(tree: string, args: readonly string[]): Promise<Measured> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(tree, 'bench/bullmq-ab.ts'), '--child', ...args], { cwd: tree, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    proc.once('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) done(JSON.parse(line.slice('RESULT '.length)) as Measured);
      else fail(new Error(`run in ${tree} ${args.join(' ')} exited ${String(code)}:\n${out}`));
    });
  });
}

async function main(trees: string[], rounds: number): Promise<void> {
  const server = await startPostgres({ fsync: true });
  const redis = await startRedis();
  const results = new Map<string, Measured[]>();
  const note = (tree: string, n: number, k: number, m: Measured) => {
    const key = `${tree}|${n}x${k}|${m.engine}`;
    results.set(key, [...(results.get(key) ?? []), m]);
  };
  try {
    const warm = (await createTestDatabase(server.url)).url;
    await runChild(trees[0]!, ['in-process', '1000', '1', warm, redis.url]);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? trees : [...trees].reverse();
      for (const { n, k } of SCENARIOS) {
        for (const tree of order) {
          for (const engine of ['in-process', 'bullmq'] as const) {
            const url = (await createTestDatabase(server.url)).url;
            const warmUrl = WARM_UP > 0 && engine === 'in-process' ? [(await createTestDatabase(server.url)).url] : [];
            const m = await runChild(tree, [engine, String(n), String(k), url, redis.url, ...warmUrl]);
            note(tree, n, k, m);
            console.log(`round ${round} ${tree} N=${n}×K=${k} ${engine}: ${m.clientUs.toFixed(1)} µs/delivery, ${((m.deliveries / m.ms) * 1000).toFixed(0)}/s (load ${loadavg()[0]!.toFixed(1)})`);
          }
        }
      }
    }
  } finally {
    await redis.stop();
    await server.stop();
  }
  console.log('\nmedians: tree, scenario, worker µs, in-process µs, ratio, BullMQ /s, in-process /s');
  for (const { n, k } of SCENARIOS) {
    for (const tree of trees) {
      const of = (engine: string) => results.get(`${tree}|${n}x${k}|${engine}`) ?? [];
      const us = (engine: string) => median(of(engine).map((m) => m.clientUs));
      const perSecond = (engine: string) => median(of(engine).map((m) => (m.deliveries / m.ms) * 1000));
      console.log(`${tree} N=${n}×K=${k}: worker ${us('bullmq').toFixed(0)} µs, in-process ${us('in-process').toFixed(0)} µs, ${(us('bullmq') / us('in-process')).toFixed(2)}×, ${perSecond('bullmq').toFixed(0)}/s vs ${perSecond('in-process').toFixed(0)}/s`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') await child(args.slice(1));
  else await main([resolve(args[0] ?? '.'), resolve(args[1] ?? '.')], Number(args[2] ?? 3));
}
