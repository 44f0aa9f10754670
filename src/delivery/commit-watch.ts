/**
 * Wakes the dispatcher after a trigger that wrote through the caller's transaction (`{ tx }`, `modelSync`).
 * The outbox row becomes visible when the caller commits, which resthooks is not told about: instead of
 * waiting for the next poll (1 s by default), the dispatcher looks again as soon as the caller's synchronous
 * code is done (a microtask: a synchronous transaction, better-sqlite3's, has committed by then), then after
 * 1, 2, 4, … 512 ms, for asynchronous transactions, which an ORM usually commits within a few milliseconds.
 * Works the same on every driver and ORM, and costs a bounded number of dispatcher passes per burst of
 * triggers, however many triggers the burst has. ORM adapters that see the commit announce it instead
 * (`announcingCommit`).
 *
 * Armed only between `start()` and `stop()`: a stopped dispatcher would not look, so a watch armed while
 * stopped would only cost the app's writes timers for nothing. A write seen while stopped is remembered, and
 * `start()` starts the looks for it (its transaction may commit after the dispatcher's first pass).
 * @module
 */

/** Delays between the looks after the first one. */
const COMMIT_WATCH_DELAYS_MS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export class CommitWatch {
  readonly #look: () => void;
  #running = false;
  /** A write came while stopped. */
  #missed = false;
  #step = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(look: () => void) {
    this.#look = look;
  }

  start(): void {
    this.#running = true;
    if (this.#missed) this.written();
    this.#missed = false;
  }

  /** A trigger wrote in a transaction: (re)start the looks. A burst shares one schedule. */
  written(): void {
    if (!this.#running) {
      this.#missed = true;
      return;
    }
    this.#step = 0;
    if (this.#timer !== undefined) return;
    queueMicrotask(this.#look);
    this.#schedule();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    const delay = COMMIT_WATCH_DELAYS_MS[this.#step];
    if (delay === undefined || !this.#running) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#step++;
      this.#look();
      this.#schedule();
    }, delay);
    // A watch never keeps the process alive: the poll finds the event anyway.
    this.#timer.unref();
  }
}
