/**
 * What the outbox costs an ORM transaction, in statements: one INSERT per event, sent inside the app's
 * transaction, and nothing around it (no SAVEPOINT / RELEASE, no read). Recorded through TypeORM's own
 * query logger, which sees every statement of the transaction, BEGIN and COMMIT included, on SQLite and
 * PostgreSQL.
 */
import { DataSource, EntitySchema, type Logger as TypeormLogger } from 'typeorm';
import { afterEach, describe, expect, it } from 'vitest';
import { attachTypeorm } from '../src/adapters/orm/typeorm-adapter.js';
import { outboxTable } from './support/events.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { testHooks } from './support/hooks.js';

const EVENTS = { 'book.added': 'Book.created' } as const;

const BookEntity = new EntitySchema<{ id: number; title: string; ownerId: string }>({
  name: 'Book',
  tableName: 'books',
  columns: { id: { type: 'integer', primary: true, generated: 'increment' }, title: { type: 'varchar' }, ownerId: { type: 'varchar' } },
});

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** TypeORM's logger interface, noting each statement's SQL. */
function recorder(seen: string[]): TypeormLogger {
  return {
    logQuery: (query) => void seen.push(query),
    logQueryError: () => undefined,
    logQuerySlow: () => undefined,
    logSchemaBuild: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
  };
}

for (const engine of ENGINES) {
  describe(`the outbox write in an ORM transaction on ${engine}`, () => {
    it('adds one INSERT per event inside the transaction, and no savepoint around it', async () => {
      const database = new TestDatabase(engine);
      await database.init();
      closers.push(() => database.close());
      const seen: string[] = [];
      const options = { entities: [BookEntity], synchronize: true, logging: true as const, logger: recorder(seen) };
      const dataSource =
        engine === 'sqlite' ? new DataSource({ type: 'better-sqlite3', database: database.url, ...options }) : new DataSource({ type: 'postgres', url: database.url, poolSize: 2, ...options });
      await dataSource.initialize();
      closers.push(() => dataSource.destroy());
      const { hooks, close } = await testHooks({ events: EVENTS, store: database.dialect() });
      closers.push(close);
      expect((await attachTypeorm(dataSource, hooks)).mode).toBe('transaction');

      seen.length = 0;
      await dataSource.transaction(async (manager) => {
        await manager.save(BookEntity, { title: 'Dune', ownerId: 'alice' });
        await manager.save(BookEntity, { title: 'Emma', ownerId: 'alice' });
      });
      const statements = seen.map((sql) => sql.trim().split(/\s+/).slice(0, 3).join(' ').toLowerCase());
      const outbox = statements.flatMap((statement, index) => (statement.startsWith(`insert into "${outboxTable(engine)}"`) ? [index] : []));
      const begin = statements.findIndex((statement) => statement.startsWith('begin') || statement.startsWith('start transaction'));
      const commit = statements.findIndex((statement) => statement.startsWith('commit'));
      expect(outbox).toHaveLength(2);
      expect(begin).toBeGreaterThanOrEqual(0);
      expect(outbox.every((index) => index > begin && index < commit)).toBe(true);
      expect(statements.filter((statement) => /savepoint|release/.test(statement))).toEqual([]);
      // Between BEGIN and COMMIT: the app's two INSERTs (PostgreSQL: with RETURNING), then the two outbox rows, nothing else.
      expect(commit - begin - 1).toBe(4);
    });
  });
}
