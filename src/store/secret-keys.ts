/**
 * Which keys seal subscription secrets, from the options or the environment, and what happens with
 * none: plaintext only by explicit choice (`secretStorage: 'plaintext'`), or with one warning in
 * development; in production, no keys and no choice stop the start-up. Pure: the environment is given.
 * @module
 */
import { ConfigError } from '../errors.js';
import { SecretBox, type SecretKey } from './secret-box.js';

/** `'encrypted'`: keys are required. `'plaintext'`: new secrets are stored as is (keys, if any, still open sealed ones). */
export type SecretStorage = 'encrypted' | 'plaintext';

export interface SecretStorageOptions {
  readonly secretKeys?: readonly SecretKey[];
  readonly secretStorage?: SecretStorage;
}

export const SECRET_KEYS_ENV = 'RESTHOOKS_SECRET_KEYS';
export const SECRET_STORAGE_ENV = 'RESTHOOKS_SECRET_STORAGE';

export interface ResolvedSecretStorage {
  readonly box: SecretBox;
  /** Set when secrets will be stored as plaintext only because this is development: say it once. */
  readonly warning?: string;
}

const HOW_TO_SET =
  `set ${SECRET_KEYS_ENV}="<id>:<32 bytes of base64>" (make one with \`resthooks secrets new-key\`) or pass \`secretKeys: [{ id, key }]\`, ` +
  `or choose \`secretStorage: 'plaintext'\` (${SECRET_STORAGE_ENV}=plaintext) to store them unencrypted`;

/** `RESTHOOKS_SECRET_KEYS`: `id:key` pairs, comma-separated, the sealing key first. */
export function parseSecretKeys(text: string): SecretKey[] {
  return text
    .split(',')
    .map((pair) => pair.trim())
    .filter((pair) => pair !== '')
    .map((pair) => {
      const colon = pair.indexOf(':');
      // Never echo the pair: it holds the key.
      if (colon < 1) throw new ConfigError(`${SECRET_KEYS_ENV} must be comma-separated "<id>:<key>" pairs; one of them has no "<id>:".`);
      return { id: pair.slice(0, colon), key: pair.slice(colon + 1) };
    });
}

export function resolveSecretStorage(options: SecretStorageOptions, env: Readonly<Record<string, string | undefined>>, development: boolean): ResolvedSecretStorage {
  const storage = options.secretStorage ?? storageFromEnv(env[SECRET_STORAGE_ENV]);
  if (storage !== undefined && storage !== 'encrypted' && storage !== 'plaintext') {
    throw new ConfigError(`secretStorage must be 'encrypted' or 'plaintext', got ${JSON.stringify(storage)}.`);
  }
  const envKeys = env[SECRET_KEYS_ENV];
  const keys = options.secretKeys ?? (envKeys ? parseSecretKeys(envKeys) : []);
  if (!Array.isArray(keys)) throw new ConfigError('secretKeys must be an array of { id, key }, the sealing key first.');
  if (storage === 'plaintext') return { box: new SecretBox(keys, { seal: false }) };
  if (keys.length > 0) return { box: new SecretBox(keys, { seal: true }) };
  if (storage === 'encrypted') throw new ConfigError(`secretStorage is 'encrypted' but no key is configured: ${HOW_TO_SET}.`);
  if (!development) throw new ConfigError(`Subscription secrets are encrypted at rest and no key is configured: ${HOW_TO_SET}.`);
  return {
    box: SecretBox.plaintext(),
    warning: `resthooks: subscription secrets are stored unencrypted (development, no key configured). In production this is an error: ${HOW_TO_SET}.`,
  };
}

function storageFromEnv(value: string | undefined): SecretStorage | undefined {
  return value === undefined || value === '' ? undefined : (value as SecretStorage);
}
