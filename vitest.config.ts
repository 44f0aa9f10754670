import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import { entryPaths } from './scripts/snippets.js';

/**
 * `npm test` runs every file with a real PostgreSQL, Redis and Chromium (started by the global setup).
 * `npm run test:unit` (RESTHOOKS_TEST_SCOPE=unit) is the inner loop: no server, no root, SQLite only.
 * It leaves out the files below, each of which needs a server or an apt-get install in its cases (and
 * the two whole-package checks), and
 * runs the store tests on SQLite alone (`ENGINES` in test/support/database.ts). A file not listed that
 * reaches for PostgreSQL or Redis gets no URL in the unit scope and fails, so the list cannot go stale.
 */
const NEEDS_SERVICES: string[] = [
  // PostgreSQL or Redis in every case
  'test/bullmq.test.ts',
  'test/pg-restart.test.ts',
  'test/store-postgres-plans.test.ts',
  'test/worker-faults.test.ts',
  'test/worker-lapsed-lease.test.ts',
  'test/scale-out.test.ts',
  'test/worker-health.test.ts',
  'test/limits/send-gate.test.ts',
  'test/limits/shared-limits.test.ts',
  'test/demo.test.ts',
  'test/cli/migrate.test.ts',
  'test/cli/print-sql.test.ts',
  'test/cli/print-sql-tools.test.ts',
  // the ORM adapters: the shared suite pairs SQLite apps with a PostgreSQL store and back
  'test/adapters/*.test.ts',
  // the packed package installed from the npm registry into scratch apps (and Redis, PostgreSQL)
  'test/package/*.test.ts',
  // Chromium
  'test/admin/admin-browser.test.ts',
  // python3 and golang-go from apt-get (root)
  'test/verifier-snippets.test.ts',
];

/**
 * Whole-package checks, left out of the inner loop for their CPU (a build, a type-check of every docs
 * snippet: about 40 of its 110 CPU-seconds). `npm test` runs them; so do `npm run check:snippets` and
 * `npm run build && npm run check:exports` on their own.
 */
const WHOLE_PACKAGE = ['test/docs-snippets.test.ts', 'test/packaging.test.ts'];

const unit = process.env.RESTHOOKS_TEST_SCOPE === 'unit';

export default defineConfig({
  // The examples import `resthooks` as an app does; in the tests that is the source (as tsconfig.json's `paths`).
  resolve: {
    alias: Object.entries(entryPaths()).map(([name, [source]]) => ({ find: new RegExp(`^${name}$`), replacement: source! })),
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: unit ? [...configDefaults.exclude, ...NEEDS_SERVICES, ...WHOLE_PACKAGE] : configDefaults.exclude,
    // Many tests wait on child processes, timers, leases and npm: more forks than cores keep the CPU busy
    // (vitest's default, cores - 1, runs the files one at a time on two cores).
    maxWorkers: unit ? Math.max(4, availableParallelism()) : Math.max(3, availableParallelism()),
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: [unit ? 'test/support/unit-setup.ts' : 'test/support/global-setup.ts'],
    // Every test app (and every process it spawns) seals subscription secrets, as production does.
    env: { RESTHOOKS_SECRET_KEYS: 'test:cmVzdGhvb2tzLXRlc3Qta2V5LW5vdC1hLXNlY3JldCE=' },
  },
});
