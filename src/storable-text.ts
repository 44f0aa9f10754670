/**
 * Text every store keeps exactly as given. PostgreSQL refuses NUL (U+0000) in text columns, and an
 * unpaired surrogate has no UTF-8 form, so both drivers write U+FFFD in its place and what is read
 * back differs from what was given. Such text is refused before it reaches the store, on every
 * engine alike, as a `ValidationError` naming the field.
 * @module
 */
import { ValidationError, type ResthooksErrorCode } from './errors.js';

// With the `u` flag a well-formed surrogate pair is one code point (not Cs): only unpaired halves match.
const UNSTORABLE = /[\u0000\p{Cs}]/u;

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
