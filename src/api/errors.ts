/**
 * The API's one error dictionary and the one place errors become responses (Hono's
 * `HTTPException.getResponse` + `onError`): every 4xx/5xx body is `{"error":{"code","message"}}`.
 * @module
 */
import type { ResthooksErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';

/** Codes the API adds to the core's `ResthooksErrorCode`s. */
export type ApiErrorCode = 'unauthorized' | 'invalid_json' | 'unsupported_media_type' | 'payload_too_large' | 'not_found' | 'internal';

/** An error raised by the HTTP layer itself (auth, body reading, routing). */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  constructor(status: number, code: ApiErrorCode, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

// Core codes a caller can cause, by status. Anything else (config_invalid, migration_required, …)
// is the server's problem: logged, and answered as a bare 500.
const STATUS_OF_CORE_CODE: Readonly<Partial<Record<ResthooksErrorCode, number>>> = {
  unknown_event: 400,
  invalid_target: 400,
  target_refused: 400,
  target_unresolvable: 400,
  invalid_field: 400,
  payload_too_large: 413,
  not_found: 404,
  conflict: 409,
};

/** The JSON error body, as every route and the docs show it. */
export interface ErrorBody {
  error: { code: string; message: string };
}

function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/**
 * The status of a core error a caller can cause (400, 404, 409, 413), or undefined for anything else.
 * Recognised by its stable `code` rather than `instanceof`, so it still matches when the core and the
 * API are loaded from separate bundles.
 */
export function coreErrorStatus(error: unknown): number | undefined {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && Object.hasOwn(STATUS_OF_CORE_CODE, code) ? STATUS_OF_CORE_CODE[code as ResthooksErrorCode] : undefined;
}

/** Maps any thrown value to a response. */
export function errorResponse(error: unknown, logger: Pick<Logger, 'error'>): Response {
  if (error instanceof ApiError) return respond(error.status, error.code, error.message, error.status === 401);
  const status = coreErrorStatus(error);
  if (status !== undefined) return respond(status, (error as { code: string }).code, (error as Error).message, false);
  logger.error({ err: error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) } }, 'resthooks api: unexpected error');
  return respond(500, 'internal', 'Internal error', false);
}

function respond(status: number, code: string, message: string, challenge: boolean): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  // RFC 9110 §15.5.2: a 401 carries a WWW-Authenticate challenge.
  if (challenge) headers['www-authenticate'] = 'Bearer';
  return new Response(JSON.stringify(errorBody(code, message)), { status, headers });
}
