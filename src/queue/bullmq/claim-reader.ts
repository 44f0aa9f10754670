/**
 * Coalesces the claim reads of jobs that start together into one store query. A BullMQ worker starts
 * jobs as Redis hands them over, often several in one turn of the event loop (one socket read holds
 * several replies); each job still gets its own claim, or `undefined` when it is gone.
 * @module
 */
import type { ClaimedDelivery } from '../../store/kysely-store.js';

interface Waiter {
  readonly resolve: (claim: ClaimedDelivery | undefined) => void;
  readonly reject: (error: unknown) => void;
}

export class ClaimReader {
  readonly #load: (ids: readonly string[]) => Promise<ClaimedDelivery[]>;
  #waiting = new Map<string, Waiter[]>();
  #scheduled = false;

  constructor(load: (ids: readonly string[]) => Promise<ClaimedDelivery[]>) {
    this.#load = load;
  }

  read(id: string): Promise<ClaimedDelivery | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.#waiting.get(id);
      if (waiters) waiters.push({ resolve, reject });
      else this.#waiting.set(id, [{ resolve, reject }]);
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After the I/O callbacks of this turn: the jobs started by the same socket read join in.
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    const waiting = this.#waiting;
    this.#waiting = new Map();
    this.#scheduled = false;
    try {
      const claims = new Map((await this.#load([...waiting.keys()])).map((claim) => [claim.id, claim]));
      for (const [id, waiters] of waiting) for (const waiter of waiters) waiter.resolve(claims.get(id));
    } catch (error) {
      for (const waiters of waiting.values()) for (const waiter of waiters) waiter.reject(error);
    }
  }
}
