/**
 * Text every store keeps exactly as given. PostgreSQL refuses NUL (U+0000) in `text` (and fails the
 * whole transaction that writes it), and a lone UTF-16 surrogate has no UTF-8 form, so each driver
 * would store something other than what it was given. Text from callers (ids, owners, targets) that
 * holds either is refused (`checkStorableText`); text from outside (a receiver's answer, an error
 * message) is repaired (`storableText`), both becoming U+FFFD, the mark a decoder leaves for bytes it
 * could not read.
 * @module
 */
import { ValidationError, type ResthooksErrorCode } from '../errors.js';

const REPLACEMENT = '\uFFFD';
// With the `u` flag a well-formed surrogate pair is one code point (not Cs): only unpaired halves match.
const UNSTORABLE = /[\u0000\p{Cs}]/u;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'gu');

/** What makes `text` unstorable, in words ("a NUL character (U+0000)"), or undefined when it is fine. */
export function unstorableTextProblem(text: string): string | undefined {
  const found = UNSTORABLE.exec(text)?.[0];
  if (found === undefined) return undefined;
  if (found === '\u0000') return 'a NUL character (U+0000)';
  return `an unpaired surrogate (U+${found.charCodeAt(0).toString(16).toUpperCase()}, not valid Unicode)`;
}

/** Throws `ValidationError` (`code`, default `invalid_field`) when the string `value` cannot be stored as given. */
export function checkStorableText(value: unknown, field: string, code: ResthooksErrorCode = 'invalid_field'): void {
  if (typeof value !== 'string') return;
  const problem = unstorableTextProblem(value);
  if (problem !== undefined) throw new ValidationError(code, `\`${field}\` contains ${problem}, which cannot be stored.`, field);
}

/**
 * `text` without NUL and with every lone surrogate replaced by U+FFFD; when `maxUtf8Bytes` is given,
 * also cut to at most that many UTF-8 bytes, never inside a character.
 */
export function storableText(text: string, maxUtf8Bytes?: number): string;
export function storableText(text: string | null, maxUtf8Bytes?: number): string | null;
export function storableText(text: string | null, maxUtf8Bytes?: number): string | null {
  if (text === null) return null;
  const clean = text.replace(UNSTORABLE_ALL, REPLACEMENT);
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
