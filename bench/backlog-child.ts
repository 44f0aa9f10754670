/**
 * The backlog scenario's restarted process (bench/backlog.ts): opens the SQLite file that holds the
 * backlog, starts the dispatcher as the bench's hooks do, and reports, over IPC, when `start()` was
 * called and the peak RSS and heap it saw while delivering, sampled every 50 ms, once the parent says stop,
 * and the heap still in use after a full GC then: what the process keeps, as opposed to garbage not yet collected.
 *
 *   node --expose-gc <backlog-child.ts bundled by esbuild> <sqlite file>   (bench/backlog.ts compiles and starts it)
 *
 * → { type: 'started', at }   (clock: performance.timeOrigin + performance.now(), as the receiver's)
 * ← { type: 'stop' }  → { type: 'stopped', rssMax, heapMax, rssAtStart, heapAfterGc, samples, atPeak }
 */
import Database from 'better-sqlite3';
import { createHooks, sqliteStore } from '../src/index.js';
import { CONCURRENCY, now } from './scenario.js';

const file = process.argv[2];
if (!file || !process.send) throw new Error('usage: node <backlog-child bundle> <sqlite file> (spawned by bench/backlog.ts with an IPC channel)');
const send = (message: object) => process.send!(message);

const rssAtStart = process.memoryUsage.rss();
let rssMax = rssAtStart;
let heapMax = 0;
let samples = 0;
/** `process.memoryUsage()` at the sample with the highest RSS: what the peak is made of. */
let atPeak: NodeJS.MemoryUsage | undefined;
const sample = () => {
  const usage = process.memoryUsage();
  if (usage.rss > rssMax || !atPeak) atPeak = usage;
  rssMax = Math.max(rssMax, usage.rss);
  heapMax = Math.max(heapMax, usage.heapUsed);
  samples++;
};
const sampler = setInterval(sample, 50);

const hooks = createHooks({
  events: { 'book.added': 'Book.created' },
  store: sqliteStore(new Database(file)),
  allowPrivateTargets: true,
  delivery: { concurrency: CONCURRENCY, connectionsPerOrigin: CONCURRENCY, ownerShare: 1 },
});
const startedAt = now();
await hooks.start();
send({ type: 'started', at: startedAt });

process.on('message', (message: { type: string }) => {
  if (message.type !== 'stop') return;
  void (async () => {
    sample();
    clearInterval(sampler);
    (globalThis as { gc?: () => void }).gc?.();
    const heapAfterGc = process.memoryUsage().heapUsed;
    await hooks.close({ timeout: '10s' });
    send({ type: 'stopped', rssMax, heapMax, rssAtStart, heapAfterGc, samples, atPeak });
    process.disconnect();
  })();
});
