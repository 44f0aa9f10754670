/**
 * Coalesces the claim reads of jobs that start together into one store query. A BullMQ worker starts
 * jobs as Redis hands them over, often several in one turn of the event loop (one socket read holds
 * several replies); each job still gets its own claims, or `undefined` for each one gone.
 * @module
 */
import type { ClaimedDelivery } from '../../store/kysely-store.js';

/** A job's read: its ids, and where its claims go (in the ids' order, undefined where gone). */
interface Waiter {
  readonly ids: readonly string[];
  readonly resolve: (claims: Array<ClaimedDelivery | undefined>) => void;
  readonly reject: (error: unknown) => void;
}

export class ClaimReader {
  readonly #load: (ids: readonly string[]) => Promise<ClaimedDelivery[]>;
  #waiting: Waiter[] = [];

  constructor(load: (ids: readonly string[]) => Promise<ClaimedDelivery[]>) {
    this.#load = load;
  }

  async read(id: string): Promise<ClaimedDelivery | undefined> {
    return (await this.readAll([id]))[0];
  }

  /** A job's claims, in the order of `ids` (undefined where gone): one promise per job, not per delivery. */
  readAll(ids: readonly string[]): Promise<Array<ClaimedDelivery | undefined>> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ ids, resolve, reject });
      // After the I/O callbacks of this turn: the jobs started by the same socket read join in.
      if (this.#waiting.length === 1) setImmediate(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const waiting = this.#waiting;
    this.#waiting = [];
    try {
      const ids = new Set<string>();
      for (const waiter of waiting) for (const id of waiter.ids) ids.add(id);
      const claims = new Map((await this.#load([...ids])).map((claim) => [claim.id, claim]));
      for (const waiter of waiting) waiter.resolve(waiter.ids.map((id) => claims.get(id)));
    } catch (error) {
      for (const waiter of waiting) waiter.reject(error);
    }
  }
}
