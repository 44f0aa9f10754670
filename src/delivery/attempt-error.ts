/**
 * The error text of a failed attempt, as recorded in the delivery log: short, stable, and naming what
 * happened on the wire (`connection refused`, `invalid HTTP response (HPE_INVALID_CONSTANT)`, …),
 * never an HTTP client's internal wording, which changes between versions and can be an assertion's text.
 * @module
 */

/** Our own timeout: the whole attempt, connecting included. */
export class AttemptTimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'AttemptTimeoutError';
  }
}

const BY_CODE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ECONNABORTED: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network unreachable',
  EADDRNOTAVAIL: 'network unreachable',
  ETIMEDOUT: 'connect timeout',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  // undici's own timers are set to the attempt timeout, ours fires first; these are a fallback.
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for the response',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the response',
  UND_ERR_HEADERS_OVERFLOW: 'invalid HTTP response (headers too large)',
  UND_ERR_CLOSED: 'sender closed',
  UND_ERR_DESTROYED: 'sender closed',
  ERR_INVALID_URL: 'invalid target URL',
  // An internal consistency check of the HTTP client tripped by what the peer sent.
  ERR_ASSERTION: 'invalid HTTP response',
};

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA', 'ESERVFAIL', 'ETIMEOUT']);

// Node's TLS layer reports OpenSSL's certificate verdicts under these codes (and ERR_SSL_* / ERR_TLS_*).
const CERTIFICATE_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'HOSTNAME_MISMATCH',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
]);

/** Longest free text kept from an error we have no name for (its first line). */
const MAX_UNKNOWN_TEXT = 200;

/** Pure: the recorded error text for whatever an attempt failed with. */
export function attemptErrorMessage(error: unknown): string {
  if (error instanceof AttemptTimeoutError) return error.message;
  if (!(error instanceof Error)) return firstLine(String(error)) || 'request failed';
  const code = codeOf(error) ?? codeOf(error.cause);
  // The SSRF guard's own refusal explains itself.
  if (code === 'ERR_RESTHOOKS_TARGET_REFUSED') return firstLine(error.message);
  if (code === 'UND_ERR_SOCKET') return socketErrorMessage(error.message);
  if (code !== undefined) {
    const named = BY_CODE[code];
    if (named) return named;
    if (code.startsWith('HPE_')) return `invalid HTTP response (${code})`;
    if (DNS_CODES.has(code)) return `DNS lookup failed (${code})`;
    if (CERTIFICATE_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS error (${code})`;
    if (code === 'UND_ERR_INVALID_ARG') return `invalid request: ${firstLine(error.message)}`;
  }
  if (error.name === 'HTTPParserError') return 'invalid HTTP response';
  const text = firstLine(error.message);
  if (code !== undefined) return text ? `request failed (${code}): ${text}` : `request failed (${code})`;
  return text || error.name || 'request failed';
}

function socketErrorMessage(message: string): string {
  // undici's SocketError messages: "other side closed", "closed", "bad response", "bad upgrade", "reset".
  if (message === 'bad response' || message === 'bad upgrade') return 'invalid HTTP response';
  if (message === 'reset') return 'connection reset';
  return 'connection closed by the receiver';
}

function codeOf(value: unknown): string | undefined {
  const code = (value as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

function firstLine(text: string): string {
  const line = text.split(/\r?\n/, 1)[0]!.trim();
  return line.length > MAX_UNKNOWN_TEXT ? `${line.slice(0, MAX_UNKNOWN_TEXT)}…` : line;
}
