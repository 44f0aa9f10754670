/**
 * The origin (scheme, host and port) of a subscription's target: what a connection pool, and so a
 * per-origin cap, is keyed by. Targets are stored as written, so each is parsed once and remembered.
 * @module
 */

/** Targets remembered at most; past it the cache starts over (a URL parse is cheap, a leak is not). */
const ORIGIN_CACHE_LIMIT = 10_000;

export class Origins {
  readonly #byTarget = new Map<string, string>();

  /** The target's origin; '' for a target that is not a URL. */
  of(target: string): string {
    let origin = this.#byTarget.get(target);
    if (origin === undefined) {
      try {
        origin = new URL(target).origin;
      } catch {
        origin = '';
      }
      if (this.#byTarget.size >= ORIGIN_CACHE_LIMIT) this.#byTarget.clear();
      this.#byTarget.set(target, origin);
    }
    return origin;
  }
}
