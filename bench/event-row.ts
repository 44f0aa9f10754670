/**
 * The hot path against the durable floor's bare INSERT, and what each B-tree of the event row costs.
 *
 * Every row is one awaited call per event on SQLite (WAL, `synchronous = normal`, the store's checkpoint
 * setting), autocommit, on a fresh file of its own. The floor is the durable floor's trigger
 * (bench/durable-floor.ts): `JSON.stringify` of the book and one INSERT into an integer-keyed table.
 * `hooks.model()` runs with the dispatcher stopped, with K subscriptions. The event-row rows insert the
 * store's own INSERT (same SQL, same parameters as a `hooks.model()` of the same book) with plain
 * better-sqlite3 into tables that differ by one index at a time, so each step's cost is that index's.
 * Since migration 0006 the store appends fresh events to `resthooks_outbox` (one B-tree); the rows
 * marked "before 0006" insert into `resthooks_events` as the store did until then, for comparison.
 * Rounds are interleaved, in a rotating order; times are medians over rounds, and ratios the median
 * over rounds of the round's ratio to the floor. WAL pages per insert are counted separately (exact).
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createHooks, sqliteStore, type Hooks } from '../src/index.js';
import { KyselyStore } from '../src/store/kysely-store.js';
import type { CompiledStatement } from '../src/store/host-executor.js';
import type { EventTable } from '../src/store/schema.js';
import { newId } from '../src/ids.js';
import { median } from './stats.js';

export interface HotPathRow {
  readonly name: string;
  /** What the row adds, or why it is there. */
  readonly note: string;
  readonly us: number;
  readonly cpuUs: number;
  /** Median over rounds of this row's time / the floor's, wall clock and CPU. */
  readonly ratio: number;
  readonly cpuRatio: number;
  /** WAL pages written per insert (each commit writes every page it changed). */
  readonly walPages: number;
}

interface Subject {
  readonly name: string;
  readonly note: string;
  readonly file: string;
  readonly insert: (i: number) => unknown;
  readonly close: () => unknown;
}

const COLUMNS = `name varchar(64) not null, model varchar(255), action varchar(255), owner varchar(255), all_owners integer not null default 0,
  data text not null, body text, status varchar(16) not null, error text, created_at bigint not null,
  fanout_attempts integer not null default 0, finder_failures integer not null default 0, next_fanout_at bigint not null default 0`;
const PENDING_INDEX = `create index resthooks_events_pending on resthooks_events (next_fanout_at, id) where status = 'pending'`;
// As migration 0006 creates it on SQLite.
const FRESH_TABLE = `create table resthooks_outbox (seq integer primary key, id varchar(40) not null, name varchar(64) not null, model varchar(255), action varchar(255),
  owner varchar(255), all_owners integer not null default 0, data text not null, body text, created_at bigint not null)`;
const UNDELIVERABLE_INDEX = `create index resthooks_events_undeliverable on resthooks_events (id) where status = 'undeliverable'`;

function pragmas(db: Database.Database): void {
  db.pragma('journal_mode = wal');
  db.pragma('synchronous = normal');
  db.pragma('wal_autocheckpoint = 10000'); // as the store sets it
}

/**
 * Measures the floor, `hooks.model()` at each K, and the event-row variants.
 * `book(i)` is the instance every side serializes; `subscribe(hooks, k)` adds K subscriptions.
 */
