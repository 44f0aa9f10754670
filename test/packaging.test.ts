/**
 * The built package as users install it: built from this checkout into a scratch directory (the
 * JavaScript only; declarations are checked by `npm run check:package`), laid out like an installed
 * package (package.json + dist, its dependencies beside it), then loaded from an app outside it by
 * scripts/check-exports.mjs: every `exports` entry in ESM and CJS, `main`, `module`, every `bin`.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHECK = join(ROOT, 'scripts', 'check-exports.mjs');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[]; exports: Record<string, unknown> };

function run(command: string, args: readonly string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: ROOT, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

/** A copy of the built package at `dir`: what `npm install` would put in node_modules/resthooks. */
function installedCopy(from: string, dir: string): string {
  cpSync(from, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

let scratch: string;
let packageDir: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'resthooks-packaging-'));
  packageDir = join(scratch, 'package');
  const tsup = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'tsup', 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const build = await run(process.execPath, [join(ROOT, 'node_modules', 'tsup', tsup.bin.tsup!), '--no-dts', '--out-dir', join(packageDir, 'dist')]);
  expect(build.code, build.output).toBe(0);
  copyFileSync(join(ROOT, 'package.json'), join(packageDir, 'package.json'));
  for (const file of pkg.files.filter((file) => file !== 'dist')) cpSync(join(ROOT, file), join(packageDir, file), { recursive: true });
  // The dependencies an install would bring, found the way Node looks for them: beside the package.
  symlinkSync(join(ROOT, 'node_modules'), join(packageDir, 'node_modules'), 'dir');
}, 300_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the built package', () => {
  it('loads every exports entry in ESM and CJS, main and module, and runs its bin', async () => {
    const { code, output } = await run(process.execPath, [CHECK, '--package', packageDir, '--no-types']);
    expect(output).not.toContain('✗');
    expect(code, output).toBe(0);
    const entries = Object.keys(pkg.exports).filter((subpath) => subpath !== './package.json');
    expect(entries.length).toBeGreaterThanOrEqual(7);
    for (const subpath of entries) {
      const name = subpath === '.' ? 'resthooks' : `resthooks/${subpath.slice(2)}`;
      for (const format of ['esm', 'cjs']) expect(output).toContain(`✓ ${name} (${format})\n`);
    }
    expect(output).toContain('✓ bin resthooks (./dist/cli/main.js)');
  }, 120_000);

  it('ships the resthooks command as ESM only: no CommonJS copy that cannot run', () => {
    const cli = join(packageDir, 'dist', 'cli');
    expect(() => readFileSync(join(cli, 'main.js'))).not.toThrow();
    expect(() => readFileSync(join(cli, 'main.cjs'))).toThrow(/ENOENT/);
  });

  it('the check fails on an entry that does not load, a bin that does not run, and a shipped file nothing names', async () => {
    const broken = installedCopy(packageDir, join(scratch, 'broken'));
    writeFileSync(join(broken, 'dist', 'fastify.cjs'), "throw new Error('broken on load');\n");
    writeFileSync(join(broken, 'dist', 'cli', 'main.js'), '#!/usr/bin/env node\nconsole.log(new URL("../../package.json", undefined));\n');
    writeFileSync(join(broken, 'dist', 'cli', 'main.cjs'), 'module.exports = {};\n');
    const { code, output } = await run(process.execPath, [CHECK, '--package', broken, '--no-types']);
    expect(code).toBe(1);
    expect(output).toContain('✗ resthooks/fastify (cjs) does not load: Error: broken on load');
    expect(output).toContain('✓ resthooks/fastify (esm)');
    expect(output).toMatch(/✗ bin resthooks: "\.\/dist\/cli\/main\.js --version" exited 1: .*Invalid URL/);
    expect(output).toContain('✗ dist/cli/main.cjs is shipped, but package.json names it nowhere');
  }, 120_000);
});
