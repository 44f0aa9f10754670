/**
 * The WAL checkpoint, off the thread that delivers. A checkpoint copies the WAL's pages back into the
 * database file and syncs it; run by SQLite's automatic checkpoint, it is paid by whichever commit
 * crosses the threshold, on the event loop: 30–40 ms every ~10,000 pages at 1,000 events/s. Here a
 * worker thread with its own connection to the same file does it in small steps, and the store's
 * connection keeps its automatic checkpoint only as a backstop (so a dead thread never lets the WAL
 * grow without bound). Several processes on one file may each run one: checkpoints take turns on
 * SQLite's checkpoint lock, and one that finds the lock taken just skips its turn.
 * @module
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loggedError, type Logger } from '../../logger.js';
import type { StoreMaintenance } from '../store-dialect.js';

/** The members of a better-sqlite3 `Database` that locate its file. */
export interface SqliteFileInfo {
  readonly name?: string;
  readonly memory?: boolean;
  readonly readonly?: boolean;
}

export interface CheckpointerSettings {
  /** The WAL length, in pages, at which the thread checkpoints and lets the WAL start over. */
  readonly walPages: number;
  /** How often the thread looks at the WAL's length (a 136-byte read of the `-shm` file). */
  readonly intervalMs: number;
  /** The store connection's own automatic checkpoint, for the log line that says what takes over. */
  readonly backstopPages: number;
}

/** What the thread reports after each checkpoint. */
interface CheckpointReport {
  readonly type: 'checkpointed';
  /** Frames copied into the database file by this round (its steps together). */
  readonly copied: number;
  /** The WAL was reset: the next commit writes from its start. */
  readonly restarted: boolean;
}

/**
 * The thread's code, plain CommonJS run with `eval`: it needs no TypeScript loader, so it starts the same
 * from the built package, under tsx and under vitest, and loads the driver from the path found here.
 *
 * Each tick, once the WAL is `walPages` long: PASSIVE checkpoints, which copy while the writer keeps
 * writing, until every frame is in the database file (the frames written during one are copied by the
 * next, a few more steps). The store's next commit then starts the WAL over: a writer resets it when it
 * finds every frame copied, at no cost. Never RESTART or FULL: they hold the write lock through their
 * fsyncs, and the store's writes, waiting on timers for it, fell behind by hundreds of ms on a busy machine.
 * If commits never leave a gap, the WAL grows to the store's backstop, whose checkpoint then finds only
 * the last few frames to copy.
 *
 * The WAL's length comes from the wal-index header in the `-shm` file (https://sqlite.org/walformat.html,
 * §2.2: two copies of a 48-byte header, `mxFrame` at offset 16, then `nBackfill` at 96, native byte order),
 * read without a lock: a torn read shows as two copies that differ, and counts as unreadable. Where it cannot be read
 * (no `-shm` file: `locking_mode = exclusive`), the thread checkpoints on every tick, PASSIVE only.
 */