export async function hotPathAgainstFloor(options: {
  readonly ks: readonly number[];
  readonly rounds: number;
  readonly insertsPerRound: number;
  readonly book: (i: number) => Record<string, unknown>;
  readonly subscribe: (hooks: Hooks, k: number) => Promise<void>;
  readonly log?: (line: string) => void;
}): Promise<HotPathRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-event-row-'));
  const subjects: Subject[] = [];
  try {
    const floorFile = join(dir, 'floor.db');
    const floor = new Database(floorFile);
    pragmas(floor);
    floor.exec('create table events (id integer primary key, name text not null, owner text not null, data text not null, done integer not null default 0)');
    const floorInsert = floor.prepare('insert into events (name, owner, data) values (?, ?, ?)');
    subjects.push({
      name: 'durable floor: bare INSERT',
      note: 'integer key, 3 columns, `JSON.stringify` of the book (bench/durable-floor.ts)',
      file: floorFile,
      insert: async (i) => floorInsert.run('book.added', 'alice', JSON.stringify(options.book(i))),
      close: () => floor.close(),
    });

    for (const k of options.ks) {
      const file = join(dir, `hooks-${k}.db`);
      const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(new Database(file)), allowPrivateTargets: true, delivery: { pollInterval: 3_600_000 } });
      await hooks.start();
      await options.subscribe(hooks, k);
      await hooks.stop(); // the write path only
      subjects.push({
        name: `\`hooks.model()\`, K=${k}`,
        note: 'route, serialize, id, owner, one event row (the store as shipped)',
        file,
        insert: async (i) => {
          const result = await hooks.model('Book', 'created', options.book(i));
          if (result.status !== 'queued') throw new Error(`hooks.model() returned ${JSON.stringify(result)}`);
        },
        close: () => hooks.close(),
      });
    }

    // The store's INSERT and parameters, compiled once as the store does; before 0006, the same row into resthooks_events.
    const compiler = new KyselyStore(sqliteStore(new Database(':memory:')));
    const asShipped = (event: EventTable): readonly CompiledStatement[] => compiler.compileAppend(event);
    const row = (data: string): EventTable => ({
      id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data, body: null, status: 'pending', error: null, created_at: Date.now(),
    });
    // Compiled once, as the store compiled it; its parameters follow the row's key order.
    const before0006Sql = compiler.db.insertInto('resthooks_events').values(row('')).compile().sql;
    const before0006 = (event: EventTable): readonly CompiledStatement[] => [{ sql: before0006Sql, parameters: Object.values(event) }];
    const largeData = (i: number) => JSON.stringify({ ...options.book(i), description: 'x'.repeat(2_000) });
    const bookData = (i: number) => JSON.stringify(options.book(i));
    const variant = (name: string, note: string, ddl: readonly string[], data: (i: number) => string = bookData, append = before0006) => {
      const file = join(dir, `row-${subjects.length}.db`);
      const db = new Database(file);
      pragmas(db);
      for (const statement of ddl) db.exec(statement);
      const statements = new Map<string, Database.Statement>();
      subjects.push({
        name,
        note,
        file,
        insert: async (i) => {
          for (const { sql, parameters } of append(row(data(i)))) {
            let statement = statements.get(sql);
            if (!statement) statements.set(sql, (statement = db.prepare(sql)));
            statement.run(...parameters);
          }
        },
        close: () => db.close(),
      });
    };
    const table = (key: 'id varchar(40) primary key' | 'id varchar(40) not null', rowid = true) => `create table resthooks_events (${key}, ${COLUMNS})${rowid ? '' : ' without rowid'}`;
    variant('fresh event row (as shipped, 0006)', '`resthooks_outbox`: rowid table, `seq` is the rowid, `id` not indexed; moved to `resthooks_events` at fan-out', [FRESH_TABLE], bookData, asShipped);
    variant('event row, no index', 'the row alone: rowid table, `id` not indexed', [table('id varchar(40) not null')]);
    variant('+ primary key on `id`', 'the lookups by id (API, deliveries → event)', [table('id varchar(40) primary key')]);
    variant('+ pending index (before 0006)', 'the fan-out\'s scan of waiting events; `undeliverable` gets no entry on insert', [table('id varchar(40) primary key'), PENDING_INDEX, UNDELIVERABLE_INDEX]);
    variant('+ name index on every event (before 0004)', 'now partial, filled at fan-out: what 0004 took off the write path', [
      table('id varchar(40) primary key'), PENDING_INDEX, UNDELIVERABLE_INDEX, 'create index resthooks_events_name on resthooks_events (name, id)',
    ]);
    variant('`WITHOUT ROWID`, pending index (not chosen)', 'row and key in one B-tree', [table('id varchar(40) primary key', false), PENDING_INDEX, UNDELIVERABLE_INDEX]);
    variant('as shipped, 2 KB data', 'a larger payload, into the fresh table', [FRESH_TABLE], largeData, asShipped);
    variant('before 0006, 2 KB data', 'a larger payload, into `resthooks_events` with its key and pending index', [table('id varchar(40) primary key'), PENDING_INDEX, UNDELIVERABLE_INDEX], largeData);
    variant('`WITHOUT ROWID`, 2 KB data (not chosen)', 'index B-tree cells overflow past ~1 KB', [table('id varchar(40) primary key', false), PENDING_INDEX, UNDELIVERABLE_INDEX], largeData);
    await compiler.destroy();

    let next = 0;
    const run = async (subject: Subject, count: number): Promise<[number, number]> => {
      const cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) await subject.insert(next++);
      const wall = Number(process.hrtime.bigint() - start) / 1e3 / count;
      const used = process.cpuUsage(cpu);
      return [wall, (used.user + used.system) / count];
    };

    // WAL pages per insert: from an emptied WAL, one batch of inserts, then the WAL's length in pages.
    const walPages = async (subject: Subject): Promise<number> => {
      const probe = new Database(subject.file);
      try {
        probe.pragma('wal_checkpoint(TRUNCATE)');
        const count = 500;
        await run(subject, count);
        const [result] = probe.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
        return result!.log / count;
      } finally {
        probe.close();
      }
    };
    const pages: number[] = [];
    for (const subject of subjects) {
      await run(subject, 1_000); // warm-up
      pages.push(await walPages(subject));
    }

    const wall: number[][] = subjects.map(() => []);
    const cpu: number[][] = subjects.map(() => []);
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < subjects.length; k++) {
        const index = (k + round) % subjects.length;
        const [w, c] = await run(subjects[index]!, options.insertsPerRound);
        wall[index]!.push(w);
        cpu[index]!.push(c);
      }
      options.log?.(`  hot path against the floor: round ${round + 1} of ${options.rounds}`);
    }
    return subjects.map((subject, index) => ({
      name: subject.name,
      note: subject.note,
      us: median(wall[index]!),
      cpuUs: median(cpu[index]!),
      ratio: median(wall[index]!.map((us, round) => us / wall[0]![round]!)),
      cpuRatio: median(cpu[index]!.map((us, round) => us / cpu[0]![round]!)),
      walPages: pages[index]!,
    }));
  } finally {
    for (const subject of subjects) await subject.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

