/**
 * `resthooks worker`: a standalone delivery worker for the distributed engine. It takes delivery
 * jobs from Redis (BullMQ), sends them and records every attempt in the app's store. Run as many
 * as needed, on any machines. bullmq and the database driver are optional peers, imported here only.
 * @module
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, createHooks, healthEndpoints, toMs, type HooksOptions, type Logger, type StoreDialect } from '../index.js';
import type { BullmqQueueOptions } from '../queue/bullmq/index.js';
import { startHealthServer } from './health-server.js';
import { CliError, integer, UsageError, usageErrors, type Command } from './command.js';
import { describeError, describeTarget, importDriver, openStore, parseDatabaseTarget, redact, type DatabaseTarget } from './migrate.js';

const help = `Usage: resthooks worker [options]

A standalone delivery worker: takes delivery jobs from Redis (BullMQ), sends them
signed, and records every attempt in the app's database. Run as many as you need,
on any machines, beside app processes that use bullmqQueue({ worker: false }).
It also relays due deliveries to Redis, as every started process does.
Needs bullmq and ioredis, and the database's driver (better-sqlite3 or pg).

Options:
  --db <target>              a SQLite file or a postgres:// URL
                             (default: $RESTHOOKS_DB, then $DATABASE_URL)
  --redis <url>              a redis:// or rediss:// URL (default: $REDIS_URL)
  --queue <name>             the BullMQ queue name (default resthooks-deliveries)
  --concurrency <n>          attempts in flight at once (default 64)
  --config <file>            a module whose default export is the app's createHooks
                             options (events, delivery, finder, deliverer, onSent, …)
                             and, under \`bullmq\`, bullmqQueue options (leaseMs, …);
                             its store and queue are ignored
  --lease <time>             how long a claim is leased before a relay takes it again
                             (default: delivery timeout + 5s + 20ms per delivery of maxWaiting,
                             40s with the defaults)
  --lock-duration <time>     BullMQ's job lock; a killed worker's jobs go to another
                             worker within lock duration + stalled interval (default 30s)
  --stalled-interval <time>  how often each worker looks for such jobs (default 30s)
  --allow-private-targets    deliver to loopback and private addresses (development)
  --shutdown-timeout <time>  on SIGTERM/SIGINT, how long attempts in flight may finish
                             (default 10s)
  --port <n>                 serve /healthz, /readyz and /metrics over HTTP on this port
                             (0: any free port, printed at start-up)
  --host <address>           the address that server listens on (default 127.0.0.1;
                             0.0.0.0 in a container, for the orchestrator and Prometheus)
  -h, --help                 show this help

Examples:
  REDIS_URL=redis://127.0.0.1:6379 resthooks worker --db postgres://app@db/app
  resthooks worker --config ./dist/hooks.config.js --concurrency 128
  resthooks worker --lock-duration 10s --stalled-interval 5s
  resthooks worker --port 9464 --host 0.0.0.0
`;

export interface WorkerOptions {
  readonly db: DatabaseTarget;
  readonly redis: string;
  readonly queueName: string | undefined;
  readonly concurrency: number | undefined;
  readonly config: string | undefined;
  readonly allowPrivateTargets: boolean;
  readonly shutdownTimeoutMs: number;
  /** `--lease`, `--lock-duration`, `--stalled-interval` in ms; undefined when not given. */
  readonly leaseMs: number | undefined;
  readonly lockDurationMs: number | undefined;
  readonly stalledIntervalMs: number | undefined;
  /** `--port` and `--host` of the health and metrics server; no server without a port. */
  readonly port: number | undefined;
  readonly host: string;
}

/** `--name <duration>` in ms (at least 1), else a `UsageError` naming the option. */
function duration(value: string, name: string): number {
  let ms: number;
  try {
    ms = toMs(value);
  } catch {
    throw new UsageError(`--${name} must be a duration such as 10s or 500ms, got "${value}".`);
  }
  if (!Number.isSafeInteger(ms) || ms < 1) throw new UsageError(`--${name} must be at least 1ms, got "${value}".`);
  return ms;
}

