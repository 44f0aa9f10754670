/**
 * Subscription secrets at rest: AES-256-GCM under a key ring. The first key seals, every key opens, so
 * keys can be rotated while rows sealed under the older ones keep working. A sealed value reads
 * `rhenc:v1:<key id>:<base64 of iv | ciphertext | tag>`; anything else is a plaintext secret from
 * before encryption (or stored by choice) and opens as itself. The key id, the column and the
 * subscription id are the associated data: a sealed value moved to another row, another column, or
 * relabelled with another key id fails to open. Pure: no clock, no I/O (randomness for the IV only).
 * @module
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { ConfigError, ResthooksError } from '../errors.js';

/** A key as the options give it: an id (stored with each sealed value) and 32 bytes, as base64, hex or bytes. */
export interface SecretKey {
  /** 1–12 characters: letters, digits, `-`, `_`. */
  readonly id: string;
  readonly key: string | Uint8Array;
}

/** Which column a sealed value belongs to: part of its associated data. */
export type SealedColumn = 'secret' | 'previous_secrets';

export const SEALED_PREFIX = 'rhenc:v1:';
// 12 characters keep a sealed `whsec_` secret (114 characters + the id) within the column's 128.
const KEY_ID = /^[A-Za-z0-9_-]{1,12}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;
// Opening runs once per claimed delivery, and the same sealed values come back again and again: a hit
// costs a map lookup, a miss an AES-GCM decryption (about 5 µs). Entries are about 300 bytes.
const OPENED_CACHE_LIMIT = 10_000;

/** The key id of a sealed value, or undefined for a plaintext one. */
export function sealedKeyId(stored: string): string | undefined {
  if (!stored.startsWith(SEALED_PREFIX)) return undefined;
  const end = stored.indexOf(':', SEALED_PREFIX.length);
  return end < 0 ? '' : stored.slice(SEALED_PREFIX.length, end);
}

/** 32 random bytes as base64: a new key for `secretKeys` or `RESTHOOKS_SECRET_KEYS`. */
export function generateSecretKey(): string {
  return randomBytes(32).toString('base64');
}

export class SecretBox {
  /** The key ids that open, the sealing one first. */
  readonly keyIds: readonly string[];
  /** The key new values are sealed under; null when they are stored as plaintext. */
  readonly sealingKeyId: string | null;
  readonly #keys: ReadonlyMap<string, KeyObject>;
  // Keyed by the sealed value alone (its random IV makes it unique); the row and column are checked on a hit.
  readonly #opened = new Map<string, { readonly subscriptionId: string; readonly column: SealedColumn; readonly plain: string }>();

  /** `seal: false` stores plaintext (by explicit choice) and still opens values sealed under `keys`. */
  constructor(keys: readonly SecretKey[], options: { seal: boolean } = { seal: keys.length > 0 }) {
    const ring = new Map<string, KeyObject>();
    for (const { id, key } of keys) {
      if (typeof id !== 'string' || !KEY_ID.test(id)) throw new ConfigError(`Secret key id ${JSON.stringify(id)} is not valid: use 1 to 12 letters, digits, "-" or "_".`);
      if (ring.has(id)) throw new ConfigError(`Secret key id "${id}" is listed twice; each key needs its own id.`);
      ring.set(id, createSecretKey(keyBytes(id, key)));
    }
    if (options.seal && ring.size === 0) throw new ConfigError('Sealing subscription secrets needs at least one key.');
    this.#keys = ring;
    this.keyIds = [...ring.keys()];
    this.sealingKeyId = options.seal ? this.keyIds[0]! : null;
  }

  /** Stores no key and seals nothing: what a store opened without keys reads and writes. */
  static plaintext(): SecretBox {
    return new SecretBox([], { seal: false });
  }

