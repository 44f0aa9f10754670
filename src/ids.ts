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

export type IdPrefix = 'sub' | 'evt' | 'dlv' | 'att';

/** 128 bits as TypeID's 26 characters: two zero bits in front make 130 bits, 5 per character. */
function encodeUuid(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 2;
  for (const byte of bytes) {
    acc = ((acc << 8) | byte) & 0x1fff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
  }
  return out;
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
  const bytes = new Uint8Array(16);
  let ms = lastMs;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (counter >> 8); // version 7
  bytes[7] = counter & 0xff;
  bytes.set(pool.subarray(poolOffset, poolOffset + 8), 8);
  poolOffset += 8;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f); // RFC 9562 variant
  return `${prefix}_${encodeUuid(bytes)}`;
}

/**
 * A string below every id of `prefix` made at or after `ms`, and above every id made earlier: `prefix_` and
 * the 10 timestamp characters. Both id formats start that way, so it bounds the older ids too.
 */
export function idFloor(prefix: IdPrefix, ms: number): string {
  return `${prefix}_${encodeMs(ms)}`;
}