/** The command line and environment → options, validated. Pure; throws `UsageError`. */
export function parseWorkerOptions(args: string[], env: NodeJS.ProcessEnv): WorkerOptions {
  const { values } = usageErrors(() =>
    parseArgs({
      args,
      strict: true,
      options: {
        db: { type: 'string' },
        redis: { type: 'string' },
        queue: { type: 'string' },
        concurrency: { type: 'string' },
        config: { type: 'string' },
        'allow-private-targets': { type: 'boolean', default: false },
        'shutdown-timeout': { type: 'string', default: '10s' },
        lease: { type: 'string' },
        'lock-duration': { type: 'string' },
        'stalled-interval': { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
      },
    }),
  );
  const db = values.db ?? env.RESTHOOKS_DB ?? env.DATABASE_URL;
  if (!db) throw new UsageError('Missing --db <file | postgres://url> (or set RESTHOOKS_DB or DATABASE_URL).');
  const redis = values.redis ?? env.REDIS_URL;
  if (!redis) throw new UsageError('Missing --redis <redis://url> (or set REDIS_URL).');
  if (!/^rediss?:\/\//i.test(redis)) throw new UsageError(`--redis must be a redis:// or rediss:// URL, got "${redact(redis)}".`);
  if (values.queue !== undefined && (values.queue === '' || values.queue.includes(':'))) throw new UsageError('--queue must be a non-empty name without ":".');
  const concurrency = values.concurrency === undefined ? undefined : integer(values.concurrency, 'concurrency', 1, 10_000);
  let shutdownTimeoutMs: number;
  try {
    shutdownTimeoutMs = toMs(values['shutdown-timeout']);
  } catch {
    throw new UsageError(`--shutdown-timeout must be a duration such as 10s or 500ms, got "${values['shutdown-timeout']}".`);
  }
  return {
    db: parseDatabaseTarget(db),
    redis,
    queueName: values.queue,
    concurrency,
    config: values.config,
    allowPrivateTargets: values['allow-private-targets'],
    shutdownTimeoutMs,
    leaseMs: values.lease === undefined ? undefined : duration(values.lease, 'lease'),
    lockDurationMs: values['lock-duration'] === undefined ? undefined : duration(values['lock-duration'], 'lock-duration'),
    stalledIntervalMs: values['stalled-interval'] === undefined ? undefined : duration(values['stalled-interval'], 'stalled-interval'),
    port: values.port === undefined ? undefined : integer(values.port, 'port', 0, 65_535),
    host: values.host,
  };
}

/** The `bullmqQueue` options a `--config` module may set; the worker supplies the connection, the role and the logger. */
export type WorkerQueueOptions = Omit<BullmqQueueOptions, 'connection' | 'worker' | 'logger'>;

/** The `--config` module's default export: `createHooks` options (store and queue ignored), plus `bullmq`. */
export type WorkerConfig = Omit<HooksOptions<string>, 'store' | 'queue'> & { readonly bullmq?: WorkerQueueOptions };

/** The queue options: the command line first, then the config module's `bullmq`, then bullmqQueue's defaults. */
export function workerQueueOptions(options: WorkerOptions, config: WorkerQueueOptions = {}): WorkerQueueOptions {
  const given = <T>(value: T | undefined) => value !== undefined;
  return {
    ...config,
    ...(given(options.queueName) ? { queueName: options.queueName } : {}),
    ...(given(options.concurrency) ? { workerConcurrency: options.concurrency } : {}),
    ...(given(options.leaseMs) ? { leaseMs: options.leaseMs } : {}),
    ...(given(options.lockDurationMs) ? { lockDuration: options.lockDurationMs } : {}),
    ...(given(options.stalledIntervalMs) ? { stalledInterval: options.stalledIntervalMs } : {}),
  };
}

/** The `--config` module's default export: the options object, or a function that returns it. */
async function loadConfig(file: string): Promise<WorkerConfig> {
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown };
  } catch (error) {
    throw new CliError(`Cannot load --config ${file}: ${describeError(error)}`);
  }
  const value = typeof loaded.default === 'function' ? await (loaded.default as () => unknown)() : loaded.default;
  if (value === null || typeof value !== 'object') {
    throw new CliError(`--config ${file} must default-export the createHooks options (an object, or a function returning one).`);
  }
  const { bullmq } = value as { bullmq?: unknown };
  if (bullmq !== undefined && (bullmq === null || typeof bullmq !== 'object')) {
    throw new CliError(`--config ${file}: \`bullmq\` must be an object of bullmqQueue options (leaseMs, lockDuration, …).`);
  }
  return value as WorkerConfig;
}

