#!/usr/bin/env node
// Checks a built package the way users load it, from an app outside it: every entry point in
// package.json `exports` imports (ESM) and requires (CJS) by its public name and exposes what its
// docs promise; `main` and `module` load; every `bin` runs; the core entry loads no web framework,
// ORM, driver or queue; and no entry-like file ships that package.json does not name (such a file
// cannot be reached by users and is never loaded by any other check).
//
//   node scripts/check-exports.mjs [--package <dir>] [--no-types]
//
// <dir> defaults to this repository (after `npm run build`). --no-types skips the check that every
// `types` file exists, for a build made without declarations.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({
  options: { package: { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) }, 'no-types': { type: 'boolean', default: false } },
});
const packageDir = resolve(options.package);
const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const expected = {
  '.': ['createHooks', 'sqliteStore', 'postgresStore', 'migrate', 'ValidationError', 'ConfigError', 'signatureHeaders', 'healthEndpoints'],
  './api': ['createApi', 'createAdminPage', 'basicAuthorization', 'readJsonObject', 'errorResponse'],
  './node': ['toNodeHandler'],
  './express': ['toExpress'],
  './fastify': ['toFastify'],
  './typeorm': ['attachTypeorm'],
  './prisma': ['withResthooks'],
  './drizzle': ['drizzleHooks'],
  './kysely': ['kyselyHooks'],
  './sequelize': ['attachSequelize', 'sequelizeExecutor'],
  './mikro-orm': ['attachMikroOrm', 'mikroOrmTx'],
  './bullmq': ['bullmqQueue'],
};
const OPTIONAL = ['hono', 'zod', 'typeorm', 'drizzle-orm', '@prisma/client', 'sequelize', 'sqlite3', '@mikro-orm/core', 'express', 'fastify', 'bullmq', 'ioredis', 'better-sqlite3', 'pg', '@opentelemetry/api'];

let failures = 0;
const fail = (message) => {
  failures++;
  console.error(`✗ ${message}`);
};
const ok = (message) => console.log(`✓ ${message}`);

// An app beside nothing else: the package is its dependency, reached by name through node_modules.
const app = mkdtempSync(join(tmpdir(), 'resthooks-exports-'));
mkdirSync(join(app, 'node_modules'));
symlinkSync(packageDir, join(app, 'node_modules', pkg.name), 'dir');
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'check-exports-app', private: true }));

/** The line of a crash's output that names the error (Node prints the source line above it). */
const errorLine = (output) => output.split('\n').find((line) => /^\w*(Error|Exception)\b/.test(line)) ?? output.trim().split('\n').slice(0, 3).join(' | ');

