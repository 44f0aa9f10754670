/**
 * The README's "A first delivery", verbatim, in a fresh ESM app and a fresh CommonJS app: the packed
 * package installed with better-sqlite3 (the README's `npm i resthooks better-sqlite3`, with this
 * checkout's tarball in place of the registry's copy), `npx resthooks listen` as the receiver, and the
 * README's own first-delivery.mjs / first-delivery.cjs run with `node`, unchanged. The one liberty: the
 * listener takes a free port instead of 4000 (tests run side by side), handed to the script through
 * the TARGET_URL variable the snippet reads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/hooks.js';
import { scratchApp } from '../support/scratch-app.js';

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

/** The section of the README under `heading`, up to the next `## `. */
function section(heading: string): string {
  const start = README.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "${heading}" section`);
  const end = README.indexOf('\n## ', start + heading.length + 2);
  return README.slice(start, end < 0 ? undefined : end);
}

/** The code of the fenced block whose info string is exactly `info`, in `text`. */
function block(text: string, info: string): string {
  const match = new RegExp('```' + info.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\n([\\s\\S]*?)\\n```').exec(text);
  if (!match) throw new Error(`README.md has no \`\`\`${info} block where the first delivery is`);
  return match[1]!;
}

const firstDelivery = section('## A first delivery');
const commands = block(firstDelivery, 'sh')
  .split('\n')
  .map((line) => line.replace(/#.*$/, '').trim())
  .filter(Boolean);

// `npx` runs the listener through a shell: each is started in a process group of its own, and the
// whole group is signalled, or the listener would outlive the test.
const children: ChildProcess[] = [];
function stopGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
afterAll(() => {
  for (const child of children) stopGroup(child, 'SIGKILL');
});

describe("the README's first delivery", () => {
  it('names the commands this test runs', () => {
    expect(commands).toEqual(['npm i resthooks better-sqlite3', 'npx resthooks listen', 'node first-delivery.mjs']);
    expect(section('## Install')).toContain('npm i resthooks better-sqlite3');
  });

  for (const [type, file] of [
    ['module', 'first-delivery.mjs'],
    ['commonjs', 'first-delivery.cjs'],
  ] as const) {
    it(`runs verbatim in a fresh ${type === 'module' ? 'ESM' : 'CommonJS'} project: ${file} delivers to \`npx resthooks listen\``, { timeout: 15 * 60_000 }, async () => {
      const app = await scratchApp({ name: `readme-${type}`, type, dependencies: { 'better-sqlite3': '^12.0.0' } });
      app.write(file, `${block(firstDelivery, `js file=${file}`)}\n`);

      // `npx resthooks listen`, on a free port; it prints the address it listens on.
      const listener = spawn('npx', ['resthooks', 'listen', '--port', '0'], { cwd: app.dir, env: { ...process.env, NO_COLOR: '1' }, detached: true });
      children.push(listener);
      let heard = '';
      listener.stdout.on('data', (chunk: Buffer) => (heard += chunk.toString()));
      listener.stderr.on('data', (chunk: Buffer) => (heard += chunk.toString()));
      const url = await eventually(() => {
        const found = /http:\/\/127\.0\.0\.1:\d+\//.exec(heard)?.[0];
        if (!found) throw new Error(`resthooks listen has not said where it listens yet:\n${heard}`);
        return found;
      }, 60_000);

      const run = await app.run('node', [file], { env: { TARGET_URL: url }, timeoutMs: 120_000 });
      expect(run.code, run.output).toBe(0);
      expect(run.stdout).toContain(`book.added → ${url}: delivered`);
      // The listener printed the signed request it got, with the book in it.
      await eventually(() => {
        expect(heard).toContain('book.added');
        expect(heard).toContain('The Two Towers');
      }, 30_000);
      stopGroup(listener, 'SIGINT');
    });
  }
});
