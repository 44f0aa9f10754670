/**
 * The scenarios of `npm run bench` that stand beside their own floor or ceiling (fan-out, latency, backlog,
 * the `{ tx }` path), in the order a full run takes them. Each runs alone with `npm run bench -- --only <name>`.
 * A scenario that breaks throws: the run fails loudly rather than write a table without it.
 * @module
 */
import { cpus, loadavg } from 'node:os';
import { fanOutScenario } from './fanout-10k.js';
import { latencyScenario } from './latency.js';
import { backlogScenario } from './backlog.js';
import { txCostScenario } from './tx-cost.js';
import type { Scenario, ScenarioContext, ScenarioReport } from './scenario-report.js';

export const SCENARIOS: readonly Scenario[] = [fanOutScenario, latencyScenario, backlogScenario, txCostScenario];

export function scenarioNamed(name: string): Scenario {
  const found = SCENARIOS.find((s) => s.name === name);
  if (!found) throw new Error(`bench: no scenario "${name}" (there are: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  return found;
}

export async function runScenarios(context: ScenarioContext, only?: readonly Scenario[]): Promise<ScenarioReport[]> {
  const reports: ScenarioReport[] = [];
  for (const scenario of only ?? SCENARIOS) {
    const started = Date.now();
    context.log(`${scenario.name} …`);
    const load = loadavg()[0]!;
    const report = await scenario.run(context);
    const seconds = (Date.now() - started) / 1000;
    context.log(`  ${scenario.name}: ${report.verdicts.join(' ')} (${seconds.toFixed(1)} s)`);
    const measured =
      `_Measured ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} by \`npm run bench\` (alone: \`npm run bench -- --only ${scenario.name}\`), ` +
      `${seconds.toFixed(0)} s, 1-minute load average ${load.toFixed(1)} → ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores._`;
    reports.push({ ...report, measured });
  }
  return reports;
}
