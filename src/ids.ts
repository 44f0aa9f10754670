/**
 * Ids in the published TypeID format (https://github.com/jetify-com/typeid, spec v0.3): a prefix, `_`, and
 * a UUIDv7 in 26 characters of lower-case Crockford base32, so any TypeID library can read them back and
 * tell their creation time.
 *
 * Why UUIDv7 in base32: ids sort by creation time as plain strings (newest-first paging is an index scan)
 * and read unambiguously when pasted from a log. The first 10 characters are the 48-bit millisecond
 * timestamp, encoded exactly as the ids made before this format were (`prefix_` + 10 chars of ms + 16 other
 * chars, same alphabet), so stored ids of both formats sort together by time and stay valid: ids are opaque
 * strings everywhere else.
 * @module
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** rand_a (12 bits) is a counter within one millisecond: RFC 9562 §6.2, method 1. */
const MAX_COUNTER = 0xfff;

let pool = randomBytes(4096);
let poolOffset = 0;
let lastMs = 0;
let counter = 0;
// The 10 characters of the last millisecond an id was made in, made once for all its ids.
let encodedMs = -1;
let encodedMsText = '';

export type IdPrefix = 'sub' | 'evt' | 'dlv' | 'att';

/** A 40-bit number as 8 characters, most significant first (two 20-bit halves, for 32-bit shifts). */
function encode40(value: number): string {
  const high = Math.floor(value / 0x100000);
  const low = value - high * 0x100000;
  return (
    ALPHABET[high >>> 15]! + ALPHABET[(high >>> 10) & 31]! + ALPHABET[(high >>> 5) & 31]! + ALPHABET[high & 31]! +
    ALPHABET[low >>> 15]! + ALPHABET[(low >>> 10) & 31]! + ALPHABET[(low >>> 5) & 31]! + ALPHABET[low & 31]!
  );
}

function encodeMs(ms: number): string {
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

/**
 * A new TypeID: `prefix_` + a UUIDv7 whose rand_a is a per-millisecond counter, so ids made by one process
 * sort in creation order even within one millisecond (past 4096 in a millisecond, the next ones borrow the
 * following millisecond, as a counter overflow may per RFC 9562).
 */
export function newId(prefix: IdPrefix): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else if (++counter > MAX_COUNTER) {
    lastMs++;
    counter = 0;
  }
  if (poolOffset + 8 > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  // TypeID's 26 characters are two zero bits and the UUID's 128, 5 bits each: the first 10 are exactly the
  // 48-bit milliseconds (made once per millisecond), the other 16 the 80 bits after them, taken as two 40-bit
  // numbers: version 7 and the counter (16 bits) and 24 random bits, then 40 random bits. The first two
  // random bits are the RFC 9562 variant (0b10).
  if (lastMs !== encodedMs) {
    encodedMs = lastMs;
    encodedMsText = encodeMs(lastMs);
  }
  const r = pool;
  const o = poolOffset;
  poolOffset += 8;
  const high = (0x7000 | counter) * 2 ** 24 + (0x80 | (r[o]! & 0x3f)) * 2 ** 16 + r[o + 1]! * 2 ** 8 + r[o + 2]!;
  const low = r[o + 3]! * 2 ** 32 + (((r[o + 4]! << 24) | (r[o + 5]! << 16) | (r[o + 6]! << 8) | r[o + 7]!) >>> 0);
  return `${prefix}_${encodedMsText}${encode40(high)}${encode40(low)}`;
}

/**
 * A string below every id of `prefix` made at or after `ms`, and above every id made earlier: `prefix_` and
 * the 10 timestamp characters. Both id formats start that way, so it bounds the older ids too.
 */
export function idFloor(prefix: IdPrefix, ms: number): string {
  return `${prefix}_${encodeMs(ms)}`;
}
