/**
 * Memory per receiver origin: the sender must not keep a connection pool for every origin it ever
 * called (about 20 KiB each: 100k customer endpoints would hold 2 GB). Measured in a child process
 * with --expose-gc (test/support/sender-memory-child.ts), so the heap figures are after full GCs and
 * nothing else of the test runner is in them.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./support/sender-memory-child.ts', import.meta.url));
const ORIGINS = 3000;

function measure(): Promise<{ count: number; start: number; busy: number; end: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, String(ORIGINS)], { cwd: ROOT, timeout: 110_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as { count: number; start: number; busy: number; end: number });
    });
  });
}

describe('sender memory', () => {
  it(`after attempts to ${ORIGINS} distinct origins, once their connections are idle and closed, the heap is back near its start`, { timeout: 120_000 }, async () => {
    const { count, start, end } = await measure();
    expect(count).toBe(ORIGINS);
    // Keeping a pool per origin costs ~20 KiB each (~60 MB here); forgetting them leaves a constant ~1 MB
    // (code and caches warmed by the run). The bound is far from both, so load on the machine does not matter.
    expect(end - start).toBeLessThan(8 * 1024 * 1024);
  });
});
