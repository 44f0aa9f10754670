/**
 * An app that writes the outbox as fast as it can while its checkpointer thread checkpoints, for
 * test/sqlite-checkpointer.test.ts, which kills it with SIGKILL.
 *
 *   node --import tsx test/support/checkpoint-crash-child.ts <sqlite file> <first n> <walPages>
 *
 * Writes `thing.happened` events with data `{ n }`, n = first n, first n + 1, …, each awaited, and tells
 * the test over IPC what is committed: { type: 'written', upTo, copiedFrames, restarts } (every n up to
 * `upTo` was acknowledged by `hooks.raw()`; the other two are the checkpointer thread's counts).
 */
import Database from 'better-sqlite3';
import { createHooks, sqliteStore } from '../../src/index.js';
import type { SqliteCheckpointer } from '../../src/store/sqlite/sqlite-checkpointer.js';

async function main(): Promise<void> {
  const [file, first, walPages] = process.argv.slice(2);
  if (!file || first === undefined || walPages === undefined || !process.send) {
    throw new Error('usage: node --import tsx test/support/checkpoint-crash-child.ts <sqlite file> <first n> <walPages> (with an IPC channel)');
  }
  const store = sqliteStore(new Database(file), { checkpointer: { walPages: Number(walPages) } });
  const hooks = createHooks({
    events: { 'thing.happened': null },
    store,
    secretStorage: 'plaintext',
    logger: { debug() {}, info() {}, warn: (obj, msg) => console.error('warn', msg, JSON.stringify(obj)), error: (obj, msg) => console.error('error', msg, JSON.stringify(obj)) },
  });
  await hooks.start();
  const checkpointer = store.maintenance as SqliteCheckpointer;
  for (let n = Number(first); ; n++) {
    const result = await hooks.raw('thing.happened', { n }, { owner: 'alice' });
    if (result.status !== 'queued') throw new Error(`hooks.raw() returned ${JSON.stringify(result)}`);
    if (n % 10 !== 0) continue;
    process.send({ type: 'written', upTo: n, ...checkpointer.stats });
    // An awaited write that finds the connection free never leaves the microtask queue: give the loop a
    // turn, so the thread's reports (and the IPC channel) are handled, as in an app serving requests.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
