/**
 * A real, throwaway PostgreSQL 15 for tests (shared/SERVICES.md): installed from Debian's packages when
 * missing, a fresh cluster in a temp dir on 127.0.0.1, on a free port. Fails loudly with the server log.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { ensureDebianPackages, freePort, tail } from './system.js';

const PGBIN = '/usr/lib/postgresql/15/bin';

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/resthooks_test` */
  readonly url: string;
  /**
   * Stops the server at once, as a crash would (`pg_ctl stop -m immediate`: every connection is cut),
   * leaves it down for `downMs`, then starts the same cluster on the same port.
   */
  restart(downMs: number): Promise<void>;
  /** The two halves of `restart`: stop at once (every connection cut), and start again on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function run(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error) reject(Object.assign(new Error(`${[file, ...args].join(' ')} failed: ${error.message}\n${tail(output)}`), { output }));
      else resolve(output);
    });
  });
}

const ensureInstalled = () => ensureDebianPackages(['postgresql']);

/** Runs a PostgreSQL binary as the `postgres` user when we are root (initdb and postgres refuse root). */
function asPostgres(binary: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const path = join(PGBIN, binary);
  return process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', path, ...args], timeoutMs) : run(path, args, timeoutMs);
}

export interface StartPostgresOptions {
  /**
   * Keep `synchronous_commit` on, so a commit the server acknowledged survives `restart()` (an immediate
   * stop). Off by default for speed: the shared server is never stopped mid-run. fsync stays off either
   * way: the kernel keeps what was written when only the server process dies.
   */
  readonly durableCommits?: boolean;
  /**
   * Keep fsync and full-page writes on, as a production server runs (benchmarks); implies `durableCommits`.
   */
  readonly fsync?: boolean;
}

/**
 * A free port below Linux's ephemeral range (32768 and up). A server that `restart()`s must bind its port
 * again, and while it is down any outgoing connection on this machine may be given that port number.
 */
async function freePortBelowEphemeral(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

export async function startPostgres({ durableCommits = false, fsync = false }: StartPostgresOptions = {}): Promise<PostgresServer> {
  durableCommits ||= fsync;
  await ensureInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'log');
  const fail = (error: unknown): never => {
    const serverLog = existsSync(log) ? `\n--- ${log} ---\n${tail(readFileSync(log, 'utf8'))}` : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Could not start PostgreSQL for the tests: ${error instanceof Error ? error.message : String(error)}${serverLog}`);
  };
  try {
    if (process.getuid?.() === 0) {
      const uid = Number((await run('id', ['-u', 'postgres'], 5000)).trim());
      const gid = Number((await run('id', ['-g', 'postgres'], 5000)).trim());
      chownSync(dir, uid, gid);
    }
    await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  } catch (error) {
    fail(error);
  }
  let port = 0;
  const durability = fsync ? '' : `-c fsync=off${durableCommits ? '' : ' -c synchronous_commit=off'} -c full_page_writes=off `;
  const settings = () => `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 ${durability}-c max_connections=300`;
  const portTaken = () => existsSync(log) && /could not bind|Address already in use/.test(readFileSync(log, 'utf8'));
  for (let attempt = 1; ; attempt++) {
    port = durableCommits ? await freePortBelowEphemeral() : await freePort();
    try {
      await asPostgres('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', 'start', '-o', settings()], 90_000);
      break;
    } catch (error) {
      // Another process may have taken the port between our probe and the server's bind: try another.
      if (!portTaken() || attempt >= 3) fail(error);
    }
  }
  const kill = async () => {
    await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  };
  const start = async () => {
    // The same port: clients reconnect to the address they know. A socket of ours in TIME-WAIT does not
    // hold a listening port, but another process may bind it meanwhile; then wait and try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await asPostgres('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', 'start', '-o', settings()], 90_000);
        return;
      } catch (error) {
        if (!portTaken() || attempt >= 10) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };
  const restart = async (downMs: number) => {
    await kill();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await start();
  };
  const stop = async () => {
    await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const base = `postgres://postgres@127.0.0.1:${port}`;
  try {
    const client = new pg.Client({ connectionString: `${base}/postgres` });
    await client.connect();
    try {
      await client.query('create database resthooks_test');
    } finally {
      await client.end();
    }
  } catch (error) {
    await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    fail(error);
  }
  return { url: `${base}/resthooks_test`, restart, kill, start, stop };
}

/**
 * A fresh, empty database on the test server, so test files can run in parallel.
 * `drop()` removes it (terminating leftover connections).
 */
export async function createTestDatabase(serverUrl: string | undefined): Promise<{ url: string; drop(): Promise<void> }> {
  if (!serverUrl) {
    throw new Error('No PostgreSQL in this run: `npm run test:unit` starts none. Run the file with `npm test`, or list it in vitest.config.ts (NEEDS_SERVICES).');
  }
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new URL(serverUrl);
  admin.pathname = '/postgres';
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const withAdmin = async <T>(run: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  };
  await withAdmin((client) => client.query(`create database ${name}`));
  return {
    url: url.toString(),
    drop: () =>
      withAdmin(async (client) => {
        // pool.end() resolves before its sockets close; forcing the drop then would kill those backends
        // mid-goodbye and the clients would raise an unhandled 'error'. Give them a moment to leave first.
        for (let i = 0; i < 100; i++) {
          const { rows } = await client.query<{ n: string }>('select count(*) as n from pg_stat_activity where datname = $1', [name]);
          if (Number(rows[0]?.n) === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await client.query(`drop database if exists ${name} with (force)`);
      }),
  };
}
