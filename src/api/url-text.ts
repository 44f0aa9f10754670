/**
 * The edge check of what a URL carries to the store: ids in the path and cursors, filters and names
 * in the query are compared against text columns, and PostgreSQL fails a query that holds a NUL
 * (`%00`). Refused here, as a 400 naming the part at fault, before any route runs.
 * @module
 */
import { ValidationError } from '../errors.js';
import { checkStorableText, unstorableTextProblem } from '../store/storable-text.js';

/** Throws `ValidationError` (`invalid_field`) when a decoded path segment or query parameter of `url` cannot be stored. */
export function checkUrlText(url: string): void {
  const { pathname, search, searchParams } = new URL(url);
  // A URL is ASCII: only a percent-escape can decode to NUL.
  if (pathname.includes('%')) {
    for (const segment of pathname.split('/')) {
      const problem = unstorableTextProblem(decodeSegment(segment));
      if (problem !== undefined) throw new ValidationError('invalid_field', `The path contains ${problem}, which no id or name can hold.`, 'path');
    }
  }
  if (search.includes('%')) {
    for (const [name, value] of searchParams) {
      checkStorableText(name, 'query');
      checkStorableText(value, name);
    }
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // Not UTF-8 once decoded: routes see it undecoded, which is plain ASCII.
    return segment;
  }
}
