/**
 * A real, throwaway Redis 7 for tests (shared/SERVICES.md): installed from Debian's packages when
 * missing, started on 127.0.0.1 at a free port, without persistence unless asked, in a temp dir. Fails loudly,
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
  /**
   * Kills the server (SIGKILL: no save, every connection cut), leaves it down for `downMs`, starts it again on
   * the same port: empty, or with what its append-only file holds (`appendOnly`).
   */
  restart(downMs: number): Promise<void>;
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

export interface StartRedisOptions {
  /**
   * Persist as a deployment would (docs/distributed.md): an append-only file, written before each reply and
   * fsynced every second. A SIGKILL of the server alone loses nothing it acknowledged (the kernel keeps the
   * writes), so `restart()` brings the jobs back.
   */
  readonly appendOnly?: boolean;
}

export async function startRedis({ appendOnly = false }: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = await redisServerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-redis-'));
  const log = join(dir, 'redis.log');
  const logTail = () => (existsSync(log) ? `\n--- ${log} ---\n${tail(readFileSync(log, 'utf8'))}` : '');
  /** Starts redis-server on `port`; resolves once it answers PING, or once it has exited (it could not start). */
  const launch = async (port: number) => {
    // A child, not daemonized: it dies with its stop() and never outlives the run as an orphan daemon.
    const child = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...(appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']), '--dir', dir, '--logfile', log, '--daemonize', 'no'],
      { stdio: 'ignore' },
    );
    const server = { child, exited: false, up: false, exit: Promise.resolve() };
    server.exit = new Promise<void>((resolve) => {
      const ended = () => {
        server.exited = true;
        resolve();
      };
      child.once('exit', ended);
      child.once('error', ended); // e.g. the binary cannot be run: reported below with the log
    });
    const deadline = Date.now() + 10_000;
    while (!server.exited && Date.now() < deadline && !(await ping(port))) await new Promise((resolve) => setTimeout(resolve, 25));
    server.up = !server.exited && (await ping(port));
    if (!server.up && !server.exited) child.kill('SIGKILL');
    if (!server.up) await server.exit;
    return server;
  };
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    let server = await launch(port);
    if (server.up) {
      // If the test process exits without stop() (a crash, an interrupted run), take the server along.
      const orphanGuard = () => {
        server.child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      };
      process.once('exit', orphanGuard);
      const stop = async () => {
        process.removeListener('exit', orphanGuard);
        if (!server.exited) {
          server.child.kill('SIGTERM');
          await Promise.race([server.exit, new Promise((resolve) => setTimeout(resolve, 3000))]);
          if (!server.exited) server.child.kill('SIGKILL');
        }
        rmSync(dir, { recursive: true, force: true });
      };
      const restart = async (downMs: number) => {
        server.child.kill('SIGKILL');
        await server.exit;
        await new Promise((resolve) => setTimeout(resolve, downMs));
        // Redis binds with SO_REUSEADDR; another process may still take the port meanwhile (then this throws).
        for (let tries = 1; ; tries++) {
          server = await launch(port);
          if (server.up) return;
          if (tries >= 10) throw new Error(`Could not restart Redis on 127.0.0.1:${port}.${logTail()}`);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      };
      return { url: `redis://127.0.0.1:${port}`, restart, stop };
    }
    // Another process may have taken the port between our probe and the server's bind: try another.
    const portTaken = existsSync(log) && /Address already in use|Could not create server TCP/.test(readFileSync(log, 'utf8'));
    if (!portTaken || attempt >= 3) {
      const message = `Could not start Redis for the tests (${binary} on 127.0.0.1:${port}).${logTail()}`;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(message);
    }
  }
}
