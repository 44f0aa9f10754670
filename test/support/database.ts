import Database from 'better-sqlite3';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { postgresStore, sqliteStore, type StoreDialect } from '../../src/index.js';
import { KyselyStore } from '../../src/store/kysely-store.js';
import type { PostgresStoreDialectOptions } from '../../src/store/postgres/postgres-store-dialect.js';
import { tempDir } from './hooks.js';
import { createTestDatabase } from './postgres.js';

export type Engine = 'sqlite' | 'postgres';

/**
 * The engines a store-backed test runs on: both, or SQLite alone in the unit scope
 * (`npm run test:unit`, which starts no PostgreSQL).
 */
export const ENGINES: readonly Engine[] = process.env.RESTHOOKS_TEST_SCOPE === 'unit' ? ['sqlite'] : ['sqlite', 'postgres'];

/** A fresh database: a temp SQLite file or a new PostgreSQL database; any number of connections to it. */
export class TestDatabase {
  readonly #closers: Array<() => Promise<void> | void> = [];
  #location = '';

  constructor(readonly engine: Engine) {}

  async init(): Promise<void> {
    if (this.engine === 'sqlite') {
      const dir = tempDir();
      this.#location = join(dir.path, 'store.db');
      this.#closers.push(() => dir.cleanup());
    } else {
      const database = await createTestDatabase(inject('postgresUrl'));
      this.#location = database.url;
      this.#closers.push(() => database.drop());
    }
  }

  get url(): string {
    return this.#location;
  }

  pool(config: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ connectionString: this.#location, max: 4, ...config });
    this.#closers.unshift(async () => {
      if (!pool.ended) await pool.end();
    });
    return pool;
  }

  /** A new connection (SQLite) or pool (PostgreSQL) to the same database. */
  dialect(options: PostgresStoreDialectOptions = {}, poolConfig: pg.PoolConfig = {}): StoreDialect {
    if (this.engine === 'postgres') return postgresStore(this.pool(poolConfig), options);
    const db = new Database(this.#location);
    this.#closers.unshift(() => {
      if (db.open) db.close();
    });
    return sqliteStore(db);
  }

  store(): KyselyStore {
    return new KyselyStore(this.dialect());
  }

  async migrated(dialect: StoreDialect = this.dialect()): Promise<KyselyStore> {
    const store = new KyselyStore(dialect);
    const { error } = await store.migrate();
    if (error) throw error;
    return store;
  }

  async close(): Promise<void> {
    for (const close of this.#closers) await close();
  }
}
