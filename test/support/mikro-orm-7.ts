/**
 * MikroORM 7 for the tests, beside the project's MikroORM 6: the two share package names, so 7 lives in
 * test/peers/mikro-orm-7 with its own node_modules, installed there from its lock file the first time a
 * test needs it (`npm ci`: the npm registry, a few seconds). Its better-sqlite3 is the project's own build,
 * linked in: MikroORM 7 pins 13.x, which crashes on Node 20, and a second native build would take minutes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { MikroOrmPackages } from './mikro-orm-suite.js';

const peerDir = fileURLToPath(new URL('../peers/mikro-orm-7/', import.meta.url));
const modules = join(peerDir, 'node_modules');
/** Written after a complete install: the lock file's hash, so a changed lock file installs again. */
const installedMark = join(modules, '.resthooks-installed');

function lockHash(): string {
  return createHash('sha256').update(readFileSync(join(peerDir, 'package-lock.json'))).digest('hex');
}

async function install(): Promise<void> {
  const hash = lockHash();
  if (existsSync(installedMark) && readFileSync(installedMark, 'utf8') === hash) return;
  // No install scripts: the only package that has one is better-sqlite3, replaced by the project's build below.
  await promisify(execFile)('npm', ['ci', '--prefix', peerDir, '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    timeout: 5 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const projectSqlite = dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
  rmSync(join(modules, 'better-sqlite3'), { recursive: true, force: true });
  symlinkSync(projectSqlite, join(modules, 'better-sqlite3'), 'dir');
  writeFileSync(installedMark, hash);
}

/** Loads MikroORM 7 (ESM only) from test/peers/mikro-orm-7, installing it first when missing. */
export async function mikroOrm7(): Promise<MikroOrmPackages> {
  await install();
  const require = createRequire(join(peerDir, 'package.json'));
  const load = async <T>(name: string): Promise<T> => (await import(pathToFileURL(require.resolve(name)).href)) as T;
  const core = await load<Pick<MikroOrmPackages, 'EntitySchema' | 'MikroORM'>>('@mikro-orm/core');
  const { SqliteDriver } = await load<{ SqliteDriver: MikroOrmPackages['SqliteDriver'] }>('@mikro-orm/sqlite');
  const { PostgreSqlDriver } = await load<{ PostgreSqlDriver: MikroOrmPackages['PostgreSqlDriver'] }>('@mikro-orm/postgresql');
  const version = (JSON.parse(readFileSync(require.resolve('@mikro-orm/core/package.json'), 'utf8')) as { version: string }).version;
  if (!version.startsWith('7.')) throw new Error(`test/peers/mikro-orm-7 holds @mikro-orm/core ${version}, not 7.x`);
  return { version: 7, EntitySchema: core.EntitySchema, MikroORM: core.MikroORM, SqliteDriver, PostgreSqlDriver };
}
