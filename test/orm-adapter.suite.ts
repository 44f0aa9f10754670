/**
 * The ORM adapter conformance suite (better-auth's `testAdapter` style): what every ORM adapter
 * (TypeORM, Prisma, Drizzle, …) must do, written once. An adapter's test file calls
 * `ormAdapterSuite(name, makeHarness)` once per database it supports. There are no opt-outs: a
 * skipped test proves nothing, so an ORM that cannot meet a case gets its own test of what it does
 * instead, in its adapter's test file, with the reason beside it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Hooks } from '../src/index.js';
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
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function ormAdapterSuite(name: string, makeHarness: () => Promise<OrmAdapterHarness>): void {
  describe(`ORM adapter conformance: ${name}`, () => {
    let h: OrmAdapterHarness;
    beforeEach(async () => {
      h = await makeHarness();
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
  });
}
