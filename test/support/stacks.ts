/**
 * The three stacks resthooks runs on in production, for suites that must hold on each of them
 * unchanged: SQLite + the in-process queue (the embedded default), PostgreSQL + the in-process queue
 * (one machine), and PostgreSQL + BullMQ on Redis (the distributed engine; here one process relays and
 * works). The unit scope (`npm run test:unit`) starts no server, so there it is SQLite alone.
 */
import Database from 'better-sqlite3';
import { inject } from 'vitest';
import type { HooksOptions, HostExecutor, StoreDialect } from '../../src/index.js';
import { bullmqQueue } from '../../src/queue/bullmq/index.js';
import { ENGINES, TestDatabase, type Engine } from './database.js';
import { testHooks, type TestHooks } from './hooks.js';

export type QueueKind = 'in-process' | 'bullmq';

/** A transaction of the app's own, on its own connection to the stack's database. */
export interface HostTransaction {
  readonly tx: HostExecutor;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

export interface Stack {
  readonly name: string;
  readonly engine: Engine;
  readonly queue: QueueKind;
  /** A fresh, empty database on this stack's engine; `close()` it after every hooks on it. */
  database(): Promise<TestDatabase>;
  /**
   * Hooks on this stack (loopback targets allowed, the millisecond schedule of `testHooks`), on
   * `database` when given (other hooks may share it) or else on a fresh one that `close()` drops.
   */
  hooks<const E extends string>(
    options: Omit<HooksOptions<E>, 'store' | 'queue'>,
    settings?: { start?: boolean; database?: TestDatabase },
  ): Promise<TestHooks<E>>;
  /** Opens a transaction on a new connection to `database`, as an app's ORM would. */
  begin(database: TestDatabase): Promise<HostTransaction>;
}

let queues = 0;

function stack(engine: Engine, queue: QueueKind): Stack {
  const database = async () => {
    const db = new TestDatabase(engine);
    await db.init();
    return db;
  };
  return {
    name: `${engine} + ${queue}`,
    engine,
    queue,
    database,
    async hooks(options, { start = true, database: shared } = {}) {
      const db = shared ?? (await database());
      const store: StoreDialect = db.dialect();
      // A queue name per hooks: BullMQ jobs of one test never reach another test's workers.
      const queueFactory = queue === 'bullmq' ? bullmqQueue({ connection: inject('redisUrl'), queueName: `resthooks-stack-${process.pid}-${++queues}` }) : undefined;
      const made = await testHooks({ ...options, store, ...(queueFactory ? { queue: queueFactory } : {}) }, { start });
      return {
        ...made,
        async close() {
          await made.close();
          if (!shared) await db.close();
        },
      };
    },
    async begin(db) {
      if (engine === 'sqlite') {
        const connection = new Database(db.url);
        connection.exec('BEGIN');
        const end = async (statement: 'COMMIT' | 'ROLLBACK') => {
          connection.exec(statement);
          connection.close();
        };
        return { tx: (sql, params) => connection.prepare(sql).run(...(params as unknown[])), commit: () => end('COMMIT'), rollback: () => end('ROLLBACK') };
      }
      const client = await db.pool({ max: 1 }).connect();
      await client.query('BEGIN');
      const end = async (statement: 'COMMIT' | 'ROLLBACK') => {
        try {
          await client.query(statement);
        } finally {
          client.release();
        }
      };
      return { tx: (sql, params) => client.query(sql, [...params]), commit: () => end('COMMIT'), rollback: () => end('ROLLBACK') };
    },
  };
}

/** Every stack this run can reach: all three, or SQLite + in-process alone in the unit scope. */
export const STACKS: readonly Stack[] = ENGINES.includes('postgres')
  ? [stack('sqlite', 'in-process'), stack('postgres', 'in-process'), stack('postgres', 'bullmq')]
  : [stack('sqlite', 'in-process')];
