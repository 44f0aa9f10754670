/**
 * The SQLite store's checkpointer thread, on real files: it checkpoints the WAL from its own connection
 * (so the store's connection, on the thread that delivers, never reaches its own automatic checkpoint),
 * the store's automatic checkpoint still bounds the WAL once the thread is dead, `hooks.stop()` ends the
 * thread and a process never waits for it, and a kill -9 while it checkpoints loses no outbox row.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { ConfigError, sqliteStore, type Logger, type StoreDialect } from '../src/index.js';
import { SqliteCheckpointer } from '../src/store/sqlite/sqlite-checkpointer.js';
import { eventually, tempDir, testHooks } from './support/hooks.js';
import { ALL_EVENTS } from './support/events.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CRASH_CHILD = fileURLToPath(new URL('./support/checkpoint-crash-child.ts', import.meta.url));
/** The store connection's own `wal_autocheckpoint` (src/store/sqlite/sqlite-store-dialect.ts). */
const BACKSTOP_PAGES = 10_000;
const EVENTS = { 'thing.happened': null } as const;
/** The crash child's `walPages`: small, so that a checkpoint is nearly always under way while it writes. */
const CRASH_CHILD_WAL_PAGES = 64;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * The WAL's length and how much of it is in the database file, from the wal-index header in the `-shm`
 * file (https://sqlite.org/walformat.html §2.2), the way the checkpointer thread reads them.
 */
function walIndex(file: string): { frames: number; copied: number } {
  const header = Buffer.alloc(136);
  const fd = openSync(`${file}-shm`, 'r');
  try {
    readSync(fd, header, 0, 136, 0);
  } finally {
    closeSync(fd);
  }
  return { frames: header.readUInt32LE(16), copied: header.readUInt32LE(96) };
}

/** The WAL header's checkpoint sequence: one more each time the WAL starts over. */
function walSequence(file: string): number {
  const header = Buffer.alloc(16);
  const fd = openSync(`${file}-wal`, 'r');
  try {
    readSync(fd, header, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  return header.readUInt32BE(12);
}

/** The WAL file's size in frames: its high-water mark (a WAL that starts over is written from its start again). */
function walFileFrames(file: string): number {
  return Math.floor(statSync(`${file}-wal`).size / (4096 + 24));
}

function capturingLogger(): Logger & { lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const note = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg: msg ?? '', obj });
  return { lines, debug: note('debug'), info: note('info'), warn: note('warn'), error: note('error') };
}

async function startedHooks(store: StoreDialect, logger: Logger | false = false) {
  const dir = tempDir();
  const { hooks, close } = await testHooks({ events: EVENTS, store, logger, secretStorage: 'plaintext' });
  cleanups.push(async () => {
    await close();
    dir.cleanup();
  });
  return hooks;
}

function fileStore(walPages?: number) {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const file = join(dir.path, 'hooks.db');
  const store = sqliteStore(new Database(file), walPages === undefined ? {} : { checkpointer: { walPages } });
  return { file, store, checkpointer: store.maintenance as SqliteCheckpointer };
}

it('checkpoints from its own thread: the WAL starts over long before the store\'s own threshold, and the database file grows', { timeout: 60_000 }, async () => {
  const { file, store, checkpointer } = fileStore(100);
  const hooks = await startedHooks(store);
  expect(checkpointer.thread).toBeDefined();
  const sizeBefore = statSync(file).size;
  const sequenceBefore = walSequence(file);
  // Rounds of writes, each waiting until the thread has copied every frame (or the WAL has started over
  // already, a write of the dispatcher's finding it all copied): the next write then starts it over.
  for (let round = 0; checkpointer.stats.copiedFrames <= 2 * BACKSTOP_PAGES; round++) {
    expect(round).toBeLessThan(1_000);
    for (let i = 0; i < 50; i++) expect((await hooks.raw('thing.happened', { round, i }, { owner: 'alice' })).status).toBe('queued');
    await eventually(() => {
      const wal = walIndex(file);
      if (wal.frames >= 100) expect(wal.copied).toBe(wal.frames);
    }, 15_000);
  }
  // Twice the backstop's worth of frames went through the WAL, which never grew near it: the store's
  // automatic checkpoint (at 10,000 frames) never ran, the thread did every checkpoint.
  expect(walFileFrames(file)).toBeLessThan(BACKSTOP_PAGES / 4);
  expect(walSequence(file) - sequenceBefore).toBeGreaterThanOrEqual(5);
  expect(checkpointer.stats.restarts).toBeGreaterThanOrEqual(5);
  expect(statSync(file).size).toBeGreaterThan(sizeBefore);
});

it('two stores on one file, each with its thread (as two processes would be): they take turns, nothing is logged, the WAL stays short', { timeout: 60_000 }, async () => {
  const { file, store, checkpointer } = fileStore(100);
  const other = sqliteStore(new Database(file), { checkpointer: { walPages: 100 } });
  const logger = capturingLogger();
  const first = await startedHooks(store, logger);
  const second = await startedHooks(other, logger);
  const threads = [checkpointer, other.maintenance as SqliteCheckpointer];
  for (const c of threads) expect(c.thread).toBeDefined();
  let written = 0;
  for (let round = 0; threads.reduce((sum, c) => sum + c.stats.copiedFrames, 0) <= BACKSTOP_PAGES; round++) {
    expect(round).toBeLessThan(1_000);
    for (let i = 0; i < 25; i++) {
      await first.raw('thing.happened', { round, i, by: 1 }, { owner: 'alice' });
      await second.raw('thing.happened', { round, i, by: 2 }, { owner: 'alice' });
      written += 2;
    }
    await eventually(() => {
      const wal = walIndex(file);
      if (wal.frames >= 100) expect(wal.copied).toBe(wal.frames);
    }, 15_000);
  }
  expect(walFileFrames(file)).toBeLessThan(BACKSTOP_PAGES / 4);
  for (const c of threads) expect(c.thread).toBeDefined();
  expect(logger.lines.filter((line) => line.level === 'warn' || line.level === 'error')).toEqual([]);
  const reader = new Database(file, { readonly: true });
  try {
    expect(reader.prepare(`select count(*) as n from ${ALL_EVENTS} where name = 'thing.happened'`).get()).toEqual({ n: written });
  } finally {
    reader.close();
  }
});

it('a checkpointer thread that dies is logged once, and the store\'s own checkpoint still bounds the WAL', { timeout: 60_000 }, async () => {
  const { file, store, checkpointer } = fileStore(100);
  const logger = capturingLogger();
  const hooks = await startedHooks(store, logger);
  const ended = (line: { msg: string }) => /checkpointer thread ended/.test(line.msg);
  await checkpointer.thread!.terminate();
  await eventually(() => expect(logger.lines.filter(ended)).toHaveLength(1));
  expect(checkpointer.thread).toBeUndefined();

  // Write until the WAL has started over twice: each time it reached the backstop, not beyond.
  let restarts = 0;
  let longest = 0;
  let last = walIndex(file).frames;
  for (let batch = 0; restarts < 2; batch++) {
    expect(batch).toBeLessThan(400);
    for (let i = 0; i < 100; i++) await hooks.raw('thing.happened', { batch, i }, { owner: 'alice' });
    const frames = walIndex(file).frames;
    if (frames < last) restarts++;
    longest = Math.max(longest, frames);
    last = frames;
  }
  expect(longest).toBeGreaterThan(BACKSTOP_PAGES / 2);
  // The commit that crosses the threshold checkpoints; a commit is a few dozen frames at most.
  expect(walFileFrames(file)).toBeLessThanOrEqual(BACKSTOP_PAGES + 100);
  await hooks.stop();
  expect(logger.lines.filter(ended)).toHaveLength(1);
  expect(logger.lines.filter((line) => /checkpointer/.test(line.msg))).toHaveLength(1);
});

it('a database locked elsewhere as the thread starts (a recovery after a crash, an exclusive connection): the thread waits its turn, then checkpoints', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const file = join(dir.path, 'locked.db');
  const setup = new Database(file);
  setup.pragma('journal_mode = wal');
  setup.exec('create table t (x blob)');
  setup.close();
  // Another connection holds the file in exclusive locking mode: every other connection's reads are refused.
  const locker = new Database(file);
  locker.pragma('locking_mode = exclusive');
  locker.prepare('begin exclusive').run();
  locker.prepare('commit').run();
  const probe = new Database(file, { timeout: 0 });
  expect(() => probe.prepare('select 1 from t').get()).toThrow(/locked/);
  probe.close();
  const logger = capturingLogger();
  const checkpointer = new SqliteCheckpointer(locker, file, { walPages: 10, intervalMs: 20, backstopPages: BACKSTOP_PAGES });
  cleanups.push(() => checkpointer.stop());
  checkpointer.start(logger);
  // A dozen of the thread's ticks meet the lock.
  await new Promise((resolve) => setTimeout(resolve, 300));
  locker.close();
  const writer = new Database(file);
  cleanups.push(() => void writer.close());
  writer.pragma('wal_autocheckpoint = 0');
  const insert = writer.prepare('insert into t values (randomblob(4000))');
  for (let round = 0; checkpointer.stats.copiedFrames === 0; round++) {
    expect(round).toBeLessThan(1_000);
    for (let i = 0; i < 20; i++) insert.run();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(checkpointer.thread).toBeDefined();
  expect(logger.lines).toEqual([]);
});

it('hooks.stop() ends the thread, start() brings it back, close() ends it; none for an in-memory database or with checkpointer: false', { timeout: 30_000 }, async () => {
  const { store, checkpointer } = fileStore();
  const hooks = await startedHooks(store);
  const first = checkpointer.thread!;
  let firstEnded = false;
  first.once('exit', () => (firstEnded = true));
  await hooks.stop();
  expect(firstEnded).toBe(true);
  expect(checkpointer.thread).toBeUndefined();

  await hooks.start();
  // A start while the thread is still ending gets a thread once it has ended.
  const ending = checkpointer.thread!;
  const stopping = checkpointer.stop();
  checkpointer.start(capturingLogger());
  await stopping;
  await eventually(() => expect(checkpointer.thread).toBeDefined());
  expect(checkpointer.thread).not.toBe(ending);
  const second = checkpointer.thread!;
  expect(second).not.toBe(first);
  let secondEnded = false;
  second.once('exit', () => (secondEnded = true));
  await hooks.close();
  expect(secondEnded).toBe(true);
  expect(checkpointer.thread).toBeUndefined();

  expect(sqliteStore(new Database(':memory:')).maintenance).toBeUndefined();
  expect(sqliteStore(new Database('')).maintenance).toBeUndefined();
  const off = fileStore();
  expect(sqliteStore(new Database(off.file), { checkpointer: false }).maintenance).toBeUndefined();
  for (const walPages of [0, 1.5, Number.NaN]) expect(() => sqliteStore(new Database(off.file), { checkpointer: { walPages } })).toThrow(ConfigError);
});

it('never keeps a process alive: an app that starts its hooks and does nothing more exits by itself', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const script = [
    "import Database from 'better-sqlite3';",
    "import { createHooks, sqliteStore } from './src/index.ts';",
    `const store = sqliteStore(new Database(${JSON.stringify(join(dir.path, 'app.db'))}));`,
    "const hooks = createHooks({ events: { 'thing.happened': null }, store, logger: false, secretStorage: 'plaintext' });",
    'await hooks.start();',
    "await hooks.raw('thing.happened', { n: 1 }, { owner: 'alice' });",
    'console.log(store.maintenance.thread ? "thread running" : "no thread");',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  // Generous for a loaded machine; the process has nothing left to do once it printed.
  const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (...ended) => resolve(ended)));
  clearTimeout(deadline);
  expect(out).toContain('thread running');
  expect({ code, signal }).toEqual({ code: 0, signal: null });
});

