/**
 * What the real-server tests need from the machine: Debian's PostgreSQL, Redis and Chromium (one
 * `apt-get` for all that are missing, so a fresh machine pays one update and one install), and free
 * ports on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

/** Debian package → a file it installs (how we tell it is there). */
const PACKAGES: Record<string, string> = {
  postgresql: '/usr/lib/postgresql/15/bin/initdb',
  'redis-server': '/usr/bin/redis-server',
  chromium: '/usr/bin/chromium',
  // Only test/verifier-snippets.test.ts runs these; it installs them itself.
  python3: '/usr/bin/python3',
  'golang-go': '/usr/bin/go',
};

/** What most of the suite needs, installed once by the global setup. */
const SUITE_PACKAGES = ['postgresql', 'redis-server', 'chromium'];

export const tail = (text: string, lines = 30) => text.trimEnd().split('\n').slice(-lines).join('\n');

/** Installs the named packages that are missing, in one apt-get run; throws with its output tail on failure. */
export async function ensureDebianPackages(names: readonly string[] = SUITE_PACKAGES): Promise<void> {
  const missing = names.filter((name) => !existsSync(PACKAGES[name] ?? `/nonexistent/${name}`));
  if (missing.length === 0) return;
  // The lock timeout lets two test processes on a fresh machine install one after the other.
  const command = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 ${missing.join(' ')}`;
  await new Promise<void>((resolve, reject) => {
    execFile('sh', ['-c', command], { timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} failed: ${error.message}\n${tail(`${stdout}${stderr}`)}`));
      else resolve();
    });
  });
  for (const name of missing) if (!existsSync(PACKAGES[name]!)) throw new Error(`apt-get installed ${name}, but ${PACKAGES[name]} is still missing.`);
}

/** A port free right now, found by binding port 0 briefly (a fixed port would collide between runs). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
