import { defineConfig } from 'vitest/config';
import { entryPaths } from './scripts/snippets.js';

export default defineConfig({
  // The examples import `resthooks` as an app does; in the tests that is the source (as tsconfig.json's `paths`).
  resolve: {
    alias: Object.entries(entryPaths()).map(([name, [source]]) => ({ find: new RegExp(`^${name}$`), replacement: source! })),
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/support/global-setup.ts'],
  },
});
