/**
 * The demo's own request helpers, built on the package's public API only: its routes read JSON bodies within
 * a limit and answer errors in the API's shape, `{"error":{"code","message"}}`, so a client sees one format.
 */
import { ApiError } from 'resthooks/api';
import type { Logger } from 'resthooks';

/** The REST API's default body limit, 64 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;

// application/json and any structured +json type (RFC 6839 §3.1), parameters ignored.
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** The body as a JSON object; 415 for a declared non-JSON type, 413 over `maxBytes` (declared or streamed). */
export async function readJsonObject(request: Request, maxBytes: number): Promise<Record<string, unknown>> {
  const type = request.headers.get('content-type');
  if (type !== null && !JSON_TYPE.test(type)) {
    throw new ApiError(415, 'unsupported_media_type', `The body must be JSON (content-type: application/json), not ${type.split(';')[0]}.`);
  }
  const text = new TextDecoder().decode(await readLimited(request, maxBytes));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', text.trim() === '' ? 'The body is empty; send a JSON object.' : 'The body is not valid JSON.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'invalid_json', 'The body must be a JSON object.');
  return value as Record<string, unknown>;
}

// Stops reading at the limit: a huge or endless upload is cut off, never buffered.
async function readLimited(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new ApiError(413, 'payload_too_large', `The body is larger than the limit of ${maxBytes} bytes.`);
  if (Number(request.headers.get('content-length') ?? Number.NaN) > maxBytes) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

// The resthooks error codes a caller can cause, by status; anything else is the server's problem (500).
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  unknown_event: 400,
  invalid_target: 400,
  target_refused: 400,
  target_unresolvable: 400,
  invalid_field: 400,
  payload_too_large: 413,
  not_found: 404,
  conflict: 409,
};

/** Any thrown value as the API's JSON error response; recognised by `code`, never by `instanceof`. */
export function errorResponse(error: unknown, logger: Pick<Logger, 'error'>): Response {
  const json = (status: number, code: string, message: string) =>
    new Response(JSON.stringify({ error: { code, message } }), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });
  if (error instanceof ApiError) return json(error.status, error.code, error.message);
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && Object.hasOwn(STATUS_OF_CODE, code)) return json(STATUS_OF_CODE[code]!, code, (error as Error).message);
  logger.error({ err: error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) } }, 'bookstore: unexpected error');
  return json(500, 'internal', 'Internal error');
}

export const consoleLogger: Pick<Logger, 'error'> = { error: (obj, msg) => console.error(msg, obj) };

/** Text PostgreSQL can store as given: no NUL, no unpaired surrogate (which would come back as U+FFFD). */
export function isStorableText(text: string): boolean {
  return !/[\u0000\p{Cs}]/u.test(text);
}
