/**
 * `resthooks secrets`: `new-key` prints a key for RESTHOOKS_SECRET_KEYS; `rotate` re-seals every
 * subscription's secrets under the first key (after a key rotation, and once for rows stored before
 * encryption). The keys come from the environment, as for every process of the app.
 * @module
 */
import { parseArgs } from 'node:util';
import { ConfigError, generateSecretKey, resealSecrets, type ResealSecretsResult } from '../index.js';
import { CliError, integer, UsageError, usageErrors, type Command } from './command.js';
import { describeError, describeTarget, openStore, parseDatabaseTarget } from './migrate.js';

const help = `Usage: resthooks secrets new-key [--id <id>]
       resthooks secrets rotate [--db <file | postgres://url>] [--batch-size <n>]

Subscription secrets are stored encrypted (AES-256-GCM) under the keys in
RESTHOOKS_SECRET_KEYS: "<id>:<key>" pairs, comma-separated. The first key
encrypts; every listed key decrypts.

  new-key   print a new random key, as an "<id>:<key>" pair to put in
            RESTHOOKS_SECRET_KEYS (first, to encrypt with it)
  rotate    re-encrypt every subscription's secrets under the first key,
            in batches; rows stored unencrypted are encrypted too. Safe to
            run again, and while apps and workers run, as long as they
            have every key rows are sealed under. Stops, changing nothing,
            when a row is sealed under a key not listed.

Options:
  --id <id>           new-key: the key's id (default: k<yyyymmdd>)
  --db <target>       rotate: a SQLite file path, or a postgres:// URL
                      (default: $DATABASE_URL)
  --batch-size <n>    rotate: subscriptions per batch (default 500)
  -h, --help          show this help

Rotating keys:
  1. RESTHOOKS_SECRET_KEYS="k2:<new>,k1:<old>" on every app and worker
     (put it second everywhere first when processes restart one by one)
  2. resthooks secrets rotate --db postgres://…
  3. drop k1 from RESTHOOKS_SECRET_KEYS

Examples:
  resthooks secrets new-key --id 2026-06
  RESTHOOKS_SECRET_KEYS="k2:…,k1:…" resthooks secrets rotate --db ./.data/hooks.db
`;

function newKey(args: string[]): number {
  const { values } = usageErrors(() => parseArgs({ args, strict: true, options: { id: { type: 'string' } } }));
  const id = values.id ?? `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`;
  if (!/^[A-Za-z0-9_-]{1,12}$/.test(id)) throw new UsageError(`--id must be 1 to 12 letters, digits, "-" or "_", got "${id}".`);
  process.stdout.write(`${id}:${generateSecretKey()}\n`);
  return 0;
}

async function rotate(args: string[]): Promise<number> {
  const { values } = usageErrors(() => parseArgs({ args, strict: true, options: { db: { type: 'string' }, 'batch-size': { type: 'string' } } }));
  const db = values.db ?? process.env.DATABASE_URL;
  if (!db) throw new UsageError('Missing --db <file | postgres://url> (or set DATABASE_URL).');
  const batchSize = values['batch-size'] === undefined ? 500 : integer(values['batch-size'], 'batch-size', 1, 10_000);
  const target = parseDatabaseTarget(db);
  const where = describeTarget(target);
  const { store, close } = await openStore(target, { poolSize: 2 });
  let result: ResealSecretsResult;
  try {
    result = await resealSecrets(store, { batchSize });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw new CliError(`Cannot re-seal the secrets in ${where}: ${describeError(error)}`);
  } finally {
    await close();
  }
  const under = result.keyId === null ? 'stored unencrypted (RESTHOOKS_SECRET_STORAGE=plaintext)' : `sealed under key "${result.keyId}"`;
  process.stdout.write(`${where}: ${result.resealed} of ${result.scanned} subscriptions re-sealed; every secret is now ${under}.\n`);
  return 0;
}

export const secrets: Command = {
  name: 'secrets',
  summary: 'make an encryption key for subscription secrets, or re-encrypt them under the first key',
  help,
  async run([action, ...args]) {
    if (action === 'new-key') return newKey(args);
    if (action === 'rotate') return rotate(args);
    throw new UsageError(action === undefined ? 'Missing the action: new-key or rotate.' : `Unknown action "${action}": expected new-key or rotate.`);
  },
};
