/**
 * The `{ tx }` path inside the host's own transaction: what the outbox row adds to the host's write, as a
 * ratio against the same transaction without resthooks, on SQLite and PostgreSQL.
 *
 * SQLite: the raw better-sqlite3 cases of bench/orm-insert.ts (the full run's adapter table; measured here
 * when the scenario runs alone). PostgreSQL: a node-postgres client on a throwaway server
 * (test/support/postgres.ts, `synchronous_commit` on), `BEGIN; INSERT … RETURNING id; COMMIT` against the
 * same with `await hooks.model(…, { tx })` before the COMMIT, the store on the same database. Rounds
 * alternate which side goes first; the ratio is the median over rounds of hooked / plain.
 * Alone: npm run bench -- --only tx-cost
 * @module
 */
import pg from 'pg';
import { createHooks, postgresStore, type HostExecutor } from '../src/index.js';
import { startPostgres } from '../test/support/postgres.js';
import { adapterCosts, type AdapterCost } from './orm-insert.js';
import { ORM_CASES } from './orm-insert-case.js';
import type { Scenario, ScenarioContext, ScenarioReport } from './scenario-report.js';
import { median } from './stats.js';

// Alone, the scenario measures only the cases it reports: the raw better-sqlite3 ones.
const RAW_CASES = ORM_CASES.filter((name) => name.startsWith('raw-'));

export interface TxCost {
  readonly engine: string;
  readonly transaction: string;
  readonly plainUs: number;
  readonly hookedUs: number;
  readonly ratio: number;
  readonly source: string;
}

/** µs per call of `plain` and `hooked` over `rounds` rounds of `perRound` calls, and the median ratio. */
async function interleaved(plain: (i: number) => Promise<unknown>, hooked: (i: number) => Promise<unknown>, rounds: number, perRound: number) {
  let next = 0;
  const time = async (run: (i: number) => Promise<unknown>) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) await run(next++);
    return Number(process.hrtime.bigint() - start) / 1e3 / perRound;
  };
  await time(plain);
  await time(hooked);
  const p: number[] = [];
  const h: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      p.push(await time(plain));
      h.push(await time(hooked));
    } else {
      h.push(await time(hooked));
      p.push(await time(plain));
    }
  }
  return { plainUs: median(p), hookedUs: median(h), ratio: median(h.map((x, i) => x / p[i]!)) };
}

/** PostgreSQL: one client's transactions, with and without the outbox row in them. */
export async function postgresTxCost({ rounds, perRound, url }: { rounds: number; perRound: number; url?: string }): Promise<TxCost> {
  // A server of its own unless given a database (the tests' server).
  const server = url === undefined ? await startPostgres({ durableCommits: true }) : undefined;
  const pool = new pg.Pool({ connectionString: url ?? server!.url, max: 4 });
  const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: postgresStore(pool), delivery: { pollInterval: 3_600_000 } });
  try {
    await hooks.start(); // migrates
    await hooks.stop(); // the write path only
    await pool.query('create table books (id serial primary key, title text not null, owner_id text not null)');
    const client = await pool.connect();
    try {
      const tx: HostExecutor = (sql, params) => client.query(sql, [...params]);
      const insert = 'insert into books (title, owner_id) values ($1, $2) returning id';
      const plain = async (i: number) => {
        await client.query('BEGIN');
        await client.query(insert, [`Book ${i}`, 'alice']);
        await client.query('COMMIT');
      };
      let hookedCalls = 0;
      const hooked = async (i: number) => {
        hookedCalls++;
        await client.query('BEGIN');
        const { rows } = await client.query<{ id: number }>(insert, [`Book ${i}`, 'alice']);
        const result = await hooks.model('Book', 'created', { id: rows[0]!.id, title: `Book ${i}`, ownerId: 'alice' }, { tx });
        if (result.status !== 'queued') throw new Error(`hooks.model() returned ${JSON.stringify(result)}`);
        await client.query('COMMIT');
      };
      const measured = await interleaved(plain, hooked, rounds, perRound);
      const { rows } = await client.query<{ n: string }>('select count(*) as n from resthooks_events');
      // Every hooked transaction committed its event, or the ratio means nothing.
      if (Number(rows[0]!.n) !== hookedCalls) throw new Error(`tx cost: ${rows[0]!.n} events recorded for ${hookedCalls} transactions`);
      return { engine: 'PostgreSQL 15', transaction: 'node-postgres client: `BEGIN; INSERT … RETURNING id; await hooks.model(…, { tx }); COMMIT`', source: 'this scenario', ...measured };
    } finally {
      client.release();
    }
  } finally {
    await hooks.close(); // ends the pool too: the store owns it
    await server?.stop();
  }
}

/** SQLite: the raw better-sqlite3 rows of the adapter table. */
export function sqliteTxCosts(adapters: readonly AdapterCost[], source: string): TxCost[] {
  const raw = adapters.filter((a) => a.adapter.startsWith('raw better-sqlite3'));
  if (raw.length === 0) throw new Error('tx cost: the adapter table has no raw better-sqlite3 rows');
  return raw.map((a) => ({ engine: 'SQLite (better-sqlite3, WAL)', transaction: `${a.adapter}: ${a.insert}`, plainUs: a.plainUs, hookedUs: a.hookedUs, ratio: a.ratio, source }));
}

export function txCostReport(rows: readonly TxCost[]): ScenarioReport {
  const verdict = `\`{ tx }\` cost: ${rows.map((r) => `${r.engine.split(' ')[0]} ${r.ratio.toFixed(2)}×`).join(', ')} the host's own transaction.`;
  return {
    name: 'tx-cost',
    verdicts: [verdict],
    lines: [
      '## The `{ tx }` path inside the host\'s transaction: SQLite and PostgreSQL',
      '',
      'What the outbox row written through the host\'s own transaction (`{ tx }`) adds to that transaction: the same transaction with and',
      'without `hooks.model(…, { tx })`, the store in the same database, the dispatcher stopped (the write path only). SQLite: the raw',
      'better-sqlite3 cases of the adapter table above (bench/orm-insert.ts). PostgreSQL: a node-postgres client on a throwaway PostgreSQL 15',
      'on 127.0.0.1 (`synchronous_commit` on, `fsync` off), one book row per transaction, rounds alternating which side goes first; the ratio',
      'is the median over rounds of hooked / plain (bench/tx-cost.ts).',
      '',
      '| engine | transaction | without resthooks µs | with `{ tx }` µs | ratio | measured by |',
      '|---|---|---:|---:|---:|---|',
      ...rows.map((r) => `| ${r.engine} | ${r.transaction} | ${r.plainUs.toFixed(1)} | ${r.hookedUs.toFixed(1)} | ${r.ratio.toFixed(2)}× | ${r.source} |`),
      '',
      verdict,
    ],
  };
}

export const txCostScenario: Scenario = {
  name: 'tx-cost',
  async run(context: ScenarioContext) {
    const sqlite = context.adapterCosts
      ? sqliteTxCosts(context.adapterCosts, 'the adapter table of this run')
      : sqliteTxCosts(await adapterCosts(7, () => undefined, RAW_CASES), 'bench/orm-insert.ts, its raw better-sqlite3 cases, 7 rounds, in this scenario');
    const postgres = await postgresTxCost({ rounds: 21, perRound: 200 });
    context.log(`  tx cost: PostgreSQL ${postgres.plainUs.toFixed(1)} µs plain, ${postgres.hookedUs.toFixed(1)} µs with { tx }, ${postgres.ratio.toFixed(2)}×`);
    return txCostReport([...sqlite, postgres]);
  },
};
