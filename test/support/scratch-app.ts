/**
 * Scratch apps: the package as users get it. `packedTarball()` builds this checkout and packs it with
 * `npm pack` (once per test run, shared by every test file); `scratchApp()` makes a fresh app directory
 * and installs into it, from the npm registry, the packages an app would have, then the tarball, with
 * plain `npm install` (no `--legacy-peer-deps`: a peer range that refuses the app's versions fails it).
 *
 * Install scripts run only for the packages in `allowScripts`, as npm 11's `allowScripts` intends (the
 * npm here only warns about the others). Native addons build from source on these machines (their
 * prebuilt download is out of reach): 1–2 minutes each. A version this checkout has already built (its
 * own node_modules, the same Node) is copied instead of built again: the artefact the build would make.
 *
 * @example
 * const app = await scratchApp({ name: 'esm-app', type: 'module', dependencies: { 'better-sqlite3': '^12.0.0' } });
 * app.write('main.mjs', "import { createHooks } from 'resthooks'; …");
 * const { code, output } = await app.run('node', ['main.mjs']);
 */
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { tail } from './system.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Installs run beside other test files on 2 cores; a native build alone takes 1–2 minutes. */
const INSTALL_TIMEOUT_MS = 12 * 60_000;

export interface CommandResult {
  /** The exit code (1 when the command was killed or could not start). */
  readonly code: number;
  /** stdout and stderr, in that order. */
  readonly output: string;
  readonly stdout: string;
}

export interface ScratchAppOptions {
  /** Names the app's directory and package. */
  readonly name: string;
  /** package.json `type`: how Node and TypeScript treat the app's .js files. */
  readonly type: 'module' | 'commonjs';
  /** Package name → version range, installed from the registry before the package itself. */
  readonly dependencies: Readonly<Record<string, string>>;
  /** Packages whose install scripts run (native builds). Default: better-sqlite3. */
  readonly allowScripts?: readonly string[];
}

export interface ScratchApp {
  /** The app's directory (inside the run's temp directory, removed with it at the end of the run). */
  readonly dir: string;
  /** Writes a file at `path` (relative to the app), creating its folders. */
  write(path: string, text: string): void;
  /** Runs a command in the app's directory; resolves with its exit code, never rejects for a failure. */
  run(command: string, args: readonly string[], options?: { env?: Readonly<Record<string, string>>; timeoutMs?: number }): Promise<CommandResult>;
  /** The version of `name` the app resolves (its top-level node_modules copy). */
  version(name: string): string;
  /** Every installed copy of `name` under the app's node_modules (more than one: a duplicate). */
  copies(name: string): string[];
}

/**
 * Makes a fresh app and installs `dependencies`, then the packed package (`resthooks`), as an app's
 * developer would. The dependencies install while the package builds. Throws with npm's output when
 * either install fails (an `ERESOLVE` from a peer range, a native build that fails).
 */
