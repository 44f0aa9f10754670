/**
 * PostgreSQL keeps a named statement's plan per connection, and after a few executions a generic plan
 * (made without the parameters' values) whatever the table looked like then. Every statement that acts
 * on deliveries, events or subscriptions it names by id must reach them by key in that generic plan: on
 * an empty table, and on one of many rows with most of them recorded since (their entries still in the
 * partial due index until a vacuum), with and without statistics. A scan of the due index there visits
 * every delivery recorded since the last vacuum; a sequential scan, the whole table.
 *
 * The statements are the store's own: the set-based ones from their module, the others as a store sends
 * them (its connection notes them), prepared with the types PostgreSQL infers from them, as pg sends them.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../src/index.js';
import { newDeliveryRow } from '../src/store/rows.js';
import type { EventTable, SubscriptionTable } from '../src/store/schema.js';
import { fanOutPassStatement, fanOutPassWithRecordsStatement, fanOutStatement, recordStatement, statementName, undoFanOutPassStatement, type SetBasedRecord } from '../src/store/postgres/set-based-writes.js';
import { TestDatabase } from './support/database.js';
import { recordingPostgres } from './support/query-plans.js';

const T0 = 1_700_000_000_000;
const pad = (n: number) => String(n).padStart(8, '0');
const D = 'resthooks_deliveries';
const TABLES = ['resthooks_deliveries', 'resthooks_events', 'resthooks_subscriptions', 'resthooks_attempts'];
const LOADED = { subscriptions: 2_000, deliveries: 50_000, recorded: 45_000 };

function subscriptionRow(i: number): SubscriptionTable {
  return {
    id: `sub_${pad(i)}`, owner: 'alice', event: 'book.added', target: `https://example.com/${i}`, active: 1, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
    previous_secrets: null, metadata: null, disabled_reason: null, failing_since: null, max_per_second: null, created_at: T0, updated_at: T0,
  };
}
function eventRow(i: number): EventTable {
  return { id: `evt_${pad(i)}`, name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: `{"id":${i}}`, body: null, status: 'done', error: null, created_at: T0 };
}

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly 'Index Name'?: string;
  readonly 'Index Cond'?: string;
  readonly Plans?: readonly PlanNode[];
}

/**
 * Each node that reads a table, as `Node Type on table [using index]` (a bitmap heap scan names its index
 * scans' indexes); an index read with no condition, all of it, is named `index (whole)`.
 */
function tableReads(node: PlanNode, into: string[] = []): string[] {
  const named = (n: PlanNode) => `${n['Index Name']}${n['Index Cond'] === undefined ? ' (whole)' : ''}`;
  const indexes = (n: PlanNode): string[] => [...(n['Index Name'] ? [named(n)] : []), ...(n.Plans ?? []).flatMap(indexes)];
  if (node['Relation Name'] !== undefined && !/^(Insert|Update|Delete|ModifyTable)$/.test(node['Node Type'])) {
    const used = node['Node Type'] === 'Bitmap Heap Scan' ? indexes(node) : node['Index Name'] ? [named(node)] : [];
    into.push(`${node['Node Type']} on ${node['Relation Name']}${used.length > 0 ? ` using ${used.join(', ')}` : ''}`);
  }
  if (node['Node Type'] !== 'Bitmap Heap Scan') for (const child of node.Plans ?? []) tableReads(child, into);
  return into;
}

/** The generic plan PostgreSQL caches for `text` (the plan it uses for every execution under force_generic_plan). */
async function genericPlan(pool: pg.Pool, text: string): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('set plan_cache_mode = force_generic_plan');
    await client.query(`prepare checked as ${text}`);
    try {
      const { rows } = await client.query<{ n: number }>(`select cardinality(parameter_types) as n from pg_prepared_statements where name = 'checked'`);
      const values = Array.from({ length: rows[0]!.n }, () => 'null').join(', ');
      const { rows: plan } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (format json) execute checked(${values})`);
      return tableReads(plan[0]!['QUERY PLAN'][0]!.Plan);
    } finally {
      await client.query('deallocate checked');
    }
  } finally {
    client.release();
  }
}

interface Checked {
  readonly name: string;
  readonly text: string;
  /** The values it was sent with, for the plan made with them. */
  readonly parameters: readonly unknown[];
  /** It names deliveries by id: at least one read of them by the primary key. */
  readonly byDeliveryId: boolean;
  /** Reads of the due index it is for (the claim's scan of due deliveries); every other one is a failure. */
  readonly dueScans?: number;
}

/** The plan PostgreSQL makes for `text` with its parameters' values (an unnamed statement's, planned at each execution). */
async function customPlan(pool: pg.Pool, text: string, parameters: readonly unknown[]): Promise<string[]> {
  const { rows } = await pool.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (format json) ${text}`, [...parameters]);
  return tableReads(rows[0]!['QUERY PLAN'][0]!.Plan);
}

