#!/usr/bin/env node
// Runs the whole suite with vitest and prints the plain closing line CI reads
// ("N passed, N failed, N skipped"). A skipped or pending test fails the run: it proves nothing.
// `--unit` runs the unit scope (vitest.config.ts): no PostgreSQL, Redis or Chromium, no root.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'resthooks-vitest-'));
const report = join(dir, 'report.json');
const unit = process.argv.includes('--unit');
const passThrough = process.argv.slice(2).filter((arg) => arg !== '--unit');
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...passThrough];
const env = { ...process.env, FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR };
if (unit) env.RESTHOOKS_TEST_SCOPE = 'unit';
const run = spawnSync('npx', args, { stdio: 'inherit', env });

let passed = 0, failed = 0, skipped = 0;
try {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests + (json.numFailedTestSuites ?? 0);
  skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
} catch {
  failed = Math.max(failed, 1);
}
rmSync(dir, { recursive: true, force: true });
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
if (skipped > 0) console.error('Skipped tests are not allowed: every test must run.');
process.exit(run.status !== 0 || failed > 0 || skipped > 0 || passed === 0 ? 1 : 0);