/** Warnings and errors to stderr, one line each (an error with its stack); the rest is quiet. */
function stderrLogger(): Logger {
  const line = (level: string) => (obj: object, msg?: string) => void process.stderr.write(`${level} ${msg ?? ''} ${JSON.stringify(obj, withErrors)}\n`);
  return { debug() {}, info() {}, warn: line('warn'), error: line('error') };
}

// JSON.stringify writes an Error as {}: keep what locates the fault.
function withErrors(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const code = (value as { code?: unknown }).code;
  return { name: value.name, message: value.message, ...(code !== undefined ? { code } : {}), stack: value.stack, ...(value.cause !== undefined ? { cause: value.cause } : {}) };
}

export const worker: Command = {
  name: 'worker',
  summary: 'a standalone delivery worker for the BullMQ engine (Redis)',
  help,
  async run(args) {
    const options = parseWorkerOptions(args, process.env);
    const stopped = new Promise<NodeJS.Signals>((done) => {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
    const { bullmqQueue } = await importDriver('bullmq', () => import('../queue/bullmq/index.js'), 'resthooks worker');
    const { bullmq: queueConfig, ...app }: WorkerConfig = options.config ? await loadConfig(options.config) : { events: {} };
    const queueOptions = workerQueueOptions(options, queueConfig);
    const logger: Logger = app.logger === false ? { debug() {}, info() {}, warn() {}, error() {} } : (app.logger ?? stderrLogger());
    const where = describeTarget(options.db);
    let store: StoreDialect;
    let closeStore: () => Promise<void>;
    try {
      // hooks.close() ends the connections, through the store.
      ({ store, close: closeStore } = await openStore(options.db));
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`Cannot open ${where}: ${describeError(error)}`);
    }
    let hooks: ReturnType<typeof createHooks>;
    try {
      hooks = createHooks({
        ...app,
        events: app.events ?? {},
        logger,
        allowPrivateTargets: options.allowPrivateTargets || app.allowPrivateTargets === true,
        store,
        queue: bullmqQueue({ ...queueOptions, connection: options.redis, worker: true, logger }),
      });
    } catch (error) {
      // A bad option, or no key for the subscription secrets in production: one line that says what to set.
      await closeStore().catch(() => undefined);
      if (error instanceof ConfigError) throw new CliError(error.message);
      throw error;
    }
    try {
      await hooks.start();
    } catch (error) {
      await hooks.close({ timeout: 0 }).catch(() => undefined);
      throw new CliError(`Cannot start on ${where}: ${describeError(error)}`);
    }
    let healthServer: Awaited<ReturnType<typeof startHealthServer>> | undefined;
    if (options.port !== undefined) {
      try {
        healthServer = await startHealthServer(healthEndpoints(hooks), options.port, options.host);
      } catch (error) {
        await hooks.close({ timeout: 0 }).catch(() => undefined);
        throw new CliError(`Cannot serve health and metrics on ${options.host}:${options.port}: ${describeError(error)}`);
      }
    }
    process.stdout.write(
      `resthooks worker  Delivering jobs from ${redact(options.redis)} (queue ${queueOptions.queueName ?? 'resthooks-deliveries'}), recording in ${where}.\n` +
        `${options.allowPrivateTargets ? 'Private and loopback targets allowed. ' : ''}Ctrl-C or SIGTERM to stop.\n` +
        (healthServer ? `Health and metrics: ${healthServer.url}/healthz, /readyz, /metrics\n` : ''),
    );
    const signal = await stopped;
    // A second Ctrl-C while draining exits at once; the leases bring back what was cut short.
    process.once('SIGINT', () => process.exit(130));
    process.stdout.write(`Stopping (${signal}): attempts in flight get up to ${options.shutdownTimeoutMs} ms.\n`);
    await hooks.close({ timeout: options.shutdownTimeoutMs });
    await healthServer?.close();
    process.stdout.write('Stopped.\n');
    // With Redis unreachable, BullMQ's reconnecting clients outlive close(): do not hang on them.
    setTimeout(() => process.exit(0), 1000).unref();
    return 0;
  },
};
