import { describe, expect, it } from 'vitest';
import { isPostgresUnavailable } from './postgres/postgres-store-dialect.js';
import { isSqliteUnavailable } from './sqlite/sqlite-store-dialect.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('unavailable or refused: whether a failed write is retried whole or taken apart', () => {
  it('SQLite: busy, locked, full, I/O and read-only are unavailable (extended codes too); constraints and oversized rows are refusals', () => {
    for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_CANTOPEN', 'SQLITE_READONLY_DBMOVED']) {
      expect(isSqliteUnavailable(withCode(code)), code).toBe(true);
    }
    for (const code of ['SQLITE_CONSTRAINT_CHECK', 'SQLITE_CONSTRAINT_TRIGGER', 'SQLITE_TOOBIG', 'SQLITE_MISMATCH', 'SQLITE_BUSYNESS']) {
      expect(isSqliteUnavailable(withCode(code)), code).toBe(false);
    }
    expect(isSqliteUnavailable(new Error('no code'))).toBe(false);
    expect(isSqliteUnavailable(undefined)).toBe(false);
  });

  it('PostgreSQL: lost connections, shutdowns, timeouts, deadlocks and serialization failures are unavailable; bad data and constraints are refusals', () => {
    for (const code of ['08006', '08003', '57P01', '57P03', '53300', '53100', '40001', '40P01', '55P03', '57014', 'ECONNREFUSED', 'ECONNRESET']) {
      expect(isPostgresUnavailable(withCode(code)), code).toBe(true);
    }
    expect(isPostgresUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isPostgresUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    for (const code of ['22021', '22P05', '23505', '23514', 'P0001', '42P01']) {
      expect(isPostgresUnavailable(withCode(code, 'refused')), code).toBe(false);
    }
    expect(isPostgresUnavailable('a string')).toBe(false);
  });
});
