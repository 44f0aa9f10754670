/**
 * Save-to-receive latency of an event written through the app's transaction (`{ tx }`), from COMMIT to the
 * request at a receiver on 127.0.0.1, with the default 1 s poll and no `notify()`: what the commit watch
 * (delivery/commit-watch.ts) saves. One event at a time, each waited for. SQLite (better-sqlite3, a
 * synchronous transaction with modelSync, and BEGIN … await … COMMIT with model()), and PostgreSQL (a pg
 * client) on a throwaway server.
 * Run: npx tsx bench/tx-wake.ts [events]
 */
import Database from 'better-sqlite3';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createHooks, postgresStore, sqliteStore, type HostExecutor, type StoreDialect } from '../src/index.js';
import { startPostgres } from '../test/support/postgres.js';
import { closeServer, listen } from '../test/support/receiver.js';

const EVENTS = Number(process.argv[2] ?? 30);

type Commit = (n: number) => Promise<void>;

async function measure(name: string, store: StoreDialect, commitOne: (hooks: ReturnType<typeof open>) => Commit): Promise<void> {
  let arrived: (() => void) | undefined;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.end();
      arrived?.();
    });
  });
  const target = await listen(server);
  const hooks = open(store);
  await hooks.start();
  await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target });
  const commit = commitOne(hooks);
  const latencies: number[] = [];
  for (let n = 1; n <= EVENTS; n++) {
    const received = new Promise<void>((resolve) => (arrived = resolve));
    const committed = await commitTimed(() => commit(n));
    await received;
    latencies.push(performance.now() - committed);
  }
  await hooks.close();
  await closeServer(server);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
  console.log(`${name.padEnd(44)} median ${at(0.5).padStart(7)} ms   p90 ${at(0.9).padStart(7)} ms   max ${at(1).padStart(7)} ms`);
}

/** Runs the commit; returns the time it completed. */
async function commitTimed(commit: () => Promise<void>): Promise<number> {
  await commit();
  return performance.now();
}

function open(store: StoreDialect) {
  return createHooks({ events: { 'book.added': 'Book.created' }, store, allowPrivateTargets: true, logger: false });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-tx-wake-'));
  const server = await startPostgres();
  try {
    const file = join(dir, 'app.db');
    const app = new Database(file);
    app.pragma('journal_mode = WAL');
    app.pragma('busy_timeout = 10000');
    await measure('sqlite, db.transaction() + modelSync', sqliteStore(new Database(file)), (hooks) => async (n) => {
      app.transaction(() => void hooks.modelSync('Book', 'created', { id: n, ownerId: 'alice' }, { tx: (sql, params) => app.prepare(sql).run(...params) }))();
    });
    await measure('sqlite, db.transaction() + modelSync + notify()', sqliteStore(new Database(file)), (hooks) => async (n) => {
      app.transaction(() => void hooks.modelSync('Book', 'created', { id: n, ownerId: 'alice' }, { tx: (sql, params) => app.prepare(sql).run(...params) }))();
      hooks.notify();
    });
    const tx: HostExecutor = (sql, params) => app.prepare(sql).run(...params);
    await measure('sqlite, BEGIN, await model({ tx }), COMMIT', sqliteStore(new Database(join(dir, 'app.db'))), (hooks) => async (n) => {
      app.exec('BEGIN IMMEDIATE');
      await hooks.model('Book', 'created', { id: n, ownerId: 'alice' }, { tx });
      app.exec('COMMIT');
    });
    app.close();
    const pool = new pg.Pool({ connectionString: server.url, max: 4 });
    await measure('postgres, BEGIN, await model({ tx }), COMMIT', postgresStore(new pg.Pool({ connectionString: server.url, max: 4 })), (hooks) => async (n) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await hooks.model('Book', 'created', { id: n, ownerId: 'alice' }, { tx: (sql, params) => client.query(sql, [...params]) });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    });
    await pool.end();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