/** Loads `names` in a fresh node process of `format`; each result says what loaded and what it exports. */
function loadAll(format, names) {
  const load = format === 'esm' ? 'await import(name)' : 'require(name)';
  const probe = `for (const name of ${JSON.stringify(names)}) {
  try { const m = ${load}; console.log(JSON.stringify({ name, keys: Object.keys(m) })); }
  catch (error) { console.log(JSON.stringify({ name, error: String(error && error.stack || error).split('\\n').slice(0, 3).join(' | ') })); }
}`;
  const file = join(app, format === 'esm' ? 'probe.mjs' : 'probe.cjs');
  writeFileSync(file, probe);
  const run = spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8' });
  const results = new Map(
    run.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .map((result) => [result.name, result]),
  );
  if (run.status !== 0) fail(`${format} probe exited ${run.status}: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return results;
}

try {
  // ── exports: every entry, both formats, by its public name ────────────────────────────────
  const subpaths = Object.keys(pkg.exports).filter((subpath) => subpath !== './package.json');
  const publicName = (subpath) => (subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`);
  for (const format of ['esm', 'cjs']) {
    const results = loadAll(format, subpaths.map(publicName));
    for (const subpath of subpaths) {
      const name = publicName(subpath);
      const names = expected[subpath];
      if (!names) fail(`${name}: no expectations listed in scripts/check-exports.mjs`);
      const result = results.get(name);
      if (!result) fail(`${name} (${format}) was not reached`);
      else if (result.error) fail(`${name} (${format}) does not load: ${result.error}`);
      else {
        const missing = (names ?? []).filter((exported) => !result.keys.includes(exported));
        if (missing.length) fail(`${name} (${format}) does not export ${missing.join(', ')}`);
        else ok(`${name} (${format})`);
      }
    }
  }

  // ── types: every declared declaration file is there ───────────────────────────────────────
  if (!options['no-types']) {
    const typePaths = [pkg.types, ...subpaths.flatMap((subpath) => ['import', 'require'].map((condition) => pkg.exports[subpath]?.[condition]?.types))];
    for (const path of typePaths.filter(Boolean)) if (!existsSync(join(packageDir, path))) fail(`types file ${path} is missing`);
  }

  // ── main and module, for tools that read them instead of exports ──────────────────────────
  for (const [field, format] of [['main', 'cjs'], ['module', 'esm']]) {
    if (!pkg[field]) continue;
    // By path: `exports` closes deep imports by name.
    const direct = loadAll(format, [join(packageDir, pkg[field])]).get(join(packageDir, pkg[field]));
    if (!direct || direct.error) fail(`"${field}": ${pkg[field]} does not load (${format}): ${direct?.error}`);
    else ok(`"${field}": ${pkg[field]} (${format})`);
  }

  // ── bin: each command runs ────────────────────────────────────────────────────────────────
  const bins = typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {});
  for (const [command, path] of Object.entries(bins)) {
    const file = join(packageDir, path);
    if (!existsSync(file)) {
      fail(`bin ${command}: ${path} is missing`);
      continue;
    }
    if (!readFileSync(file, 'utf8').startsWith('#!/usr/bin/env node\n')) fail(`bin ${command}: ${path} has no "#!/usr/bin/env node" line`);
    const run = spawnSync(process.execPath, [file, '--version'], { cwd: app, encoding: 'utf8' });
    if (run.status !== 0 || run.stdout !== `${pkg.version}\n`) fail(`bin ${command}: "${path} --version" exited ${run.status}: ${errorLine(run.stdout + run.stderr)}`);
    else ok(`bin ${command} (${path})`);
  }

  // ── nothing shipped that nothing names ────────────────────────────────────────────────────
  const named = new Set(
    [pkg.main, pkg.module, ...Object.values(bins), ...subpaths.flatMap((subpath) => ['import', 'require'].map((condition) => pkg.exports[subpath]?.[condition]?.default))]
      .filter(Boolean)
      .map((path) => relative(packageDir, join(packageDir, path))),
  );
  const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]));
  const shipped = (pkg.files ?? []).map((path) => join(packageDir, path)).filter((path) => existsSync(path));
  for (const file of shipped.flatMap((path) => (statSync(path).isDirectory() ? walk(path) : [path]))) {
    const path = relative(packageDir, file);
    // Chunks are loaded by the entries that import them; only entry-like files need a name.
    if (!/\.(c|m)?js$/.test(path) || /(^|\/)chunk-[^/]+$/.test(path)) continue;
    if (!named.has(path)) fail(`${path} is shipped, but package.json names it nowhere (exports, main, module, bin): nothing can load it`);
  }

  // ── the core entry stays free of optional dependencies (they are optional peers) ─────────
  // In a fresh process: anything loaded before would already be cached and go unseen.
  const coreProbe = join(app, 'core.cjs');
  writeFileSync(coreProbe, `require(${JSON.stringify(pkg.name)}); console.log(JSON.stringify(Object.keys(require.cache)));`);
  const loaded = JSON.parse(execFileSync(process.execPath, [coreProbe], { cwd: app, encoding: 'utf8' }));
  for (const heavy of OPTIONAL) if (loaded.some((path) => path.includes(`${sep}node_modules${sep}${heavy}${sep}`))) fail(`"${pkg.name}" (cjs) loads ${heavy}`);
  // ESM: follow the static and dynamic imports of the core entry through its chunks.
  const esmCore = join(packageDir, pkg.exports['.'].import.default);
  const seen = new Set();
  const bare = new Set();
  const follow = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g)) {
      if (specifier.startsWith('.')) follow(resolve(dirname(file), specifier));
      else bare.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]);
    }
  };
  follow(esmCore);
  for (const heavy of OPTIONAL) if (bare.has(heavy)) fail(`"${pkg.name}" (esm) imports ${heavy}`);
  ok(`"${pkg.name}" loads no optional dependency (cjs: ${loaded.length} modules; esm: ${seen.size} files)`);
} finally {
  rmSync(app, { recursive: true, force: true });
}

if (failures) {
  console.error(`\n${failures} package check(s) failed`);
  process.exit(1);
}
console.log('\nevery entry point loads in ESM and CJS, every bin runs, nothing unnamed ships; the core loads no optional dependency');
