/**
 * The ORM adapter conformance suite (better-auth's `testAdapter` style): what every ORM adapter
 * (TypeORM, Prisma, Drizzle, …) must do, written once, transaction edge cases included (as Kysely's
 * `transaction.test.ts` runs one set of cases for every driver). An adapter's test file calls
 * `ormAdapterSuite(name, makeHarness, options)` once per database and outbox mode it supports. There
 * are no opt-outs: a skipped test proves nothing, so an ORM that cannot meet a case gets its own test
 * of what it does instead, in its adapter's test file, with the reason beside it. The only cases that
 * depend on the ORM are the ones `OrmSuiteOptions` names, each for a reason stated there.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutboxMode } from '../src/adapters/orm/orm-adapter.js';
import type { Hooks } from '../src/index.js';
import { ALL_EVENTS, outboxTable } from './support/events.js';
import type { Engine } from './support/database.js';
import { eventually } from './support/hooks.js';
import type { Receiver } from './support/receiver.js';

/** The events every harness declares (with `createHooks({ events: BOOK_EVENTS, … })`). */
export const BOOK_EVENTS = {
  'book.added': 'Book.created',
  'book.changed': 'Book.updated+',
  'book.removed': 'Book.deleted',
} as const;
export type BookEvent = keyof typeof BOOK_EVENTS;

/** The `Book` model: a table `books` with a generated integer id. */
export interface Book {
  id: number;
  title: string;
  pages: number;
  ownerId: string;
}
export type NewBook = Omit<Book, 'id'>;

/** The three writes, through the ORM's own API (the calls an app makes, so the adapter's hooks fire). */
export interface BookWriter {
  /** Inserts and returns the book with its generated id. */
  create(book: NewBook): Promise<Book>;
  update(id: number, patch: Partial<NewBook>): Promise<void>;
  remove(id: number): Promise<void>;
}

export interface OrmAdapterHarness {
  /** Started hooks, declaring `BOOK_EVENTS`, with the adapter attached. */
  readonly hooks: Hooks<BookEvent>;
  /** A receiver on 127.0.0.1; the hooks must allow private targets (tests only). */
  readonly receiver: Receiver;
  /** Runs `work` in one ORM transaction, then commits it, or rolls it back when `rollback` is set. */
  transaction(work: (books: BookWriter) => Promise<void>, options?: { rollback?: boolean }): Promise<void>;
  /** The same writes with no transaction around them. */
  readonly outside: BookWriter;
  /** The engine of the app's database. */
  readonly engine: Engine;
  /** The outbox mode the adapter chose (or was given). */
  readonly mode: OutboxMode;
  /** Runs SQL on the app's database, outside any transaction, and returns the rows. */
  query(sql: string): Promise<ReadonlyArray<Record<string, unknown>>>;
  /** Writes a row of a model the events map does not name (a `Shelf`), in a transaction or alone. */
  writeUnmapped(options: { transaction: boolean }): Promise<void>;
  /**
   * Runs `work` in a nested transaction (a savepoint) of the transaction `outer` writes in, then releases
   * it, or rolls back to it when `rollback` is set. Needed when `OrmSuiteOptions.savepoints`.
   */
  savepoint?(outer: BookWriter, work: (books: BookWriter) => Promise<void>, options?: { rollback?: boolean }): Promise<void>;
  /**
   * Runs `work` in a transaction whose COMMIT another party of the ORM's commit refuses (TypeORM: another
   * subscriber's `beforeTransactionCommit` throws), either at once or only after resthooks has had time to
   * write its outbox rows; resolves to the rejection. Needed when `OrmSuiteOptions.commitRace`.
   */
  refuseCommit?(work: (books: BookWriter) => Promise<void>, when: 'at once' | 'after the outbox write'): Promise<unknown>;
  close(): Promise<void>;
}

export interface OrmSuiteOptions {
  /** The outbox mode the harness must be in: `'transaction'` when the store is the app's database. */
  readonly mode: OutboxMode;
  /** The ORM has nested transactions (Prisma has none): the harness implements `savepoint`. */
  readonly savepoints: boolean;
  /**
   * Another party can refuse the ORM's COMMIT while resthooks' commit hook is running (TypeORM runs its
   * subscribers' `beforeTransactionCommit` concurrently). Where resthooks writes inside the app's
   * transaction callback (`around`), nothing can: the ORM commits only after that write has returned.
   */
  readonly commitRace: boolean;
}

