/**
 * A real, throwaway Redis 7 for tests (shared/SERVICES.md): installed from Debian's packages when
 * missing, started on 127.0.0.1 at a free port, without persistence, in a temp dir. Fails loudly,
 * with the server log, when it cannot start: a suite that needs Redis never skips silently.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackages, freePort, tail } from './system.js';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  stop(): Promise<void>;
}

async function redisServerBinary(): Promise<string> {
  const find = () => ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((path) => existsSync(path));
  const found = find();
  if (found) return found;
  await ensureDebianPackages(['redis-server']);
  const installed = find();
  if (!installed) throw new Error('apt-get installed redis-server, but no redis-server binary was found.');
  return installed;
}

/** One PING over RESP; resolves true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const binary = await redisServerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-redis-'));
  const log = join(dir, 'redis.log');
  const logTail = () => (existsSync(log) ? `\n--- ${log} ---\n${tail(readFileSync(log, 'utf8'))}` : '');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    // A child, not daemonized: it dies with its stop() and never outlives the run as an orphan daemon.
    const child = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', log, '--daemonize', 'no'],
      { stdio: 'ignore' },
    );
    let exited = false;
    const exit = new Promise<void>((resolve) => {
      const ended = () => {
        exited = true;
        resolve();
      };
      child.once('exit', ended);
      child.once('error', ended); // e.g. the binary cannot be run: reported below with the log
    });
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline && !(await ping(port))) await new Promise((resolve) => setTimeout(resolve, 25));
    if (!exited && (await ping(port))) {
      // If the test process exits without stop() (a crash, an interrupted run), take the server along.
      const orphanGuard = () => {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      };
      process.once('exit', orphanGuard);
      const stop = async () => {
        process.removeListener('exit', orphanGuard);
        if (!exited) {
          child.kill('SIGTERM');
          await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 3000))]);
          if (!exited) child.kill('SIGKILL');
        }
        rmSync(dir, { recursive: true, force: true });
      };
      return { url: `redis://127.0.0.1:${port}`, stop };
    }
    if (!exited) child.kill('SIGKILL');
    await exit;
    // Another process may have taken the port between our probe and the server's bind: try another.
    const portTaken = existsSync(log) && /Address already in use|Could not create server TCP/.test(readFileSync(log, 'utf8'));
    if (!portTaken || attempt >= 3) {
      const message = `Could not start Redis for the tests (${binary} on 127.0.0.1:${port}).${logTail()}`;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(message);
    }
  }
}
