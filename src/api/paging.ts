/**
 * Query-string paging shared by the list routes. The body stays a plain array (docs/api.md); the next
 * page is announced in headers.
 * @module
 */
import type { Context } from 'hono';
import { ValidationError } from '../errors.js';

/** `?limit=`: an integer from 1 to `max`; absent → `fallback`. */
export function limitParam(c: Context, fallback: number, max = 100): number {
  const raw = c.req.query('limit');
  if (raw === undefined) return fallback;
  const limit = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(limit >= 1 && limit <= max)) throw new ValidationError('invalid_field', `\`limit\` must be an integer from 1 to ${max}.`, 'limit');
  return limit;
}

/**
 * The cursor of the page after `items`, a page the core returned for `limit`: a full page may have more
 * behind it (so the last page may be empty), a shorter one is the end.
 */
export function nextCursorOf(items: readonly { id: string }[], limit: number): string | null {
  return items.length === limit ? items.at(-1)!.id : null;
}

/**
 * Announces the next page as `X-Next-Cursor` and as an RFC 8288 `Link: <?…>; rel="next"`. The link is
 * a query-only reference (RFC 3986 §5.2), so it resolves against the request URL wherever the API is
 * mounted.
 */
export function announceNextPage(c: Context, cursor: string | null, limit: number): void {
  if (cursor === null) return;
  const query = new URLSearchParams({ limit: String(limit), cursor });
  c.header('x-next-cursor', cursor);
  c.header('link', `<?${query.toString()}>; rel="next"`);
}