/** What is wrong with the plan: reads of a whole table, of the due index, or deliveries not read by key. */
function faults(statement: Checked, reads: readonly string[]): string[] {
  const found: string[] = [];
  for (const read of reads) if (/^Seq Scan on /.test(read) && TABLES.some((t) => read.endsWith(` on ${t}`))) found.push(`whole table: ${read}`);
  for (const read of reads) if (read.includes('(whole)')) found.push(`whole index: ${read}`);
  const dueScans = reads.filter((read) => read.includes('resthooks_deliveries_due')).length;
  if (dueScans !== (statement.dueScans ?? 0)) found.push(`${dueScans} reads of the due index (expected ${statement.dueScans ?? 0})`);
  if (statement.byDeliveryId && !reads.some((read) => read.includes(` on ${D} `) && read.includes('resthooks_deliveries_pkey'))) found.push('deliveries not read by primary key');
  return found;
}

const sent = (statement: { sql: string; parameters: readonly unknown[] }) => ({ text: statement.sql, parameters: statement.parameters });

const record: SetBasedRecord = {
  claim: { attempt: 1, leaseUntil: T0 + 60_000 },
  attempt: { id: 'att_1', number: 1, started_at: T0, duration_ms: 3, status_code: 503, response_excerpt: 'x', error: 'HTTP 503', outcome: 'retry' },
  delivery: { id: `dlv_${pad(49_000)}`, status: 'pending', attempts: 1, due_at: T0 + 1_000, last_status_code: 503, last_error: 'HTTP 503' },
  streak: { subscriptionId: `sub_${pad(1)}`, failed: true },
};

// A first attempt that delivered: a batch of only such records takes a statement of its own.
const delivered: SetBasedRecord = {
  claim: { attempt: 1, leaseUntil: T0 + 60_000 },
  attempt: { id: 'att_2', number: 1, started_at: T0, duration_ms: 3, status_code: 200, response_excerpt: 'ok', error: null, outcome: 'delivered' },
  delivery: { id: `dlv_${pad(49_001)}`, status: 'delivered', attempts: 1, due_at: 0, last_status_code: 200, last_error: null },
  streak: { subscriptionId: `sub_${pad(1)}`, failed: false },
};