/** A trigger in the app's database that refuses outbox rows whose data contains `marker`; returns its removal. */
export async function refuseOutboxRows(h: Pick<OrmAdapterHarness, 'engine' | 'query'>, marker: string): Promise<() => Promise<void>> {
  if (h.engine === 'sqlite') {
    await h.query(`create trigger refuse_outbox before insert on ${outboxTable('sqlite')} when new.data like '%${marker}%' begin select raise(abort, 'outbox refused'); end`);
    return async () => void (await h.query('drop trigger refuse_outbox'));
  }
  await h.query(`create function refuse_outbox() returns trigger language plpgsql as $$ begin if new.data like '%${marker}%' then raise exception 'outbox refused'; end if; return new; end $$`);
  await h.query('create trigger refuse_outbox before insert on resthooks_events for each row execute function refuse_outbox()');
  return async () => void (await h.query('drop trigger refuse_outbox on resthooks_events'));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function ormAdapterSuite(name: string, makeHarness: () => Promise<OrmAdapterHarness>, options: OrmSuiteOptions): void {
  describe(`ORM adapter conformance: ${name}`, () => {
    let h: OrmAdapterHarness;
    beforeEach(async () => {
      h = await makeHarness();
      // A harness in another mode than declared would run the wrong cases: it fails rather than passing them.
      expect(h.mode).toBe(options.mode);
    });
    afterEach(async () => {
      await h.close();
    });

    const subscribe = (event: BookEvent, owner: string, path = `/${owner}`) =>
      h.hooks.subscriptions.create({ owner, event, target: h.receiver.url + path });
    const received = () => h.receiver.received.map((r) => ({ path: r.path, event: r.json?.hook?.event as string, data: r.json?.data as Book }));
    /** Waits until nothing is left to deliver, then a little more for a late, wrong delivery to show up. */
    const settle = async () => {
      await h.hooks.idle();
      await sleep(50);
      await h.hooks.idle();
    };

    it('fires after commit, not before', async () => {
      await subscribe('book.added', 'alice');
      let id = 0;
      await h.transaction(async (books) => {
        id = (await books.create({ title: 'Dune', pages: 412, ownerId: 'alice' })).id;
        // The write is done but not committed: nothing may be on its way yet.
        await sleep(150);
        expect(h.receiver.received).toHaveLength(0);
      });
      const [request] = await h.receiver.waitFor(1);
      expect(request!.json.hook.event).toBe('book.added');
      expect(request!.json.data.id).toBe(id);
    });

    it('fires nothing on rollback', async () => {
      for (const event of ['book.added', 'book.changed', 'book.removed'] as const) await subscribe(event, 'alice');
      const kept = await h.outside.create({ title: 'Kept', pages: 1, ownerId: 'alice' });
      await h.receiver.waitFor(1);
      await h.transaction(
        async (books) => {
          await books.create({ title: 'Never', pages: 2, ownerId: 'alice' });
          await books.update(kept.id, { title: 'Never renamed' });
          await books.remove(kept.id);
        },
        { rollback: true },
      );
      await settle();
      // Then a committed write still goes through, alone.
      await h.transaction(async (books) => void (await books.create({ title: 'After', pages: 3, ownerId: 'alice' })));
      await h.receiver.waitFor(2);
      await settle();
      expect(received().map((r) => r.data.title)).toEqual(['Kept', 'After']);
    });

    it('created delivers book.added with the row', async () => {
      const hook = await subscribe('book.added', 'alice');
      let book: Book | undefined;
      await h.transaction(async (books) => void (book = await books.create({ title: 'Dune', pages: 412, ownerId: 'alice' })));
      const [request] = await h.receiver.waitFor(1);
      expect(request!.json).toEqual({
        hook: { id: hook.id, event: 'book.added', target: hook.target },
        data: { id: book!.id, title: 'Dune', pages: 412, ownerId: 'alice' },
      });
    });

    it('updated delivers book.changed with the new state', async () => {
      await subscribe('book.changed', 'alice');
      const book = await h.outside.create({ title: 'Dune', pages: 412, ownerId: 'alice' });
      await h.transaction((books) => books.update(book.id, { title: 'Dune Messiah', pages: 256 }));
      const [request] = await h.receiver.waitFor(1);
      expect(request!.json.hook.event).toBe('book.changed');
      expect(request!.json.data).toEqual({ id: book.id, title: 'Dune Messiah', pages: 256, ownerId: 'alice' });
    });

    it('deleted delivers book.removed and keeps the id', async () => {
      await subscribe('book.removed', 'alice');
      const book = await h.outside.create({ title: 'Dune', pages: 412, ownerId: 'alice' });
      await h.transaction((books) => books.remove(book.id));
      const [request] = await h.receiver.waitFor(1);
      expect(request!.json.hook.event).toBe('book.removed');
      expect(request!.json.data).toEqual({ id: book.id, title: 'Dune', pages: 412, ownerId: 'alice' });
    });

    it('several writes in one transaction all arrive', async () => {
      for (const event of ['book.added', 'book.changed', 'book.removed'] as const) await subscribe(event, 'alice');
      await h.transaction(async (books) => {
        const a = await books.create({ title: 'A', pages: 1, ownerId: 'alice' });
        const b = await books.create({ title: 'B', pages: 2, ownerId: 'alice' });
        await books.update(a.id, { title: 'A2' });
        await books.remove(b.id);
      });
      await h.receiver.waitFor(4);
      await settle();
      // Each event carries the row as that write left it, not as the transaction ended.
      expect(received().map((r) => `${r.event} ${r.data.title}`).sort()).toEqual(['book.added A', 'book.added B', 'book.changed A2', 'book.removed B']);
    });

    it("owner from the instance: another owner's subscriber gets nothing", async () => {
      await subscribe('book.added', 'alice');
      await subscribe('book.added', 'bob');
      await h.transaction(async (books) => void (await books.create({ title: "Alice's", pages: 1, ownerId: 'alice' })));
      await h.receiver.waitFor(1);
      await settle();
      expect(received().map((r) => [r.path, r.data.title])).toEqual([['/alice', "Alice's"]]);
    });

    it("a '+' event reaches every owner", async () => {
      await subscribe('book.changed', 'alice');
      await subscribe('book.changed', 'bob');
      const book = await h.outside.create({ title: 'Shared', pages: 1, ownerId: 'alice' });
      await h.transaction((books) => books.update(book.id, { pages: 2 }));
      await h.receiver.waitFor(2);
      await settle();
      expect(received().map((r) => r.path).sort()).toEqual(['/alice', '/bob']);
    });

    it('fires at once outside a transaction', async () => {
      await subscribe('book.added', 'alice');
      const book = await h.outside.create({ title: 'Now', pages: 1, ownerId: 'alice' });
      // Recorded by the time the write returns: the outbox shows it to the owner's samples at once.
      const [stored] = await h.hooks.recentEvents('book.added', { owner: 'alice', limit: 1 });
      expect(stored?.data).toMatchObject({ id: book.id, title: 'Now' });
      await eventually(() => expect(received().map((r) => r.data.id)).toEqual([book.id]));
    });

    // ── transactions: what every adapter must hold, whatever its ORM ──────────────────────────────

    const count = async (table: string) => Number((await h.query(`select count(*) as n from ${table}`))[0]!['n']);
    /** The outbox rows the app's database holds: in 'transaction' mode, the store's own table. */
    const outboxRows = () => count(ALL_EVENTS);

    it('a committed transaction delivers exactly once per subscription', async () => {
      await subscribe('book.added', 'alice', '/alice/1');
      await subscribe('book.added', 'alice', '/alice/2');
      await subscribe('book.added', 'bob');
      await subscribe('book.changed', 'alice');
      await subscribe('book.changed', 'bob');
      await h.transaction(async (books) => {
        const book = await books.create({ title: 'Once', pages: 1, ownerId: 'alice' });
        await books.update(book.id, { pages: 2 });
      });
      await h.receiver.waitFor(4);
      await settle();
      await sleep(200); // a second delivery would come from the poll, after the wake-up's one
      await h.hooks.idle();
      const ids = h.receiver.received.map((r) => r.headers['webhook-id']);
      expect(new Set(ids).size).toBe(ids.length);
      expect(received().map((r) => `${r.event} ${r.path}`).sort()).toEqual(['book.added /alice/1', 'book.added /alice/2', 'book.changed /alice', 'book.changed /bob']);
    });

    it('models the events map does not name fire nothing, in a transaction or alone', async () => {
      for (const event of ['book.added', 'book.changed', 'book.removed'] as const) await subscribe(event, 'alice');
      await h.writeUnmapped({ transaction: true });
      await h.writeUnmapped({ transaction: false });
      // Then one mapped write: it alone arrives, so the unmapped ones had their chance to show up before it.
      await h.transaction(async (books) => void (await books.create({ title: 'Mapped', pages: 1, ownerId: 'alice' })));
      await h.receiver.waitFor(1);
      await settle();
      expect(received().map((r) => `${r.event} ${r.data.title}`)).toEqual(['book.added Mapped']);
      if (h.mode === 'transaction') expect(await outboxRows()).toBe(1);
    });

    it('an event that cannot be made (a payload over the limit): refuses the commit in transaction mode, else keeps the write and loses the event', async () => {
      await subscribe('book.added', 'alice');
      const huge = 'x'.repeat(300 * 1024);
      const writing = h.transaction(async (books) => void (await books.create({ title: huge, pages: 1, ownerId: 'alice' })));
      if (options.mode === 'transaction') {
        await expect(writing).rejects.toMatchObject({ code: 'outbox_write_failed', message: expect.stringContaining('limit') });
        expect(await count('books')).toBe(0);
      } else {
        await writing;
        expect(await count('books')).toBe(1);
      }
      await h.transaction(async (books) => void (await books.create({ title: 'Small', pages: 1, ownerId: 'alice' })));
      await h.receiver.waitFor(1);
      await settle();
      expect(received().map((r) => r.data.title)).toEqual(['Small']);
    });

    if (options.mode === 'transaction') {
      it("a failing outbox insert fails the app's commit and leaves neither row; once fixed, writes fire again", async () => {
        await subscribe('book.added', 'alice');
        const allow = await refuseOutboxRows(h, 'Poison');
        // Two writes, the second one's event refused: neither row nor event commits.
        const writing = h.transaction(async (books) => {
          await books.create({ title: 'Fine', pages: 1, ownerId: 'alice' });
          await books.create({ title: 'Poison', pages: 2, ownerId: 'alice' });
        });
        await expect(writing).rejects.toMatchObject({ code: 'outbox_write_failed', message: expect.stringContaining('outbox refused') });
        expect(await count('books')).toBe(0);
        expect(await outboxRows()).toBe(0);
        await allow();
        await h.transaction(async (books) => void (await books.create({ title: 'Poison, once allowed', pages: 3, ownerId: 'alice' })));
        await h.receiver.waitFor(1);
        await settle();
        expect(received().map((r) => r.data.title)).toEqual(['Poison, once allowed']);
        expect(await count('books')).toBe(1);
      });
    }

    if (options.savepoints) {
      const savepoint = (outer: BookWriter, work: (books: BookWriter) => Promise<void>, rollback = false) => {
        if (!h.savepoint) throw new Error('the harness declares savepoints but has no savepoint()');
        return h.savepoint(outer, work, { rollback });
      };

      it('rolling back a savepoint drops only its writes; a released one waits for the outermost commit', async () => {
        await subscribe('book.added', 'alice');
        await h.transaction(async (books) => {
          await books.create({ title: 'Outer', pages: 1, ownerId: 'alice' });
          await savepoint(books, async (inner) => void (await inner.create({ title: 'Inner, rolled back', pages: 2, ownerId: 'alice' })), true);
          await savepoint(books, async (inner) => void (await inner.create({ title: 'Inner, released', pages: 3, ownerId: 'alice' })));
          await sleep(150); // released, not committed: nothing may be on its way yet
          expect(h.receiver.received).toHaveLength(0);
        });
        await h.receiver.waitFor(2);
        await settle();
        expect(received().map((r) => r.data.title).sort()).toEqual(['Inner, released', 'Outer']);
        if (h.mode === 'transaction') expect(await outboxRows()).toBe(2);
      });

      it("a released savepoint's writes are rolled back with the transaction around it", async () => {
        await subscribe('book.added', 'alice');
        await h.transaction(async (books) => {
          await savepoint(books, async (inner) => void (await inner.create({ title: 'Released, then rolled back', pages: 1, ownerId: 'alice' })));
        }, { rollback: true });
        await h.transaction(async (books) => void (await books.create({ title: 'After', pages: 2, ownerId: 'alice' })));
        await h.receiver.waitFor(1);
        await settle();
        expect(received().map((r) => r.data.title)).toEqual(['After']);
      });
    }

    if (options.commitRace) {
      for (const when of ['at once', 'after the outbox write'] as const) {
        it(`a rollback racing the commit hook (${when}) sends no statement after ROLLBACK: no row, no event`, async () => {
          await subscribe('book.added', 'alice');
          if (!h.refuseCommit) throw new Error('the harness declares commitRace but has no refuseCommit()');
          // Several events: once the rollback has begun, the ones not yet written must not be sent.
          const error = await h.refuseCommit(async (books) => {
            for (const title of ['Lost 1', 'Lost 2', 'Lost 3']) await books.create({ title, pages: 1, ownerId: 'alice' });
          }, when);
          expect(error).toBeInstanceOf(Error);
          await sleep(200); // a statement sent after the ROLLBACK would have autocommitted by now
          await h.hooks.idle();
          expect(await count('books')).toBe(0);
          if (h.mode === 'transaction') expect(await outboxRows()).toBe(0);
          expect(h.receiver.received).toHaveLength(0);
        });
      }
    }
  });
}
