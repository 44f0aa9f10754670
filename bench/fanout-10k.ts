/**
 * One event to 10,000 subscriptions: from the save to the receiver's receipt of the last delivery, against
 * the ceiling POSTing the same 10,000 bodies and the durable floor doing the same fan-out by hand, in
 * rotating rounds. Every delivery is checked `delivered` after one attempt (bench/scenario.ts).
 * @module
 */
import { ceilingEndToEnd } from './ceiling.js';
import { durableFloorEndToEnd } from './durable-floor.js';
import type { RunResult } from './receiver-process.js';
import { book, CONCURRENCY, now, resthooksEndToEnd } from './scenario.js';
import type { Scenario, ScenarioContext, ScenarioReport } from './scenario-report.js';
import { fmt, medianOf, medianRatio, rate, ratiosOf, spread } from './stats.js';
import { join } from 'node:path';

export const FANOUT_TARGET = 1.5; // × the ceiling's time

export interface FanOutOptions {
  readonly subscriptions: number;
  readonly rounds: number;
}

/** One rotating round: each system measured once, minutes apart. */
export interface FanOutRound {
  readonly ours: RunResult;
  readonly floor: RunResult;
  readonly ceiling: RunResult;
}

export interface FanOutResult {
  readonly subscriptions: number;
  readonly rounds: readonly FanOutRound[];
}

export async function measureFanOut({ rx, dir, bodyLength, log }: ScenarioContext, { subscriptions, rounds }: FanOutOptions): Promise<FanOutResult> {
  let floorFiles = 0;
  const runs = {
    ours: () => resthooksEndToEnd(rx, { dir, n: 1, k: subscriptions }),
    floor: () =>
      durableFloorEndToEnd(rx, { file: join(dir, `fanout-floor-${++floorFiles}.db`), events: 1, subscriptionsPerEvent: subscriptions, inFlight: CONCURRENCY, now, data: (i) => JSON.stringify(book(i)) }),
    ceiling: () => ceilingEndToEnd(rx, subscriptions, bodyLength),
  };
  const measured: FanOutRound[] = [];
  for (let round = 0; round < rounds; round++) {
    // Rotate which goes first, so none always runs on a warmer (or busier) machine.
    const order = (['ours', 'floor', 'ceiling'] as const).map((_, i, all) => all[(i + round) % all.length]!);
    const result: Partial<Record<keyof typeof runs, RunResult>> = {};
    for (const which of order) result[which] = await runs[which]();
    const { ours, floor, ceiling } = result as Required<typeof result>;
    measured.push({ ours, floor, ceiling });
    log(
      `  fan-out round ${round + 1}: resthooks ${fmt(ours.ms)} ms, floor ${fmt(floor.ms)} ms, ceiling ${fmt(ceiling.ms)} ms; ` +
        `resthooks / ceiling ${(ours.ms / ceiling.ms).toFixed(2)}×, floor / ceiling ${(floor.ms / ceiling.ms).toFixed(2)}×`,
    );
  }
  return { subscriptions, rounds: measured };
}

export function fanOutReport(r: FanOutResult): ScenarioReport {
  const { rounds } = r;
  const ms = (which: keyof FanOutRound) => medianOf(rounds, (round) => round[which].ms);
  const clientCpu = (which: keyof FanOutRound) => medianOf(rounds, (round) => round[which].cpuUs.client);
  const ofCeiling = (which: keyof FanOutRound) => medianRatio(rounds, (round) => round[which].ms, (round) => round.ceiling.ms);
  const ratio = ofCeiling('ours');
  const perRound = spread(ratiosOf(rounds, (round) => round.ours.ms, (round) => round.ceiling.ms), (x) => `${x.toFixed(2)}×`);
  const met = ratio <= FANOUT_TARGET;
  const reason = met
    ? ''
    : ` The floor, which does the same fan-out with nothing but durable rows, takes ${ofCeiling('floor').toFixed(2)}× the ceiling; resthooks spends ` +
      `${clientCpu('ours').toFixed(1)} µs of client CPU per delivery against the floor's ${clientCpu('floor').toFixed(1)} and the ceiling's ${clientCpu('ceiling').toFixed(1)}, ` +
      'and the client\'s one thread is the bottleneck (see the end-to-end CPU table).';
  const verdict = `fan-out to ${fmt(r.subscriptions)}: ${ratio.toFixed(2)}× the ceiling, target ≤ ${FANOUT_TARGET}×: ${met ? 'met' : 'missed'}.${reason}`;
  const row = (what: string, which: keyof FanOutRound, note: string) =>
    `| ${what} | ${fmt(ms(which))} | ${fmt(medianOf(rounds, (round) => rate(round[which])))} | ${ofCeiling(which).toFixed(2)}× | ${clientCpu(which).toFixed(1)} | ${note} |`;
  return {
    name: 'fanout',
    verdicts: [verdict],
    lines: [
      `## Fan-out: one event to ${fmt(r.subscriptions)} subscriptions`,
      '',
      `One \`hooks.model()\` save whose event reaches ${fmt(r.subscriptions)} subscriptions of one owner (each its own path on the receiver), timed from`,
      'the save to the receiver\'s receipt of the last delivery; every delivery is then checked `delivered` after one attempt. The ceiling',
      `POSTs ${fmt(r.subscriptions)} bodies of the same size with a bare undici \`Pool\` (${CONCURRENCY} in flight); the durable floor fans the same event out by`,
      `hand (bench/durable-floor.ts). ${rounds.length} round${rounds.length === 1 ? '' : 's'} rotating which goes first; each figure is the median over rounds, and "× ceiling"`,
      'the median of the per-round ratios to the ceiling. Subscriptions are created before the clock starts.',
      '',
      `| run | ms until all delivered | deliveries /s | × ceiling | client CPU µs per delivery | |`,
      '|---|---:|---:|---:|---:|---|',
      row('resthooks', 'ours', `target ≤ ${FANOUT_TARGET}×: ${met ? 'met' : 'missed'}`),
      row('durable floor', 'floor', ''),
      row('ceiling', 'ceiling', ''),
      '',
      `resthooks / ceiling per round: ${perRound}.`,
      '',
      verdict,
    ],
  };
}

export const fanOutScenario: Scenario = {
  name: 'fanout',
  async run(context) {
    return fanOutReport(await measureFanOut(context, { subscriptions: 10_000, rounds: 3 }));
  },
};
