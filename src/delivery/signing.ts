/**
 * Standard Webhooks signing (https://www.standardwebhooks.com, "Signature scheme"):
 * `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)), where key is the base64 part of
 * the `whsec_` secret. Pure functions: no clock, no I/O.
 * @module
 */
import { createHmac, randomBytes } from 'node:crypto';

const PREFIX = 'whsec_';
const keyCache = new Map<string, Buffer>();

/** A new `whsec_` secret: 32 random bytes, base64. */
export function generateSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

function signingKey(secret: string): Buffer {
  let key = keyCache.get(secret);
  if (!key) {
    key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
    if (keyCache.size > 1024) keyCache.clear();
    keyCache.set(secret, key);
  }
  return key;
}

/** One `v1,<base64>` signature. `timestamp` is in seconds, as sent in `webhook-timestamp`. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return 'v1,' + createHmac('sha256', signingKey(secret)).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

/**
 * The three Standard Webhooks headers. With several secrets (a rotation's grace period) the
 * signatures are space-separated and a receiver accepts the message if any one verifies.
 */
export function signatureHeaders(id: string, timestamp: number, body: string, secrets: readonly string[]): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    // One secret but during a rotation: no array made and joined per attempt for it.
    'webhook-signature': secrets.length === 1 ? sign(secrets[0]!, id, timestamp, body) : secrets.map((secret) => sign(secret, id, timestamp, body)).join(' '),
  };
}

/**
 * The older REST Hooks convention: `x-hook-signature` = hex HMAC-SHA256 of the body, keyed with the
 * secret string as the receiver holds it. Weaker than Standard Webhooks (no id or timestamp, so
 * replayable); sent only when `delivery.legacySignatureHeader` is on.
 */
export function legacySignature(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}
