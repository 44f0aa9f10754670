import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHooks, sqliteStore, sqliteTx } from '../index.js';
import { CommitWatch } from './commit-watch.js';

afterEach(() => {
  vi.useRealTimers();
});

/** Lets queued microtasks run (a look is queued as one). */
const microtasks = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('CommitWatch', () => {
  it('looks at once, then on its schedule, while started', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let looks = 0;
    const watch = new CommitWatch(() => looks++);
    watch.start();
    watch.written();
    await microtasks();
    expect(looks).toBe(1);
    vi.runAllTimers();
    expect(looks).toBe(11);
    watch.stop();
  });

  it('arms nothing before start() and after stop()', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let looks = 0;
    const watch = new CommitWatch(() => looks++);
    for (let i = 0; i < 100; i++) watch.written();
    await microtasks();
    expect([looks, vi.getTimerCount()]).toEqual([0, 0]);
    watch.start();
    watch.stop();
    await microtasks();
    const before = looks;
    for (let i = 0; i < 100; i++) watch.written();
    await microtasks();
    expect([looks - before, vi.getTimerCount()]).toEqual([0, 0]);
  });

  it('looks, once started, for a write it saw while stopped (its transaction may commit later)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let looks = 0;
    const watch = new CommitWatch(() => looks++);
    watch.written();
    watch.start();
    await microtasks();
    expect(looks).toBe(1);
    vi.runAllTimers();
    expect(looks).toBe(11);
    watch.stop();
    watch.start();
    await microtasks();
    expect([looks, vi.getTimerCount()]).toEqual([11, 0]);
    watch.stop();
  });

  it('stop() ends a schedule under way', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const watch = new CommitWatch(() => undefined);
    watch.start();
    watch.written();
    expect(vi.getTimerCount()).toBe(1);
    watch.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a stopped hooks arms no timer for a write in a transaction', async () => {
    const db = new Database(':memory:');
    const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(db), delivery: { pollInterval: '1h' }, secretStorage: 'plaintext' });
    try {
      await hooks.start();
      await hooks.stop();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const tx = sqliteTx(db);
      db.transaction(() => hooks.modelSync('Book', 'created', { id: 1, ownerId: 'alice' }, { tx }))();
      await hooks.model('Book', 'created', { id: 2, ownerId: 'alice' }, { tx });
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
      await hooks.close();
    }
  });
});