const THREAD_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const Database = require(workerData.driver);
const { file, walPages, intervalMs } = workerData;
const MAX_STEPS = 8;
const db = new Database(file, { fileMustExist: true, timeout: 0 });
// Prepared on a tick, not at start: preparing reads the schema, which a lock held elsewhere refuses for
// a moment (the store's connection recovering the WAL after a crash, a connection in exclusive locking
// mode). A thread that died of that would leave the store to its backstop; this one tries again next tick.
let passive;
// better-sqlite3's codes are the extended ones: SQLITE_BUSY_RECOVERY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE…
// SQLITE_PROTOCOL: a WAL lock race SQLite gave up retrying (https://sqlite.org/rescode.html#protocol). Each skips a turn.
const transient = (error) => typeof error?.code === 'string' && /^SQLITE_(BUSY|LOCKED|PROTOCOL)/.test(error.code);
const header = Buffer.alloc(136);
const little = require('node:os').endianness() === 'LE';
const u32 = (offset) => (little ? header.readUInt32LE(offset) : header.readUInt32BE(offset));
let shm;
function walIndex() {
  try {
    if (shm === undefined) shm = openSync(file + '-shm', 'r');
    if (readSync(shm, header, 0, 136, 0) < 136) return undefined;
  } catch {
    return undefined;
  }
  if (u32(0) !== 3007000 || header[12] !== 1 || header.compare(header, 48, 96, 0, 48) !== 0) return undefined;
  return { frames: u32(16), copied: u32(96) };
}
let copied = 0;
let restarted = false;
let lastFrames = 0;
function tick() {
  copied = 0;
  restarted = false;
  try {
    passive ??= db.prepare('pragma wal_checkpoint(PASSIVE)');
    checkpoint();
  } catch (error) {
    if (!transient(error)) throw error;
  }
  if (copied > 0 || restarted) parentPort.postMessage({ type: 'checkpointed', copied, restarted });
}
function checkpoint() {
  for (let steps = 0; steps < MAX_STEPS; steps++) {
    const wal = walIndex();
    if (wal !== undefined) {
      if (wal.frames < lastFrames) restarted = true;
      lastFrames = wal.frames;
      if (wal.frames < walPages || wal.copied >= wal.frames) break;
    }
    // checkpointed counts every frame of the WAL now in the database file, copied by this step or before.
    const result = passive.get();
    // busy: another connection (another process's checkpointer) holds the checkpoint lock; its turn.
    if (wal === undefined || result.busy !== 0) break;
    if (result.checkpointed > wal.copied) copied += result.checkpointed - wal.copied;
  }
}
const timer = setInterval(tick, intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  if (shm !== undefined) closeSync(shm);
  db.close();
  parentPort.close();
});
parentPort.postMessage({ type: 'ready' });
`;

/**
 * Where better-sqlite3 is, for the thread to load: the very copy that made `db` (found in the module
 * cache, which ESM and CommonJS share for a CommonJS package), else the one the app would resolve. A
 * `Database` object cannot cross threads, and the core imports no driver, so a path is what is passed.
 */
function driverPath(db: object): string | undefined {
  const require = createRequire(join(process.cwd(), 'index.js'));
  for (const [path, module] of Object.entries(require.cache)) if (module?.exports === db.constructor) return path;
  try {
    return require.resolve('better-sqlite3');
  } catch {
    return undefined;
  }
}

/** The file a checkpointer can open beside the store's connection; none for in-memory, temporary and read-only ones. */
export function checkpointableFile(db: SqliteFileInfo): string | undefined {
  const name = db.name?.trim();
  if (!name || name === ':memory:' || name.startsWith('file:') || db.memory === true || db.readonly === true) return undefined;
  return resolve(name);
}

const STOP_DEADLINE_MS = 5_000;

/**
 * The checkpointer thread of one store: started by `hooks.start()`, stopped by `hooks.stop()` and by the
 * store's close. Unreferenced: it never keeps the process alive.
 */
export class SqliteCheckpointer implements StoreMaintenance {
  readonly #file: string;
  readonly #db: object;
  readonly #settings: CheckpointerSettings;
  #thread: Worker | undefined;
  #stopping: Promise<void> | undefined;
  /** Counted from the thread's reports: frames it copied, and how often it let the WAL start over. */
  readonly stats = { copiedFrames: 0, restarts: 0 };

  constructor(db: object, file: string, settings: CheckpointerSettings) {
    this.#db = db;
    this.#file = file;
    this.#settings = settings;
  }

  /** The running thread, if any (tests end it to play a crash). */
  get thread(): Worker | undefined {
    return this.#thread;
  }

  start(logger: Logger): void {
    // A start while the thread is still ending begins a new one once it has ended.
    if (this.#stopping) {
      void this.#stopping.then(() => this.start(logger));
      return;
    }
    if (this.#thread) return;
    const driver = driverPath(this.#db);
    const fallback = `checkpoints run on the store's connection every ${this.#settings.backstopPages} WAL pages`;
    if (driver === undefined) {
      logger.warn({ file: this.#file }, `resthooks: better-sqlite3 not found for the SQLite checkpointer thread; ${fallback}`);
      return;
    }
    const thread = new Worker(THREAD_SOURCE, {
      eval: true,
      // No loader flags (tsx, vitest): the code is plain CommonJS, and a loader would only slow the start.
      execArgv: [],
      workerData: { driver, file: this.#file, walPages: this.#settings.walPages, intervalMs: this.#settings.intervalMs },
      stdout: false,
      stderr: false,
    });
    this.#thread = thread;
    let failure: unknown;
    thread.on('message', (report: CheckpointReport | { type: 'ready' }) => {
      if (report.type !== 'checkpointed') return;
      this.stats.copiedFrames += report.copied;
      if (report.restarted) this.stats.restarts++;
    });
    thread.on('error', (error) => (failure = error));
    thread.once('exit', (code) => {
      if (this.#thread === thread) this.#thread = undefined;
      if (this.#stopping) return;
      // Once per thread, and the thread is not restarted: a fault that kills it would kill the next one too.
      logger.error({ file: this.#file, exitCode: code, err: failure === undefined ? undefined : loggedError(failure) }, `resthooks: the SQLite checkpointer thread ended; ${fallback}`);
    });
    // After the listeners: adding a 'message' listener takes the thread's port back into the process's life.
    thread.unref();
  }

  stop(): Promise<void> {
    const thread = this.#thread;
    if (!thread) return this.#stopping ?? Promise.resolve();
    // Referenced while it ends: a process whose last other handle is gone still waits for the thread to close its connection.
    thread.ref();
    const stopping = new Promise<void>((resolveStop) => {
      const deadline = setTimeout(() => void thread.terminate(), STOP_DEADLINE_MS).unref();
      thread.once('exit', () => {
        clearTimeout(deadline);
        resolveStop();
      });
      thread.postMessage('stop');
    }).finally(() => {
      if (this.#stopping === stopping) this.#stopping = undefined;
    });
    this.#stopping = stopping;
    return stopping;
  }
}
