/**
 * Reads a request body within a byte limit, without trusting Content-Length and without buffering
 * more than the limit: as one JSON object (the API, the demo's routes), or as bytes (the admin page's forms).
 * @module
 */
import { ApiError } from './errors.js';

/** The API's default `maxBodyBytes`: 64 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

// application/json and any structured +json type (RFC 6839 §3.1), parameters ignored.
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * The body as a JSON object. A declared non-JSON content type is 415; a missing one is tolerated
 * (curl without `-H`), since the bytes must still parse as JSON. Over `maxBytes` is 413, whether the
 * client declared its length or streamed it chunked.
 */
export async function readJsonObject(request: Request, maxBytes: number): Promise<Record<string, unknown>> {
  const type = request.headers.get('content-type');
  if (type !== null && !JSON_TYPE.test(type)) {
    throw new ApiError(415, 'unsupported_media_type', `The body must be JSON (content-type: application/json), not ${type.split(';')[0]}.`);
  }
  const tooLarge = () => new ApiError(413, 'payload_too_large', `The body is larger than the limit of ${maxBytes} bytes.`);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(await readBodyBytes(request, maxBytes, tooLarge));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', text.trim() === '' ? 'The body is empty; send a JSON object.' : 'The body is not valid JSON.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(400, 'invalid_json', 'The body must be a JSON object, e.g. {"event":"book.added","target":"https://example.com/hooks"}.');
  }
  return value as Record<string, unknown>;
}

/**
 * The whole body (empty when there is none). Throws `tooLarge()` as soon as the declared length or
 * the bytes read so far pass `maxBytes`, and stops reading there, whether the client declared its
 * length or streamed it chunked.
 */
export async function readBodyBytes(request: Request, maxBytes: number, tooLarge: () => Error): Promise<Uint8Array> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concat(chunks, size);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
