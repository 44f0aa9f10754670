/**
 * Standard Webhooks verification, as a receiver does it (https://www.standardwebhooks.com,
 * "Verifying webhook authenticity"): recompute `v1,<base64 HMAC>` over `id.timestamp.body` with the
 * library's own `sign`, accept if any of the space-separated signatures matches (a secret rotation
 * sends one per secret), and refuse timestamps more than 5 minutes away from now. Pure: `now` is given.
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import { sign } from '../index.js';

/** The spec's (and the `standardwebhooks` package's) replay window, in seconds, both directions. */
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

export interface SignedMessage {
  readonly id: string | undefined;
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
  /** The raw body exactly as received: re-serialized JSON would not verify. */
  readonly body: string;
}

export type Verification =
  | { readonly ok: true; /** Which of the receiver's secrets matched (0 = the first `--secret`). */ readonly secretIndex: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks one delivery against the receiver's secrets (`whsec_…`; several while the receiver itself
 * rotates). `nowSeconds` is Unix time in seconds.
 */
export function verifySignature(message: SignedMessage, secrets: readonly string[], nowSeconds: number): Verification {
  const { id, timestamp, signature, body } = message;
  if (!id || !timestamp || !signature) {
    const missing = Object.entries({ id, timestamp, signature }).filter(([, value]) => !value);
    return { ok: false, reason: `missing ${missing.map(([name]) => `webhook-${name}`).join(', ')} header` };
  }

  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: `webhook-timestamp "${timestamp.slice(0, 40)}" is not Unix seconds` };
  const sentAt = Number(timestamp);
  const age = Math.floor(nowSeconds) - sentAt;
  if (age > TIMESTAMP_TOLERANCE_SECONDS) return { ok: false, reason: `timestamp too old (${age} s ago; tolerance ${TIMESTAMP_TOLERANCE_SECONDS} s)` };
  if (-age > TIMESTAMP_TOLERANCE_SECONDS) return { ok: false, reason: `timestamp too new (${-age} s ahead; tolerance ${TIMESTAMP_TOLERANCE_SECONDS} s)` };

  // Other schemes (`v1a,` asymmetric) may be present alongside; only `v1,` is symmetric HMAC.
  const candidates = signature.split(' ').filter((part) => part.startsWith('v1,')).map((part) => Buffer.from(part));
  if (candidates.length === 0) return { ok: false, reason: 'no v1 signature in webhook-signature' };
  for (const [secretIndex, secret] of secrets.entries()) {
    const expected = Buffer.from(sign(secret, id, sentAt, body));
    // Constant-time comparison, so a forger learns nothing from response timing.
    if (candidates.some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected))) return { ok: true, secretIndex };
  }
  const reason = candidates.length === 1 ? 'signature does not match the secret' : `none of the ${candidates.length} signatures matches the secret`;
  return { ok: false, reason: secrets.length > 1 ? `${reason}s` : reason };
}
