/**
 * The timeouts of the attempts in flight, on one timer. A timer per attempt, set when it starts and
 * cleared when its answer comes (almost always first), made a Timeout object and two timer-list
 * operations per delivery. Attempts with the same timeout reach their deadlines in the order they
 * started, so each timeout length keeps its attempts in a `Set` (insertion order) and only the earliest
 * deadline of all is on the timer. An attempt that settles leaves its set; the timer is cleared once
 * none is left, so that, as before, nothing keeps the process alive after the last attempt.
 * @module
 */

/** An attempt as the deadlines see it: when it times out (`performance.now()` clock), and what then. */
export interface Expiring {
  readonly deadline: number;
  timeout(): void;
}

export class Deadlines<T extends Expiring> {
  readonly #byLength = new Map<number, Set<T>>();
  #count = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  /** `lengthMs`: the timeout the deadline was made with (`deadline` = its start + `lengthMs`). */
  add(item: T, lengthMs: number): void {
    let waiting = this.#byLength.get(lengthMs);
    if (!waiting) this.#byLength.set(lengthMs, (waiting = new Set()));
    waiting.add(item);
    this.#count++;
    if (item.deadline < this.#timerAt) this.#arm(item.deadline);
  }

  delete(item: T, lengthMs: number): void {
    if (!this.#byLength.get(lengthMs)?.delete(item)) return;
    // The timer stays armed for a deadline that went: when it fires, it finds the next one.
    if (--this.#count === 0) this.#disarm();
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(at - performance.now())));
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [length, waiting] of this.#byLength) {
      for (const item of waiting) {
        if (item.deadline > now) {
          if (item.deadline < next) next = item.deadline;
          break;
        }
        waiting.delete(item);
        this.#count--;
        item.timeout();
      }
      if (waiting.size === 0) this.#byLength.delete(length);
    }
    // A timeout may have started another attempt (a callback), which armed the timer already.
    if (next < this.#timerAt) this.#arm(next);
  };
}
