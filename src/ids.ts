import { randomBytes } from 'node:crypto';

// Crockford base32, lower case: ids sort by creation time as plain strings (newest-first paging
// is an index scan), and read unambiguously when pasted from a log.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

let pool = randomBytes(4096);
let poolOffset = 0;
let lastMs = 0;
let sequence = 0;

function encode(value: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}

function randomChars(count: number): string {
  if (poolOffset + count > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  let out = '';
  for (let i = 0; i < count; i++) out += ALPHABET[pool[poolOffset++]! & 31];
  return out;
}

export type IdPrefix = 'sub' | 'evt' | 'dlv' | 'att';

/**
 * `prefix_` + 10 chars of milliseconds + 4 chars of per-millisecond sequence + 12 random chars.
 * Monotonic within a process, so two ids made in the same millisecond still sort in creation order.
 */
export function newId(prefix: IdPrefix): string {
  let now = Date.now();
  if (now <= lastMs) {
    now = lastMs;
    sequence++;
    if (sequence >= 32 ** 4) {
      now = ++lastMs;
      sequence = 0;
    }
  } else {
    lastMs = now;
    sequence = 0;
  }
  return `${prefix}_${encode(now, 10)}${encode(sequence, 4)}${randomChars(12)}`;
}

/** The smallest id of `prefix` made at or after `ms`: ids below it were all made earlier. */
export function idFloor(prefix: IdPrefix, ms: number): string {
  return `${prefix}_${encode(ms, 10)}`;
}
