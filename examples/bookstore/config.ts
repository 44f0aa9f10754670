import { parseSchedule, toMs } from 'resthooks';

/** The demo's environment knobs (see the README's "Develop" section), read once. */
export interface BookstoreConfig {
  port: number;
  host: string;
  /** SQLite file, used unless `databaseUrl` is set. */
  db: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  embeddedWorker: boolean;
  allowPrivateTargets: boolean;
  retrySchedule: number[] | undefined;
  timeoutMs: number | undefined;
  /** No RESTHOOKS_SECRET_KEYS: the demo chooses to store subscription secrets unencrypted, and says so. */
  plaintextSecrets: boolean;
  tour: boolean;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): BookstoreConfig {
  return {
    port: Number(env.PORT ?? 3000),
    // Loopback unless told otherwise: in a container, RESTHOOKS_HOST=0.0.0.0 lets the published port reach it.
    host: env.RESTHOOKS_HOST || '127.0.0.1',
    db: env.RESTHOOKS_DB ?? './.data/bookstore.db',
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    embeddedWorker: env.RESTHOOKS_EMBEDDED_WORKER !== '0',
    // The demo's receivers run on loopback, so it allows private targets unless told otherwise.
    allowPrivateTargets: (env.RESTHOOKS_ALLOW_PRIVATE_TARGETS ?? '1') !== '0',
    retrySchedule: env.RESTHOOKS_RETRY_SCHEDULE ? parseSchedule(env.RESTHOOKS_RETRY_SCHEDULE) : undefined,
    timeoutMs: env.RESTHOOKS_TIMEOUT ? toMs(env.RESTHOOKS_TIMEOUT) : undefined,
    plaintextSecrets: !env.RESTHOOKS_SECRET_KEYS && env.RESTHOOKS_SECRET_STORAGE !== 'encrypted',
    tour: !argv.includes('--no-tour'),
  };
}