  /** The value to store for `plain`, a secret of subscription `subscriptionId`: sealed under the first key, or as is. */
  seal(plain: string, subscriptionId: string, column: SealedColumn = 'secret'): string {
    if (this.sealingKeyId === null) return plain;
    const keyId = this.sealingKeyId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(keyId)!, iv);
    cipher.setAAD(associatedData(keyId, column, subscriptionId));
    const sealed = Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    const stored = `${SEALED_PREFIX}${keyId}:${sealed.toString('base64')}`;
    // A subscription created in this process is delivered to by it too, often at once: its first
    // deliveries need not decrypt what was just encrypted here.
    this.#remember(stored, subscriptionId, column, plain);
    return stored;
  }

  /**
   * The secret a stored value holds. Plaintext opens as itself. Throws `ConfigError` for a value sealed
   * under a key id not in the ring, and `ResthooksError` (`secret_unreadable`) for one that does not
   * authenticate (another key under the same id, altered, or copied from another row or column).
   */
  open(stored: string, subscriptionId: string, column: SealedColumn = 'secret'): string {
    const keyId = sealedKeyId(stored);
    if (keyId === undefined) return stored;
    const cached = this.#opened.get(stored);
    if (cached !== undefined && cached.subscriptionId === subscriptionId && cached.column === column) return cached.plain;
    const key = this.#keys.get(keyId);
    if (!key) throw unknownKeyError(keyId, this.keyIds);
    const sealed = Buffer.from(stored.slice(SEALED_PREFIX.length + keyId.length + 1), 'base64');
    let plain: string;
    try {
      if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('too short');
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
      decipher.setAAD(associatedData(keyId, column, subscriptionId));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new ResthooksError(
        'secret_unreadable',
        `The ${column === 'secret' ? 'secret' : 'previous secrets'} of subscription ${subscriptionId} do not open under key "${keyId}": the key with that id is not the one it was sealed with, or the stored value was altered or copied from another row.`,
      );
    }
    this.#remember(stored, subscriptionId, column, plain);
    return plain;
  }

  #remember(stored: string, subscriptionId: string, column: SealedColumn, plain: string): void {
    // The oldest entry goes (Map keeps insertion order): past the limit, hits keep coming for recent rows.
    if (this.#opened.size >= OPENED_CACHE_LIMIT) this.#opened.delete(this.#opened.keys().next().value!);
    this.#opened.set(stored, { subscriptionId, column, plain });
  }

  /** Whether a stored value is already what `seal` would store now (sealed under the sealing key, or plaintext when not sealing). */
  isCurrent(stored: string): boolean {
    const keyId = sealedKeyId(stored);
    return this.sealingKeyId === null ? keyId === undefined : keyId === this.sealingKeyId;
  }
}

/** The error for a value sealed under a key this process was not given. */
export function unknownKeyError(keyId: string, known: readonly string[]): ConfigError {
  return new ConfigError(
    `Subscription secrets in the store are sealed under key "${keyId}", which is not configured (${known.length > 0 ? `configured: ${known.join(', ')}` : 'no keys are configured'}). ` +
      `Add that key to RESTHOOKS_SECRET_KEYS (or \`secretKeys\`) after the current one; remove a key only once \`resthooks secrets rotate\` has re-sealed every row under the first.`,
  );
}

function associatedData(keyId: string, column: SealedColumn, subscriptionId: string): Buffer {
  return Buffer.from(`${SEALED_PREFIX}${keyId}\u0000${column}\u0000${subscriptionId}`, 'utf8');
}

function keyBytes(id: string, key: string | Uint8Array): Buffer {
  const bytes =
    typeof key === 'string'
      ? /^[0-9a-f]{64}$/i.test(key)
        ? Buffer.from(key, 'hex')
        : /^[A-Za-z0-9+/]{43}=?$/.test(key)
          ? Buffer.from(key, 'base64')
          : undefined
      : key instanceof Uint8Array
        ? Buffer.from(key)
        : undefined;
  // The message names the key's id, never its value.
  if (bytes?.length !== 32) throw new ConfigError(`Secret key "${id}" must be 32 bytes: 44 characters of base64 or 64 of hex (make one with \`resthooks secrets new-key\`).`);
  return bytes;
}
