/**
 * Text from outside (a receiver's answer, an error message) made fit for a text column on every
 * engine: PostgreSQL refuses NUL in `text` and would fail the whole transaction that writes it, and
 * a lone UTF-16 surrogate has no UTF-8 form, so each driver would store something other than what
 * it was given. Both become U+FFFD, the mark a decoder leaves for bytes it could not read.
 * @module
 */

const REPLACEMENT = '\uFFFD';
// NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` without NUL and with every lone surrogate replaced by U+FFFD; when `maxUtf8Bytes` is given,
 * also cut to at most that many UTF-8 bytes, never inside a character.
 */
export function storableText(text: string, maxUtf8Bytes?: number): string;
export function storableText(text: string | null, maxUtf8Bytes?: number): string | null;
export function storableText(text: string | null, maxUtf8Bytes?: number): string | null {
  if (text === null) return null;
  const clean = text.replace(UNSTORABLE, REPLACEMENT);
  return maxUtf8Bytes === undefined ? clean : truncateUtf8(clean, maxUtf8Bytes);
}

/** The longest prefix of `text` (well-formed) whose UTF-8 form fits in `maxBytes`. */
function truncateUtf8(text: string, maxBytes: number): string {
  // Each UTF-16 unit is at most 3 UTF-8 bytes: short text needs no counting.
  if (text.length * 3 <= maxBytes) return text;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    const isPair = unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length;
    const size = unit < 0x80 ? 1 : unit < 0x800 ? 2 : isPair ? 4 : 3;
    if (bytes + size > maxBytes) return text.slice(0, i);
    bytes += size;
    if (isPair) i++;
  }
  return text;
}