export async function scratchApp(options: ScratchAppOptions): Promise<ScratchApp> {
  const dir = mkdtempSync(join(inject('runDir'), `${options.name}-`));
  const scripted = options.allowScripts ?? ['better-sqlite3'];
  const allowScripts = Object.fromEntries(scripted.map((name) => [name, true]));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: options.name, private: true, type: options.type, allowScripts }, null, 2)}\n`);
  const specs = Object.entries(options.dependencies).map(([name, range]) => `${name}@${range}`);
  // The dependencies (and their native builds) install while the package builds.
  const dependencies = async () => {
    if (specs.length === 0) return;
    await npmInstall(dir, specs);
    for (const name of scripted) await runInstallScripts(dir, name);
  };
  const [tarball] = await Promise.all([packedTarball(), dependencies()]);
  await npmInstall(dir, [tarball]);
  return {
    dir,
    write(path, text) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    },
    run: (command, args, runOptions = {}) => run(command, args, dir, { ...runOptions.env }, runOptions.timeoutMs ?? 5 * 60_000),
    version: (name) => (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version,
    copies: (name) => packageCopies(join(dir, 'node_modules'), name),
  };
}

let packing: Promise<string> | undefined;

/**
 * The path of `resthooks-<version>.tgz`: `npm pack` of a fresh build of this checkout. Built once per
 * test run: the first test file to ask builds it (the others wait), in the run's temp directory.
 */
export function packedTarball(): Promise<string> {
  packing ??= packOncePerRun(join(inject('runDir'), 'pack'));
  return packing;
}

async function packOncePerRun(dir: string): Promise<string> {
  const result = join(dir, 'result.json');
  try {
    mkdirSync(dir); // atomic: one process of the run wins and builds
  } catch {
    for (const deadline = Date.now() + INSTALL_TIMEOUT_MS; Date.now() < deadline; await sleep(500)) {
      if (!existsSync(result)) continue;
      const outcome = JSON.parse(readFileSync(result, 'utf8')) as { tarball?: string; error?: string };
      if (outcome.tarball) return outcome.tarball;
      throw new Error(`packing the package failed (in another test file): ${outcome.error}`);
    }
    throw new Error(`packing the package (in another test file) did not finish within ${INSTALL_TIMEOUT_MS} ms`);
  }
  const publish = (outcome: object) => {
    writeFileSync(`${result}.tmp`, JSON.stringify(outcome));
    renameSync(`${result}.tmp`, result);
  };
  try {
    const tarball = await pack(dir);
    publish({ tarball });
    return tarball;
  } catch (error) {
    publish({ error: String(error) });
    throw error;
  }
}

/** Builds into a staging copy (the checkout's own dist/ is left alone) and packs that, as `npm publish` would. */
async function pack(dir: string): Promise<string> {
  const staging = join(dir, 'package');
  mkdirSync(staging);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  for (const file of pkg.files.filter((file) => file !== 'dist')) cpSync(join(ROOT, file), join(staging, file), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(staging, 'package.json'));
  const tsup = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'tsup', 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const build = await run(process.execPath, [join(ROOT, 'node_modules', 'tsup', tsup.bin.tsup!), '--out-dir', join(staging, 'dist')], ROOT, {}, INSTALL_TIMEOUT_MS);
  if (build.code !== 0) throw new Error(`tsup failed:\n${tail(build.output)}`);
  // No lifecycle scripts: the staging copy has no sources to build from, and the build is done.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], staging, {}, 120_000);
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${tail(packed.output)}`);
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
  return join(dir, filename);
}

async function npmInstall(dir: string, specs: readonly string[]): Promise<void> {
  const { code, output } = await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', ...specs], dir, {}, INSTALL_TIMEOUT_MS);
  if (code !== 0) throw new Error(`npm install ${specs.join(' ')} failed in ${dir}:\n${tail(output, 40)}`);
}

/** Runs `name`'s install scripts in the app (`npm rebuild`), or copies the addon this checkout built from the same version. */
async function runInstallScripts(dir: string, name: string): Promise<void> {
  const installed = join(dir, 'node_modules', name);
  if (!existsSync(installed)) return;
  const built = join(ROOT, 'node_modules', name);
  const version = (path: string) => (JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as { version: string }).version;
  const addons = join(built, 'build', 'Release');
  if (existsSync(built) && version(built) === version(installed) && existsSync(addons)) {
    for (const file of readdirSync(addons).filter((file) => file.endsWith('.node'))) {
      mkdirSync(join(installed, 'build', 'Release'), { recursive: true });
      copyFileSync(join(addons, file), join(installed, 'build', 'Release', file));
    }
    return;
  }
  const { code, output } = await run('npm', ['rebuild', name], dir, {}, INSTALL_TIMEOUT_MS);
  if (code !== 0) throw new Error(`npm rebuild ${name} failed in ${dir}:\n${tail(output, 40)}`);
}

function run(command: string, args: readonly string[], cwd: string, env: Readonly<Record<string, string>>, timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      [...args],
      { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}`, stdout }),
    );
  });
}

function packageCopies(modules: string, name: string): string[] {
  if (!existsSync(modules)) return [];
  const copies: string[] = [];
  for (const entry of readdirSync(modules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const path = join(modules, entry.name);
    if (entry.name.startsWith('@')) {
      for (const scoped of readdirSync(path, { withFileTypes: true })) {
        if (scoped.isDirectory()) copies.push(...packageAt(join(path, scoped.name), `${entry.name}/${scoped.name}`, name));
      }
    } else copies.push(...packageAt(path, entry.name, name));
  }
  return copies;
}

function packageAt(path: string, installedAs: string, name: string): string[] {
  return [...(installedAs === name ? [path] : []), ...packageCopies(join(path, 'node_modules'), name)];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
