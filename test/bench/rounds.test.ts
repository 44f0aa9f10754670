/**
 * The benches that compare systems over rotating rounds report each figure as the median over rounds and
 * each ratio (and the target judged on it) as the median of the per-round ratios: neither each system's
 * best run nor a ratio of medians, both of which compare runs from different rounds.
 */
import { describe, expect, it } from 'vitest';
import { fanOutReport, type FanOutRound } from '../../bench/fanout-10k.js';
import { postgresSection, type PgRound, type PgRun } from '../../bench/postgres-scenarios.js';
import type { RunResult } from '../../bench/receiver-process.js';
import { median, medianOf, medianRatio, ratiosOf, spread } from '../../bench/stats.js';

const run = (deliveries: number, ms: number, client = 10): RunResult => ({ deliveries, ms, cpuUs: { client, receiver: 5 } });
const pgRun = (ms: number, serverUs: number, client: number): PgRun => ({ ...run(1_000, ms, client), serverUs });

/** The cells of the `nth` table row that starts with `start`. */
function cells(lines: readonly string[], start: string, nth = 0): string[] {
  const row = lines.filter((line) => line.startsWith(start))[nth];
  if (row === undefined) throw new Error(`no row ${nth} starting with ${start}`);
  return row.split(' | ').map((cell) => cell.replace(/^\| |\s*\|$/g, ''));
}

describe('bench/stats.ts', () => {
  const rounds = [
    { a: 100, b: 50 },
    { a: 120, b: 100 },
    { a: 200, b: 160 },
  ];

  it('takes the median of each figure, the two middle values averaged for an even count', () => {
    expect(medianOf(rounds, (r) => r.a)).toBe(120);
    expect(medianOf(rounds.slice(0, 2), (r) => r.a)).toBe(110);
    expect(median([3, 1, 2])).toBe(2);
  });

  it('takes the median of the per-round ratios, not the ratio of the medians', () => {
    expect(ratiosOf(rounds, (r) => r.a, (r) => r.b)).toEqual([2, 1.2, 1.25]);
    expect(medianRatio(rounds, (r) => r.a, (r) => r.b)).toBe(1.25);
    expect(medianOf(rounds, (r) => r.a) / medianOf(rounds, (r) => r.b)).toBe(1.2);
  });

  it('shows the spread of the rounds as low–high, or one value when they agree', () => {
    expect(spread([2, 1.2, 1.25], (x) => x.toFixed(2))).toBe('1.20–2.00');
    expect(spread([0.804, 0.801], (x) => x.toFixed(2))).toBe('0.80');
  });
});

describe('fan-out report', () => {
  // Per round resthooks / ceiling: 2.00, 1.20, 1.25. The best runs' ratio would be 100 / 50 = 2.00 (missed).
  const rounds: FanOutRound[] = [
    { ours: run(10_000, 100, 30), floor: run(10_000, 90, 20), ceiling: run(10_000, 50, 10) },
    { ours: run(10_000, 120, 40), floor: run(10_000, 110, 25), ceiling: run(10_000, 100, 12) },
    { ours: run(10_000, 200, 50), floor: run(10_000, 170, 30), ceiling: run(10_000, 160, 14) },
  ];

  it('reports medians over rounds and judges the median of the per-round ratios', () => {
    const report = fanOutReport({ subscriptions: 10_000, rounds });
    expect(cells(report.lines, '| resthooks |')).toEqual(['resthooks', '120', '83,333', '1.25×', '40.0', 'target ≤ 1.5×: met']);
    expect(cells(report.lines, '| durable floor |').slice(1, 5)).toEqual(['110', '90,909', '1.10×', '25.0']);
    expect(report.lines).toContain('resthooks / ceiling per round: 1.20×–2.00×.');
    expect(report.verdicts).toEqual(['fan-out to 10,000: 1.25× the ceiling, target ≤ 1.5×: met.']);
    expect(report.lines.join('\n')).toContain('3 rounds rotating which goes first; each figure is the median over rounds');
  });
});

describe('PostgreSQL section', () => {
  // resthooks / floor deliveries/s per round: 0.50, 1.20, 0.75 (median 75%: missed); the medians' ratio is
  // 1,000 / 833 = 120% and the best runs' 50%. Server CPU × floor per round 3, 1.5, 2 (median 2: met).
  // BullMQ 1 worker / in-process client CPU per round 2, 3, 1 (median 2: missed; the medians' ratio is 1).
  const rounds: PgRound[] = [
    { ours: pgRun(1_000, 300, 50), floor: pgRun(500, 100, 40), ceiling: run(1_000, 100), bullmq1: pgRun(1_100, 200, 100), bullmq1Local: pgRun(1_100, 200, 90), bullmq2: pgRun(1_100, 200, 110) },
    { ours: pgRun(1_000, 300, 100), floor: pgRun(1_200, 200, 40), ceiling: run(1_000, 100), bullmq1: pgRun(1_100, 200, 300), bullmq1Local: pgRun(1_100, 200, 90), bullmq2: pgRun(1_100, 200, 110) },
    { ours: pgRun(2_000, 300, 100), floor: pgRun(1_500, 150, 40), ceiling: run(1_000, 100), bullmq1: pgRun(1_100, 200, 100), bullmq1Local: pgRun(1_100, 200, 90), bullmq2: pgRun(1_100, 200, 110) },
  ];
  const lines = postgresSection([{ n: 1_000, k: 1, rounds }], { plainUs: 1_000, hookedUs: 1_100 });

  it('reports medians over rounds, each ratio and target on the median of the per-round ratios', () => {
    expect(cells(lines, '| N=1,000 × K=1 |')).toEqual(['N=1,000 × K=1', '1,000', '1,000', '833', '10,000', '75%', '50%–120%', '8%', '300.0', '150.0', '2.00×', '100.0', '40.0', 'missed']);
    expect(lines).toContain('Targets: resthooks ≥ 80% of the PostgreSQL floor in every scenario: missed; server CPU per delivery ≤ 2× the floor\'s: met.');
    expect(lines.join('\n')).toContain('3 rounds rotating which goes first; each figure is the median over rounds');
  });

  it('judges BullMQ\'s CPU against the in-process engine\'s on the median of the per-round ratios', () => {
    const bullmq = cells(lines, '| N=1,000 × K=1 |', 1);
    expect(bullmq.slice(6, 12)).toEqual(['100.0', '100.0', '90.0', '110.0', '2.00×', '1.00×–3.00×']);
    expect(bullmq.at(-1)).toBe('missed');
  });
});