describe('PostgreSQL statements that name rows by id, as planned once and cached', () => {
  const databases: TestDatabase[] = [];
  const statements: Checked[] = [
    { name: 'record batch', ...sent(recordStatement([record], T0, 1_000, 'failing')), byDeliveryId: true },
    { name: 'fan-out batch', ...sent(fanOutStatement([`evt_${pad(7)}`], [])), byDeliveryId: false },
    { name: 'fan-out pass', ...sent(fanOutPassStatement({ events: 10, deliveries: 10, now: T0, leaseUntil: T0, idPrefix: 'dlv_' })), byDeliveryId: false },
    {
      name: 'fan-out pass with a record batch',
      ...sent(fanOutPassWithRecordsStatement({ events: 10, deliveries: 10, now: T0, leaseUntil: T0, idPrefix: 'dlv_' }, { records: [record], now: T0, disableAfterMs: 1_000, disabledReason: 'failing' })),
      byDeliveryId: true,
    },
    { name: 'record batch of deliveries', ...sent(recordStatement([delivered], T0, 1_000, 'failing')), byDeliveryId: true },
    {
      name: 'fan-out pass with a record batch of deliveries',
      ...sent(fanOutPassWithRecordsStatement({ events: 10, deliveries: 10, now: T0, leaseUntil: T0, idPrefix: 'dlv_' }, { records: [delivered], now: T0, disableAfterMs: 1_000, disabledReason: 'failing' })),
      byDeliveryId: true,
    },
    { name: 'undo of a fan-out pass', ...sent(undoFanOutPassStatement([`dlv_${pad(49_000)}`], [`evt_${pad(49_000)}`])), byDeliveryId: true },
  ];
  let empty: pg.Pool;
  let loaded: pg.Pool;

  beforeAll(async () => {
    // The statements a store sends for claims, their lease and their release, noted on a database of a few rows.
    const seen: string[] = [];
    const values = new Map<string, unknown[]>();
    const noted = new TestDatabase('postgres');
    databases.push(noted);
    await noted.init();
    const store = await noted.migrated(recordingPostgres(noted.pool(), seen, values));
    await store.insertSubscription(subscriptionRow(1));
    for (let i = 1; i <= 3; i++) await store.append(eventRow(i), [{ ...newDeliveryRow(`evt_${pad(i)}`, 'sub_00000001', T0), id: `dlv_${i}` }]);
    const sentSince = (from: number, what: string) => {
      const texts = [...new Set(seen.slice(from))].filter((text) => /resthooks_deliveries/.test(text));
      expect(texts.length, `${what}: ${texts.join('\n')}`).toBeGreaterThan(0);
      return texts.map((text) => ({ text, parameters: values.get(text)! }));
    };
    let from = seen.length;
    const claims = await store.claimDue(10, T0, T0 + 60_000);
    expect(claims).toHaveLength(3);
    const [claim, load] = sentSince(from, 'claim');
    statements.push({ name: 'claim of due deliveries', ...claim!, byDeliveryId: true, dueScans: 1 });
    statements.push({ name: 'read of claims', ...load!, byDeliveryId: true });
    from = seen.length;
    expect(await store.extendLease(claims[0]!, T0 + 120_000, T0)).toBe(true);
    statements.push({ name: 'lease extension', ...sentSince(from, 'lease extension')[0]!, byDeliveryId: true });
    from = seen.length;
    expect(await store.releaseClaims([{ id: claims[1]!.id, claim: claims[1]!, dueAt: T0 }], T0)).toEqual({ stale: [] });
    statements.push({ name: 'release of a claim', ...sentSince(from, 'release')[0]!, byDeliveryId: true });
    await store.destroy();

    const fresh = new TestDatabase('postgres');
    databases.push(fresh);
    await fresh.init();
    await (await fresh.migrated()).destroy();
    empty = fresh.pool({ max: 1 });

    const big = new TestDatabase('postgres');
    databases.push(big);
    await big.init();
    await (await big.migrated()).destroy();
    loaded = big.pool({ max: 1 });
    // No vacuum and no analyze but the test's own: the recorded deliveries' entries stay in the due index.
    for (const table of TABLES) await loaded.query(`alter table ${table} set (autovacuum_enabled = false)`);
    await loaded.query(
      `insert into resthooks_subscriptions (id, owner, event, target, active, secret, created_at, updated_at)
       select 'sub_' || lpad(i::text, 8, '0'), 'alice', 'event.' || (i % 200), 'https://example.com/' || i, 1, 'whsec_x', ${T0}, ${T0} from generate_series(1, $1::int) i`,
      [LOADED.subscriptions],
    );
    await loaded.query(
      `insert into resthooks_events (id, name, owner, all_owners, data, status, created_at, next_fanout_at, fanout_attempts, finder_failures)
       select 'evt_' || lpad(i::text, 8, '0'), 'event.' || (i % 200), 'alice', 0, '{}', 'done', ${T0} + i, ${T0} + i, 0, 0 from generate_series(1, $1::int) i`,
      [LOADED.deliveries],
    );
    await loaded.query(
      `insert into resthooks_deliveries (id, event_id, subscription_id, status, attempts, due_at, created_at, updated_at)
       select 'dlv_' || lpad(i::text, 8, '0'), 'evt_' || lpad(i::text, 8, '0'), 'sub_' || lpad((i % $2::int + 1)::text, 8, '0'), 'in_flight', 0, ${T0} + i, ${T0}, ${T0}
       from generate_series(1, $1::int) i`,
      [LOADED.deliveries, LOADED.subscriptions],
    );
    await loaded.query(`update resthooks_deliveries set status = 'delivered', attempts = 1 where id <= 'dlv_' || lpad($1::text, 8, '0')`, [LOADED.recorded]);
  }, 180_000);

  afterAll(async () => {
    for (const database of databases) await database.close();
  });

  const check = async (pool: pg.Pool, plan: 'generic' | 'custom' = 'generic') => {
    const wrong: Record<string, { faults: string[]; reads: string[] }> = {};
    for (const statement of statements) {
      const reads = plan === 'generic' ? await genericPlan(pool, statement.text) : await customPlan(pool, statement.text, statement.parameters);
      const found = faults(statement, reads);
      if (found.length > 0) wrong[statement.name] = { faults: found, reads };
    }
    expect(wrong).toEqual({});
  };

  it('on an empty table (never analyzed)', async () => {
    expect(statements).toHaveLength(11);
    await check(empty);
  });

  it('on a table of many rows, most recorded since the last vacuum, never analyzed', async () => {
    await check(loaded);
  });

  it('on the same table once analyzed', async () => {
    for (const table of TABLES) await loaded.query(`analyze ${table}`);
    await check(loaded);
    // An unnamed statement is planned at each execution with its values: so is a named one at first.
    await check(loaded, 'custom');
  });
});

