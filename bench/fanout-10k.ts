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
import { fmt, rate } from './stats.js';
import { join } from 'node:path';

export const FANOUT_TARGET = 1.5; // × the ceiling's time

export interface FanOutOptions {
  readonly subscriptions: number;
  readonly rounds: number;
}

export interface FanOutResult {
  readonly subscriptions: number;
  readonly ours: RunResult;
  readonly floor: RunResult;
  readonly ceiling: RunResult;
}

export async function measureFanOut({ rx, dir, bodyLength, log }: ScenarioContext, { subscriptions, rounds }: FanOutOptions): Promise<FanOutResult> {
  let floorFiles = 0;
  const runs = {
    ours: () => resthooksEndToEnd(rx, { dir, n: 1, k: subscriptions }),
    floor: () =>
      durableFloorEndToEnd(rx, { file: join(dir, `fanout-floor-${++floorFiles}.db`), events: 1, subscriptionsPerEvent: subscriptions, inFlight: CONCURRENCY, now, data: (i) => JSON.stringify(book(i)) }),
    ceiling: () => ceilingEndToEnd(rx, subscriptions, bodyLength),
  };
  const best: Partial<Record<keyof typeof runs, RunResult>> = {};
  for (let round = 0; round < rounds; round++) {
    // Rotate which goes first, so none always runs on a warmer (or busier) machine.
    const order = (['ours', 'floor', 'ceiling'] as const).map((_, i, all) => all[(i + round) % all.length]!);
    for (const which of order) {
      const result = await runs[which]();
      if (best[which] === undefined || result.ms < best[which].ms) best[which] = result;
    }
    log(`  fan-out round ${round + 1}: resthooks ${fmt(best.ours!.ms)} ms, floor ${fmt(best.floor!.ms)} ms, ceiling ${fmt(best.ceiling!.ms)} ms (best so far)`);
  }
  return { subscriptions, ours: best.ours!, floor: best.floor!, ceiling: best.ceiling! };
}

export function fanOutReport(r: FanOutResult, rounds: number): ScenarioReport {
  const ratio = r.ours.ms / r.ceiling.ms;
  const met = ratio <= FANOUT_TARGET;
  const reason = met
    ? ''
    : ` The floor, which does the same fan-out with nothing but durable rows, takes ${(r.floor.ms / r.ceiling.ms).toFixed(2)}× the ceiling; resthooks spends ` +
      `${r.ours.cpuUs.client.toFixed(1)} µs of client CPU per delivery against the floor's ${r.floor.cpuUs.client.toFixed(1)} and the ceiling's ${r.ceiling.cpuUs.client.toFixed(1)}, ` +
      'and the client\'s one thread is the bottleneck (see the end-to-end CPU table).';
  const verdict = `fan-out to ${fmt(r.subscriptions)}: ${ratio.toFixed(2)}× the ceiling, target ≤ ${FANOUT_TARGET}×: ${met ? 'met' : 'missed'}.${reason}`;
  const row = (what: string, x: RunResult, note: string) =>
    `| ${what} | ${fmt(x.ms)} | ${fmt(rate(x))} | ${(x.ms / r.ceiling.ms).toFixed(2)}× | ${x.cpuUs.client.toFixed(1)} | ${note} |`;
  return {
    name: 'fanout',
    verdicts: [verdict],
    lines: [
      `## Fan-out: one event to ${fmt(r.subscriptions)} subscriptions`,
      '',
      `One \`hooks.model()\` save whose event reaches ${fmt(r.subscriptions)} subscriptions of one owner (each its own path on the receiver), timed from`,
      'the save to the receiver\'s receipt of the last delivery; every delivery is then checked `delivered` after one attempt. The ceiling',
      `POSTs ${fmt(r.subscriptions)} bodies of the same size with a bare undici \`Pool\` (${CONCURRENCY} in flight); the durable floor fans the same event out by`,
      `hand (bench/durable-floor.ts). ${rounds} rounds rotating which goes first; the best time of each is shown. Subscriptions are created before the clock starts.`,
      '',
      `| run | ms until all delivered | deliveries /s | × ceiling | client CPU µs per delivery | |`,
      '|---|---:|---:|---:|---:|---|',
      row('resthooks', r.ours, `target ≤ ${FANOUT_TARGET}×: ${met ? 'met' : 'missed'}`),
      row('durable floor', r.floor, ''),
      row('ceiling', r.ceiling, ''),
      '',
      verdict,
    ],
  };
}

export const fanOutScenario: Scenario = {
  name: 'fanout',
  async run(context) {
    const rounds = 3;
    return fanOutReport(await measureFanOut(context, { subscriptions: 10_000, rounds }), rounds);
  },
};
