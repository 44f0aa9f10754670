/**
 * How the SQLite store hands parameters to better-sqlite3, on a real file: as the statement's arguments
 * (an array's elements are read by the driver through V8's generic property lookup, ~50 ns each, and the
 * fan-out's insert and the record's update bind 11 and 14 per delivery), and as one array past a few
 * hundred, so that a long `in (…)` list never becomes thousands of call arguments. Both bind alike.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteStore } from '../src/index.js';
import type { StoreDialect } from '../src/store/store-dialect.js';
import { notingDatabase } from './support/statement-runs.js';

describe('SQLite statement parameters', () => {
  let dir: string;
  let calls: Array<{ sql: string; args: number }>;
  let dialect: StoreDialect;
  let database: Database.Database;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'resthooks-parameters-'));
    calls = [];
    database = notingDatabase(join(dir, 'hooks.db'), (sql, args) => calls.push({ sql, args: args.length }));
    dialect = sqliteStore(database, { checkpointer: false });
    await dialect.executeBatch([{ sql: 'create table t (a integer, b text, c integer)', parameters: [] }]);
  });
  afterEach(() => {
    database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds a statement’s few parameters as its arguments, writes and reads alike', async () => {
    const insert = 'insert into t (a, b, c) values (?, ?, ?)';
    const [written] = await dialect.executeBatch([{ sql: insert, parameters: [1, 'one', null] }]);
    expect(written!.changes).toBe(1);
    const read = 'select a, b, c from t where a = ? and b = ?';
    const [result] = await dialect.executeBatch([{ sql: read, parameters: [1, 'one'] }]);
    expect(result!.rows).toEqual([{ a: 1, b: 'one', c: null }]);
    expect(await dialect.readArrays!({ sql: read, parameters: [1, 'one'] })).toEqual([[1, 'one', null]]);
    expect(calls.filter((call) => call.sql === insert || call.sql === read).map((call) => call.args)).toEqual([3, 2, 2]);
  });

  it('binds a long list of parameters as one array, with the same result', async () => {
    const values = Array.from({ length: 400 }, (_, i) => i);
    const insert = `insert into t (a) values ${values.map(() => '(?)').join(', ')}`;
    const [written] = await dialect.executeBatch([{ sql: insert, parameters: values }]);
    expect(written!.changes).toBe(400);
    const read = `select count(*) as n, sum(a) as total from t where a in (${values.map(() => '?').join(', ')})`;
    const [result] = await dialect.executeBatch([{ sql: read, parameters: values }]);
    expect(result!.rows).toEqual([{ n: 400, total: (399 * 400) / 2 }]);
    expect(await dialect.readArrays!({ sql: read, parameters: values })).toEqual([[400, (399 * 400) / 2]]);
    expect(calls.filter((call) => call.sql === insert || call.sql === read).map((call) => call.args)).toEqual([1, 1, 1]);
  });
});
