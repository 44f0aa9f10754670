/**
 * `resealSecrets()`: the key rotation and the migration of plaintext rows. Every subscription's
 * secrets end up sealed under the first key, page by page; safe to run again, and beside running
 * apps and workers (each row is one guarded UPDATE, and every process still opens the older keys).
 * @module
 */
import { KyselyStore } from './kysely-store.js';
import { resolveSecretStorage, type SecretStorageOptions } from './secret-keys.js';
import type { StoreDialect } from './store-dialect.js';

export interface ResealSecretsOptions extends SecretStorageOptions {
  /** Subscriptions read per page. Default 500. */
  readonly batchSize?: number;
  /** Where `RESTHOOKS_SECRET_KEYS` is read when `secretKeys` is not given. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called after each page, e.g. to print progress. */
  readonly onPage?: (progress: ResealSecretsResult) => void;
}

export interface ResealSecretsResult {
  /** The key every secret is now sealed under; null when they are now stored unencrypted (`secretStorage: 'plaintext'`). */
  readonly keyId: string | null;
  /** Subscriptions read. */
  readonly scanned: number;
  /** Subscriptions whose secrets were re-sealed (the others were current already). */
  readonly resealed: number;
}

/**
 * Re-seals every subscription's secrets under the first key: after a new key was put first, and once
 * to encrypt the rows stored before encryption. Needs every key rows are sealed under (throws
 * `ConfigError` naming a missing one, before changing anything); without keys, throws `ConfigError`,
 * unless `secretStorage: 'plaintext'` asks to store them unencrypted again.
 * @example
 * // RESTHOOKS_SECRET_KEYS="k2:<new key>,k1:<old key>"
 * const { resealed } = await resealSecrets(postgresStore(pool));
 */
export async function resealSecrets(store: StoreDialect, options: ResealSecretsOptions = {}): Promise<ResealSecretsResult> {
  // A command is never "development": with no key it stops rather than writes plaintext.
  const { box } = resolveSecretStorage(options, options.env ?? process.env, false);
  const kysely = new KyselyStore(store, box);
  await kysely.ready(false);
  const batchSize = options.batchSize ?? 500;
  let progress: ResealSecretsResult = { keyId: box.sealingKeyId, scanned: 0, resealed: 0 };
  let after: string | undefined;
  do {
    const page = await kysely.resealSecrets(batchSize, after);
    progress = { ...progress, scanned: progress.scanned + page.scanned, resealed: progress.resealed + page.resealed };
    options.onPage?.(progress);
    after = page.last;
  } while (after !== undefined);
  return progress;
}
