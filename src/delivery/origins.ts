/**
 * The origin (scheme, host and port) of a subscription's target: what a connection pool, and so a
 * per-origin cap, is keyed by, and the path a request to it asks for. Targets are stored as written, so
 * each is parsed once and remembered, by the sender and by the caps alike.
 * @module
 */

/** Targets remembered at most; past it the cache starts over (a URL parse is cheap, a leak is not). */
const TARGET_CACHE_LIMIT = 10_000;

export interface ParsedTarget {
  readonly origin: string;
  /** The path and query a request to the target asks for. */
  readonly path: string;
}

const parsed = new Map<string, ParsedTarget>();

/** The target's origin and path. Throws as `new URL()` does (ERR_INVALID_URL) for one that is not a URL. */
export function parseTarget(target: string): ParsedTarget {
  let known = parsed.get(target);
  if (known === undefined) {
    const url = new URL(target);
    known = { origin: url.origin, path: url.pathname + url.search };
    if (parsed.size >= TARGET_CACHE_LIMIT) parsed.clear();
    parsed.set(target, known);
  }
  return known;
}

/** The target's origin; '' for a target that is not a URL. */
export function originOf(target: string): string {
  try {
    return parseTarget(target).origin;
  } catch {
    return '';
  }
}
