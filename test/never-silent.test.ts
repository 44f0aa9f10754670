/**
 * Never silent: with no `logger` option, a failed delivery prints a warning (a failure retried) and an
 * error (a failure given up on) to stderr, each with the error's stack; secrets never appear there.
 * `logger: false` silences it. The hooks run in a child process whose stderr is read as a user would see it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TARGET_PASSWORD, TARGET_TOKEN } from './support/failing-delivery-child.js';
import { tempDir } from './support/hooks.js';

const CHILD = fileURLToPath(new URL('./support/failing-delivery-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function runChild(mode?: 'silent'): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir.path, ...(mode ? [mode] : [])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

describe('the default logger', () => {
  it('prints a failed attempt at warn and the last one at error, with stacks, and no secret', async () => {
    const { code, stdout, stderr } = await runChild();
    expect(code, stderr).toBe(0);
    const secret = stdout.trim();
    expect(secret).toMatch(/^whsec_/);
    expect(stderr).toMatch(/resthooks: delivery attempt failed \(HTTP 500\); retrying in \d+ ms/);
    expect(stderr).toMatch(/resthooks: delivery failed for good \(HTTP 500; gave up after 2 attempts\)/);
    // The Error itself is printed, stack included.
    expect(stderr).toMatch(/DeliveryAttemptError: Attempt 1 of delivery dlv_\w+ to http:\/\/127\.0\.0\.1:\d+\/hooks failed: HTTP 500/);
    expect(stderr).toMatch(/\n\s+at .+attempt-log\.ts:\d+/);
    // Secrets: the signing secret, the target's password and its query token.
    expect(stderr).not.toContain(secret);
    expect(stderr).not.toContain(secret.slice('whsec_'.length));
    expect(stderr).not.toContain(TARGET_PASSWORD);
    expect(stderr).not.toContain(TARGET_TOKEN);
    expect(stderr).not.toMatch(/v1,[A-Za-z0-9+/=]{20,}/);
    // The child seals secrets at rest with the suite's key (RESTHOOKS_SECRET_KEYS): neither that key nor a sealed value is logged.
    const key = process.env.RESTHOOKS_SECRET_KEYS!.split(':')[1]!;
    expect(key.length).toBeGreaterThan(40);
    expect(stderr).not.toContain(key);
    expect(stderr).not.toContain('rhenc:');
  }, 60_000);

  it('is silenced by logger: false', async () => {
    const { code, stdout, stderr } = await runChild('silent');
    expect(code, stderr).toBe(0);
    expect(stdout.trim()).toMatch(/^whsec_/);
    expect(stderr).toBe('');
  }, 60_000);
});
