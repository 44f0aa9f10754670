/**
 * Builds of resthooks side by side on one ORM case of bench/orm-insert.ts: each build's
 * bench/orm-insert-case.ts in a child of its own, on fresh files; each round runs every build's child once,
 * the order rotating, and within a child the plain and the hooked insert alternate which goes first. The
 * figure is the median over rounds of each build's hooked / plain ratio, wall and CPU, so that load and drift,
 * which hit a round's two sides alike, cancel; the load average is printed with every round. On a loaded machine
 * the least disturbed rounds say more than the median: the last column is the ratio of the two sides' 10th
 * percentiles of CPU time over the rounds.
 *
 * `npx tsx bench/orm-ab.ts before=/path/to/old/checkout after=. [label=path,NAME=value…]`
 * (AB_CASE, default `prisma-standalone-wrapped`; AB_ROUNDS, default 15). A `,NAME=value` after a path sets an
 * environment variable for that build's child only.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CaseChild, prismaClient } from './orm-insert.js';
import type { OrmCase, SideTime } from './orm-insert-case.js';
import { median } from './stats.js';

const CASE = (process.env.AB_CASE ?? 'prisma-standalone-wrapped') as OrmCase;
const ROUNDS = Number(process.env.AB_ROUNDS ?? 15);
const builds = process.argv.slice(2).map((arg) => {
  const [label, rest] = arg.split(/=(.*)/s);
  const [root, ...settings] = (rest ?? '').split(',');
  if (!label || !root) throw new Error(`expected label=path[,NAME=value…], got ${arg}`);
  return { label, root: resolve(root), env: Object.fromEntries(settings.map((setting) => setting.split(/=(.*)/s))) as Record<string, string> };
});
if (builds.length === 0) throw new Error('usage: orm-ab.ts before=/old/checkout after=.');

function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(fraction * (sorted.length - 1))]!;
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const dir = mkdtempSync(join(tmpdir(), 'resthooks-orm-ab-'));
const children: CaseChild[] = [];
try {
  const client = CASE.startsWith('prisma') ? await prismaClient(join(dir, 'prisma')) : undefined;
  console.log(`${CASE}, ${ROUNDS} rounds; load average at start: ${load()}`);
  for (const build of builds) {
    const child = new CaseChild(CASE, join(dir, build.label), client, build.root, { ...process.env, ...build.env });
    children.push(child);
    const ready = await child.next('ready');
    console.log(`${build.label}: ${ready.adapter}, ${ready.count} inserts per side and round`);
  }
  const ratios = builds.map(() => [] as Array<[wall: number, cpu: number]>);
  const sides = builds.map(() => [] as Array<[plain: SideTime, hooked: SideTime]>);
  for (let round = 0; round < ROUNDS; round++) {
    const line: string[] = [];
    for (let k = 0; k < builds.length; k++) {
      const index = (k + round) % builds.length;
      const { plain, hooked } = await children[index]!.next('round', { type: 'round', hookedFirst: round % 2 === 1 });
      ratios[index]!.push([hooked[0] / plain[0], hooked[1] / plain[1]]);
      sides[index]!.push([plain, hooked]);
      line.push(`${builds[index]!.label} ${(hooked[0] / plain[0]).toFixed(2)}/${(hooked[1] / plain[1]).toFixed(2)}`);
    }
    console.log(`round ${round + 1}: ${line.join(', ')} (load ${loadavg()[0]!.toFixed(2)})`);
  }
  for (const child of children) {
    const { error } = await child.next('finished', { type: 'finish' });
    if (error) throw new Error(error);
  }
  console.log(`\nmedians over ${ROUNDS} rounds (load average at end: ${load()})`);
  console.log('| build | plain µs (CPU) | with resthooks µs (CPU) | wall × | CPU × | CPU p10 × |');
  console.log('|---|--:|--:|--:|--:|--:|');
  builds.forEach((build, i) => {
    const at = (side: 0 | 1, which: 0 | 1) => median(sides[i]!.map((s) => s[side][which])).toFixed(1);
    const ratio = (which: 0 | 1) => median(ratios[i]!.map((r) => r[which])).toFixed(2);
    const p10 = (side: 0 | 1) => percentile(sides[i]!.map((s) => s[side][1]), 0.1);
    console.log(`| ${build.label} | ${at(0, 0)} (${at(0, 1)}) | ${at(1, 0)} (${at(1, 1)}) | ${ratio(0)} | ${ratio(1)} | ${(p10(1) / p10(0)).toFixed(2)} |`);
  });
} finally {
  for (const child of children) child.kill();
  rmSync(dir, { recursive: true, force: true });
}
