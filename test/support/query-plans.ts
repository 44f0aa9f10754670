/**
 * What a store sends, and the plan the database picks for it: stores whose connection notes every
 * statement's SQL (and PostgreSQL's parameters), and EXPLAIN for one of them.
 */
import Database from 'better-sqlite3';
import type pg from 'pg';
import { postgresStore, sqliteStore } from '../../src/index.js';

/** A SQLite store whose connection notes the SQL of every statement it prepares. */
export function recordingSqlite(file: string, seen: string[]) {
  const database = new Database(file);
  const prepare = database.prepare.bind(database);
  database.prepare = ((source: string) => {
    seen.push(source);
    return prepare(source);
  }) as typeof database.prepare;
  return sqliteStore(database);
}

/**
 * A PostgreSQL store whose clients note the SQL (and, into `parameters`, the values) of every query they
 * send, given as text and values or as a named statement's `{ name, text, values }`.
 */
export function recordingPostgres(pool: pg.Pool, seen: string[], parameters?: Map<string, unknown[]>) {
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [first, second] = args as [unknown, unknown];
      const named = typeof first === 'object' && first !== null && 'text' in first ? (first as { text: string; values?: unknown[] }) : undefined;
      const text = typeof first === 'string' ? first : named?.text;
      if (text !== undefined) {
        seen.push(text);
        const values = named ? named.values : second;
        parameters?.set(text, Array.isArray(values) ? values : []);
      }
      return query(...args);
    };
  });
  return postgresStore(pool);
}

export function sqlitePlan(file: string, sql: string): string {
  const database = new Database(file, { readonly: true });
  try {
    const parameters = (sql.match(/\?/g) ?? []).map(() => 0);
    return (database.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...parameters) as Array<{ detail: string }>).map((row) => row.detail).join('\n');
  } finally {
    database.close();
  }
}

/** The plan PostgreSQL picks when a scan of the whole table is not an option (the test tables are tiny). */
export async function postgresPlan(pool: pg.Pool, sql: string, parameters: unknown[] = (sql.match(/\$\d+/g) ?? []).map(() => 0)): Promise<string> {
  const client = await pool.connect();
  try {
    await client.query('SET enable_seqscan = off');
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, parameters);
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  } finally {
    client.release();
  }
}
