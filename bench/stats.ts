/** What every bench reports with: medians, rates, number formats, and the machine it ran on. */
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { RunResult } from './receiver-process.js';

/** The median; the mean of the two middle values for an even count. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Each system's figure over rotating rounds: the median over rounds of that figure. A round measures every
 * system once, minutes apart, so a ratio between two of them is taken within each round first
 * (`medianRatio`): a ratio of medians, or of each one's best run, would compare runs from different rounds.
 */
export function medianOf<R>(rounds: readonly R[], figure: (round: R) => number): number {
  return median(rounds.map(figure));
}

/** Each round's `numerator / denominator`, in round order. */
export function ratiosOf<R>(rounds: readonly R[], numerator: (round: R) => number, denominator: (round: R) => number): number[] {
  return rounds.map((round) => numerator(round) / denominator(round));
}

/** The median over rounds of the per-round ratio `numerator / denominator`. */
export function medianRatio<R>(rounds: readonly R[], numerator: (round: R) => number, denominator: (round: R) => number): number {
  return median(ratiosOf(rounds, numerator, denominator));
}

/** The lowest and highest of `values` (one per round) as "low–high", or the one value when they agree. */
export function spread(values: readonly number[], format: (x: number) => string): string {
  const [low, high] = [format(Math.min(...values)), format(Math.max(...values))];
  return low === high ? low : `${low}–${high}`;
}

/** Deliveries per second of a run. */
export const rate = (r: RunResult) => (r.deliveries / r.ms) * 1000;

export const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return { cpu: model, cores: cpus().length, memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`, node: process.version };
}