it('kill -9 while the thread checkpoints loses no outbox row, and leaves a sound database', { timeout: 400_000 }, async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const file = join(dir.path, 'crash.db');
  const acknowledged: number[] = [];
  let next = 0;
  for (let run = 0; run < 3; run++) {
    const child = spawn(process.execPath, ['--import', 'tsx', CRASH_CHILD, file, String(next), String(CRASH_CHILD_WAL_PAGES)], { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    cleanups.push(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let upTo = next - 1;
    let last = { copiedFrames: 0, restarts: 0, messages: 0 };
    const started = Date.now();
    let first: number | undefined;
    // Killed once its thread has copied a few dozen WALs' worth, while writes go on: with a WAL
    // checkpointed every CRASH_CHILD_WAL_PAGES pages, a checkpoint is nearly always under way.
    await new Promise<void>((resolve, reject) => {
      // A child that stops making progress fails the run with what it had reached, not a bare timeout.
      const stall = (what: string) => {
        child.removeAllListeners('exit');
        child.kill('SIGKILL');
        reject(new Error(`run ${run}: ${what} after ${Date.now() - started} ms (first write at ${first} ms): ${JSON.stringify({ written: upTo - next + 1, ...last })}; stderr: ${stderr.slice(-2_000)}`));
      };
      // Its start (tsx compiling the sources, the migrations, the thread) takes seconds, minutes on a loaded machine.
      let stalled = setTimeout(() => stall('no first write'), 100_000);
      child.once('exit', (code) => {
        clearTimeout(stalled);
        reject(new Error(`child exited (${code}) before the kill: ${stderr}`));
      });
      child.on('message', (message: { type: string; upTo: number; copiedFrames: number; restarts: number }) => {
        upTo = message.upTo;
        if (first === undefined) {
          first = Date.now() - started;
          // From its first write on, the child reaches the kill point in about a second.
          clearTimeout(stalled);
          stalled = setTimeout(() => stall('no kill point'), 30_000);
        }
        last = { copiedFrames: message.copiedFrames, restarts: message.restarts, messages: last.messages + 1 };
        if (message.copiedFrames > 20 * CRASH_CHILD_WAL_PAGES && upTo - next >= 500) {
          clearTimeout(stalled);
          child.removeAllListeners('exit');
          child.removeAllListeners('message');
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    expect(child.signalCode).toBe('SIGKILL');
    for (let n = next; n <= upTo; n++) acknowledged.push(n);
    // Every event acknowledged to the app is in the file, and the file is sound.
    const db = new Database(file);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const stored = new Set((db.prepare(`select json_extract(data, '$.n') as n from ${ALL_EVENTS} where name = 'thing.happened'`).all() as Array<{ n: number }>).map((row) => row.n));
      expect(acknowledged.filter((n) => !stored.has(n))).toEqual([]);
      next = [...stored].reduce((a, b) => Math.max(a, b), -1) + 1;
    } finally {
      db.close();
    }
  }
  expect(acknowledged.length).toBeGreaterThanOrEqual(1_500);
});