describe('the set-based statements on a connection', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = new TestDatabase('postgres');
    await db.init();
  });
  afterAll(() => db.close());

  /** The plans of eight fan-out passes on one connection (so that all run on the one whose prepared statements are read). */
  async function passPlans(genericPlans?: boolean) {
    const pool = db.pool({ max: 1 });
    const store = await db.migrated(postgresStore(pool, genericPlans === undefined ? {} : { genericPlans }));
    for (let i = 0; i < 8; i++) await store.fanOutPass(10, T0, { capacity: 10, leaseUntil: T0 + 60_000 });
    const pass = statementName(fanOutPassStatement({ events: 10, deliveries: 10, now: T0, leaseUntil: T0, idPrefix: 'dlv_' }).sql);
    const { rows } = await pool.query<{ generic_plans: string; custom_plans: string }>('select generic_plans, custom_plans from pg_prepared_statements where name = $1', [pass]);
    return { store, plans: rows.map((r) => ({ generic: Number(r.generic_plans), custom: Number(r.custom_plans) })) };
  }

  it('are planned once, generically, from their first execution; Kysely\'s queries as PostgreSQL plans by default', async () => {
    const { store, plans } = await passPlans();
    try {
      expect(plans).toEqual([{ generic: 8, custom: 0 }]);
      // The store's other queries (Kysely's) on that connection run under the connection's own setting.
      const { rows: mode } = await sql<{ mode: string }>`select current_setting('plan_cache_mode') as mode`.execute(store.db);
      expect(mode).toEqual([{ mode: 'auto' }]);
    } finally {
      await store.destroy();
    }
  });

  it('leave an app that shares the pool its own plan mode, and run generically again after the app\'s queries', async () => {
    const pool = db.pool({ max: 1 });
    const store = await db.migrated(postgresStore(pool));
    const mode = async () => (await pool.query<{ mode: string }>(`select current_setting('plan_cache_mode') as mode`)).rows[0]!.mode;
    const modes: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        await store.fanOutPass(10, T0, { capacity: 10, leaseUntil: T0 + 60_000 });
        modes.push(await mode());
      }
      // The app's transaction on the connection the passes ran on, with a setting of its own.
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query(`set local plan_cache_mode = force_custom_plan`);
        modes.push((await client.query<{ mode: string }>(`select current_setting('plan_cache_mode') as mode`)).rows[0]!.mode);
        await client.query('commit');
      } finally {
        client.release();
      }
      await store.fanOutPass(10, T0, { capacity: 10, leaseUntil: T0 + 60_000 });
      modes.push(await mode());
      const pass = statementName(fanOutPassStatement({ events: 10, deliveries: 10, now: T0, leaseUntil: T0, idPrefix: 'dlv_' }).sql);
      const { rows } = await pool.query<{ generic_plans: string; custom_plans: string }>('select generic_plans, custom_plans from pg_prepared_statements where name = $1', [pass]);
      expect(modes).toEqual(['auto', 'auto', 'auto', 'auto', 'force_custom_plan', 'auto']);
      expect(rows.map((r) => ({ generic: Number(r.generic_plans), custom: Number(r.custom_plans) }))).toEqual([{ generic: 5, custom: 0 }]);
    } finally {
      await store.destroy();
    }
  });

  it('and the saves between them run in one plan mode: the mode is set once on a connection that only passes and saves use', async () => {
    const seen: string[] = [];
    const store = await db.migrated(recordingPostgres(db.pool({ max: 1 }), seen));
    try {
      for (let i = 0; i < 4; i++) {
        await store.append({ ...eventRow(100 + i), status: 'pending' });
        await store.fanOutPass(10, T0, { capacity: 10, leaseUntil: T0 + 60_000 });
      }
      expect(seen.filter((text) => /plan_cache_mode/.test(text))).toEqual(['set plan_cache_mode = force_generic_plan']);
    } finally {
      await store.destroy();
    }
  });

  it('with `genericPlans: false`, are planned as PostgreSQL plans by default: with their values for the first five executions', async () => {
    const { store, plans } = await passPlans(false);
    await store.destroy();
    expect(plans).toEqual([{ generic: 3, custom: 5 }]);
  });
});
