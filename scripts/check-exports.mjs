#!/usr/bin/env node
// Checks the built package the way users load it: every entry point in package.json `exports`
// imports (ESM) and requires (CJS) by its public name, exposes what its docs promise, and the core
// entry loads no web framework, ORM, driver or queue.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const expected = {
  '.': ['createHooks', 'sqliteStore', 'postgresStore', 'migrate', 'ValidationError', 'ConfigError', 'signatureHeaders'],
  './api': ['createApi', 'createAdminPage', 'basicAuthorization'],
  './node': ['toNodeHandler'],
  './express': ['toExpress'],
  './fastify': ['toFastify'],
  './typeorm': ['attachTypeorm'],
  './drizzle': ['drizzleHooks'],
  './kysely': ['kyselyHooks'],
  './bullmq': ['bullmqQueue'],
};
let failures = 0;
const fail = (message) => {
  failures++;
  console.error(`✗ ${message}`);
};

for (const subpath of Object.keys(pkg.exports)) {
  if (subpath === './package.json') continue;
  const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  const names = expected[subpath];
  if (!names) fail(`${name}: no expectations listed in scripts/check-exports.mjs`);
  for (const [format, load] of [['esm', (n) => import(n)], ['cjs', (n) => require(n)]]) {
    try {
      const module = await load(name);
      for (const exported of names ?? []) if (!(exported in module)) fail(`${name} (${format}) does not export ${exported}`);
      if (!failures) console.log(`✓ ${name} (${format})`);
    } catch (error) {
      fail(`${name} (${format}) does not load: ${error.message}`);
    }
  }
}

// The core entry must stay free of optional dependencies (they are optional peers).
const before = new Set(Object.keys(require.cache));
require(pkg.name);
const loaded = Object.keys(require.cache).filter((path) => !before.has(path));
for (const heavy of ['hono', 'zod', 'typeorm', 'drizzle-orm', 'express', 'fastify', 'bullmq', 'ioredis', 'better-sqlite3', 'pg']) {
  if (loaded.some((path) => path.includes(`/node_modules/${heavy}/`))) fail(`"${pkg.name}" loads ${heavy}`);
}

if (failures) {
  console.error(`\n${failures} export check(s) failed`);
  process.exit(1);
}
console.log('\nall entry points load in ESM and CJS; the core loads no optional dependency');
