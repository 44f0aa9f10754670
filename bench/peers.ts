/**
 * `npm run bench:peers`: resthooks beside the original, django-rest-hooks (Debian's
 * python3-django-rest-hooks, installed here if missing), in one run against one shared receiver.
 * The same three scenarios as `npm run bench`: N model saves, each firing `book.added` to K hooks of
 * one owner. Each system runs in rounds that rotate which goes first; the original runs in a fresh
 * Python process per round (its threaded client, its defaults), resthooks on a fresh SQLite file.
 * Writes its table into docs/benchmarks.md between the `peers` markers. Timings are reported, never asserted.
 *
 *   npm run bench:peers [-- --rounds 3] [--scale 1]   (--scale 0.05: a smoke run with N 20 times smaller, written nowhere)
 */
import './production-env.js';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PEERS_END, PEERS_START } from './peers-section.js';
import { Receiver, type RunResult } from './receiver-process.js';
import { resthooksEndToEnd } from './scenario.js';
import { fmt, machine, rate } from './stats.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const DOC = join(HERE, '..', 'docs', 'benchmarks.md');
const PYTHON = '/usr/bin/python3'; // Debian's, where python3-django-rest-hooks is installed
const SCENARIOS = [
  { n: 1_000, k: 1 },
  { n: 100, k: 100 },
  { n: 20_000, k: 1 },
] as const;

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, scale: { type: 'string', default: '1' } } });
const ROUNDS = Number(args.rounds);
const SCALE = Number(args.scale);
const tmp = mkdtempSync(join(tmpdir(), 'resthooks-bench-peers-'));
let files = 0;

function ensureOriginal(): string {
  const probe = () => {
    try {
      return execFileSync(PYTHON, ['-c', 'import rest_hooks, django; print(django.get_version())'], { encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  };
  const found = probe();
  if (found) return found;
  console.log('installing python3-django-rest-hooks with apt-get …');
  execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-django-rest-hooks'], { stdio: 'inherit' });
  const installed = probe();
  if (!installed) throw new Error('python3-django-rest-hooks was installed, but Python cannot import rest_hooks and django');
  return installed;
}

/** One run of the original in a fresh Python process: from its first save to the receiver's last receipt. */
async function originalEndToEnd(rx: Receiver, n: number, k: number): Promise<RunResult> {
  const total = n * k;
  const reached = await rx.expect(total, 600_000);
  const child = spawn(PYTHON, [join(HERE, 'peers', 'run_django_rest_hooks.py'), join(tmp, `django-${++files}.db`), `http://127.0.0.1:${rx.port}`, String(n), String(k)], {
    cwd: join(HERE, 'peers'),
    env: { ...process.env, PYTHONPATH: join(HERE, 'peers') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`django-rest-hooks run exited ${code}: ${output}`);
  const lines = output.trim().split('\n').map((line) => JSON.parse(line) as { start?: number; triggerEnd?: number; cpuMs?: number });
  const start = lines.find((l) => l.start !== undefined)!.start!;
  const triggerEnd = lines.find((l) => l.triggerEnd !== undefined)!.triggerEnd!;
  const cpuMs = lines.find((l) => l.cpuMs !== undefined)!.cpuMs!;
  const end = await reached();
  return { deliveries: total, ms: end.at - start, triggerMs: triggerEnd - start, cpuUs: { client: (cpuMs * 1000) / total, receiver: end.cpuUs / total } };
}

interface Row {
  n: number;
  k: number;
  ours: RunResult[];
  original: RunResult[];
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const started = Date.now();
  const load = loadavg()[0]!;
  const django = ensureOriginal();
  const rx = await Receiver.start();
  try {
    console.log('warm-up …');
    await resthooksEndToEnd(rx, { dir: tmp, n: 2_000, k: 1 });
    await originalEndToEnd(rx, 100, 1);
    const rows: Row[] = SCENARIOS.map(({ n, k }) => ({ n: Math.max(1, Math.round(n * SCALE)), k, ours: [], original: [] }));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const row of rows) {
        const runs = [
          async () => row.ours.push(await resthooksEndToEnd(rx, { dir: tmp, n: row.n, k: row.k })),
          async () => row.original.push(await originalEndToEnd(rx, row.n, row.k)),
        ];
        for (const run of round % 2 ? runs : runs.reverse()) await run();
        console.log(
          `  [${((Date.now() - started) / 1000).toFixed(0)} s] round ${round} N=${row.n}×K=${row.k}: resthooks ${fmt(rate(row.ours.at(-1)!))}/s, ` +
            `django-rest-hooks ${fmt(rate(row.original.at(-1)!))}/s`,
        );
      }
    }
    if (SCALE === 1) {
      writeSection(rows, { django, load: [load, loadavg()[0]!], runMs: Date.now() - started });
      console.log(`wrote the peers section of ${DOC}`);
    } else console.log(`--scale ${SCALE}: a smoke run, nothing written`);
  } finally {
    rx.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

function writeSection(rows: readonly Row[], run: { django: string; load: [number, number]; runMs: number }): void {
  const { cpu, cores } = machine();
  const section = [
    PEERS_START,
    '## Beside the original: django-rest-hooks',
    '',
    `- **Machine:** ${cpu}, ${cores} cores, Node ${process.version}; django-rest-hooks 1.6.0 (Debian's python3-django-rest-hooks) on Django ${run.django}, Python 3 from Debian`,
    '- **Command:** `npm run bench:peers`',
    `- **Date:** ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} (run took ${(run.runMs / 1000).toFixed(0)} s)`,
    `- **Load:** 1-minute load average ${run.load[0].toFixed(1)} at the start, ${run.load[1].toFixed(1)} at the end.`,
    '',
    'Both systems save N books through their ORM, each save firing `book.added` to K hooks of one owner, against the same',
    'receiver process; time runs from the first save to the receiver\'s receipt of the last delivery. The original runs with its',
    'defaults (the threaded client, the default serializer, SQLite through Django) in a fresh Python process per round; resthooks',
    `as in \`npm run bench\` (a fresh SQLite file, concurrency 64, signed). ${ROUNDS} rounds, alternating which goes first; medians.`,
    '',
    '| scenario | deliveries | resthooks /s | django-rest-hooks /s | resthooks / original | resthooks client CPU µs | original client CPU µs |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const ours = median(r.ours.map(rate));
      const original = median(r.original.map(rate));
      return `| N=${fmt(r.n)} × K=${r.k} | ${fmt(r.n * r.k)} | ${fmt(ours)} | ${fmt(original)} | ${(ours / original).toFixed(1)}× | ${median(r.ours.map((x) => x.cpuUs.client)).toFixed(0)} | ${median(r.original.map((x) => x.cpuUs.client)).toFixed(0)} |`;
    }),
    PEERS_END,
  ].join('\n');
  const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n';
  const at = doc.indexOf(PEERS_START);
  const next = at >= 0 ? doc.slice(0, at) + section + doc.slice(doc.indexOf(PEERS_END) + PEERS_END.length) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOC, next);
}

await main();
