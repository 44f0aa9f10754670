/**
 * The distributed engine: claimed deliveries become BullMQ jobs in Redis, and `Worker`s in any
 * number of processes attempt them. BullMQ's split, kept: the relay side (`enqueue`) only adds
 * jobs, the worker side only processes them. The store stays the source of truth: a job carries
 * only delivery ids and attempt numbers (several per job, see delivery-jobs.ts), and the worker
 * reloads the claims before sending.
 * @module
 */
import { Queue, type ConnectionOptions, type Job, type RedisClient, type Worker } from 'bullmq';
import { ConfigError } from '../../errors.js';
import { loggedError, silentLogger, type Logger } from '../../logger.js';
import type { ClaimedDelivery } from '../../store/kysely-store.js';
import type { DeliveryQueue, QueueContext, QueueFactory } from '../queue.js';
import type { SendGate } from '../send-gate.js';
import { SLOT_LEASE_MARGIN_MS } from '../send-limits.js';
import { ClaimReader } from './claim-reader.js';
import { DeliveryGuard } from './delivery-guard.js';
import { DeliveryWorker } from './delivery-worker.js';
import { addJobs, attemptsOf, isBatch, type DeliveryAttempt, type DeliveryJobData } from './delivery-jobs.js';
import { RedisSendGate } from './redis-send-gate.js';
import { WorkerSlots, type Go } from './worker-slots.js';

export interface BullmqQueueOptions {
  /**
   * Where Redis is: a `redis://` URL, ioredis options (`{ host, port, password, … }`), or an ioredis
   * instance (shared, never closed by resthooks; a worker needs it with `maxRetriesPerRequest: null`).
   */
  connection: string | ConnectionOptions;
  /** The BullMQ queue name, the same in the app and its workers. Default `resthooks-deliveries`. */
  queueName?: string;
  /** BullMQ's Redis key prefix. Default `bull`. */
  prefix?: string;
  /** Whether this process also attempts deliveries (`false`: it only relays them to Redis). Default `true`. */
  worker?: boolean;
  /**
   * How long a claim relayed to Redis is leased, in ms: long enough to wait in Redis and be attempted.
   * Past it, a relay claims the delivery again (the claimer died before adding its job, or an attempt
   * was made but not recorded). Default: `delivery.timeout` + 5 s + `maxWaiting` × 20 ms, i.e. the
   * attempt, time to record it, and the wait behind a full backlog for a fleet that starts at least
   * 50 deliveries a second (40 s with the defaults).
   */
  leaseMs?: number;
  /**
   * BullMQ's job lock, in ms: a worker renews it every half of this while an attempt runs. A worker
   * that died (kill -9) holds its jobs until the lock expires and the next stalled check hands them to
   * another worker: up to `lockDuration` + `stalledInterval`. Keep it well above event-loop pauses.
   * Default 30 s (BullMQ's).
   */
  lockDuration?: number;
  /** How often, in ms, each worker looks for jobs whose lock expired (see `lockDuration`). Default 30 s (BullMQ's). */
  stalledInterval?: number;
  /**
   * Attempts this process makes at once, whatever jobs they come in (a job carries several deliveries).
   * Default `delivery.concurrency` (64).
   */
  workerConcurrency?: number;
  /**
   * How many deliveries may wait in Redis (in jobs not yet started) before the relay stops claiming more. The rest
   * wait in the store, unleased, so a backlog never outlives its leases. Default 1000.
   */
  maxWaiting?: number;
  /**
   * Whether rate limits, 429/503 pauses and the per-origin and per-subscription caps
   * (`delivery.connectionsPerOrigin`, `delivery.concurrencyPerSubscription`) hold across all workers,
   * kept in Redis (short scripts, batched per event-loop turn). `false`: each worker process applies them alone.
   * Default `true`.
   */
  sharedLimits?: boolean;
  /** Where Redis and job errors go (pino's call shape). Default: silent. */
  logger?: Logger;
}

const DEFAULT_QUEUE_NAME = 'resthooks-deliveries';
const DEFAULT_MAX_WAITING = 1000;
/** Beyond the attempt's timeout, the time its lease leaves to record it. */
const RECORD_MARGIN_MS = 5000;
/** The default lease's allowance per delivery waiting ahead: a fleet that starts at least 50 deliveries a second. */
const WAIT_PER_DELIVERY_MS = 20;
const BACKLOG_REFRESH_MS = 200;
/** How often a relay checks that Redis still holds its jobs (a restart without persistence, a flush, a failover). */
const REDIS_CHECK_MS = 1000;
/** How long a job waits before it tries again the deliveries whose keys another job held (see DeliveryGuard). */
const HELD_ELSEWHERE_RETRY_MS = 1000;
/**
 * Deliveries a worker works on (keys taken, claims read, waiting for a slot or in flight) per slot:
 * enough that its slots never wait for the next job's reads, few enough that what waits does not wait long.
 */
const HELD_PER_SLOT = 2;
/** How often a worker notes that its event loop runs (see `#stallEpoch`). */
const TICK_MS = 250;
/** Deliveries in flight read (and jobs re-added) per page when Redis lost its jobs. */
const RESYNC_PAGE = 500;
// While the store cannot be read, a job waits for it (its lock renewed) rather than failing: these
// waits double from the first to the last.
const STORE_RETRY_FIRST_MS = 100;
const STORE_RETRY_MAX_MS = 5000;
/** BullMQ's default job lock. */
const DEFAULT_LOCK_MS = 30_000;
// After the shutdown deadline aborts the attempts, how long the worker gets to hand its jobs back.
const FORCE_CLOSE_GRACE_MS = 2000;

/**
 * The distributed dispatch engine for `createHooks({ queue })`: deliveries go through BullMQ on
 * Redis, and any number of worker processes, on any number of machines, attempt them. App processes
 * pass `worker: false` (they write the outbox and relay due deliveries to Redis); worker processes
 * (`resthooks worker`, or your own) pass `worker: true`. All of them use the same store.
 * @example
 * import pg from 'pg';
 * import { createHooks, postgresStore } from 'resthooks';
 * import { bullmqQueue } from 'resthooks/bullmq';
 *
 * const hooks = createHooks({
 *   events: { 'book.added': 'Book.created' },
 *   store: postgresStore(new pg.Pool({ connectionString: process.env.DATABASE_URL })),
 *   // In the web app: relay only. In worker processes: leave `worker` on (the default).
 *   queue: bullmqQueue({ connection: process.env.REDIS_URL!, worker: false }),
 * });
 * await hooks.start();
 */
export function bullmqQueue(options: BullmqQueueOptions): QueueFactory {
  const settings = checkOptions(options);
  // Without its own logger, the queue logs where the hooks do.
  return (context) => new BullmqQueue(context, options.logger ? settings : { ...settings, logger: context.logger });
}

type Settings = Required<Omit<BullmqQueueOptions, 'connection' | 'prefix' | 'workerConcurrency' | 'leaseMs' | 'lockDuration' | 'stalledInterval'>> &
  Pick<BullmqQueueOptions, 'prefix' | 'workerConcurrency' | 'leaseMs' | 'lockDuration' | 'stalledInterval'> & { readonly connection: ConnectionOptions };

/** The default lease (see `leaseMs`): an attempt, its record, and the wait behind `maxWaiting` deliveries. */
function defaultLeaseMs(timeoutMs: number, maxWaiting: number): number {
  return timeoutMs + RECORD_MARGIN_MS + maxWaiting * WAIT_PER_DELIVERY_MS;
}

function checkOptions(options: BullmqQueueOptions): Settings {
  if (options === null || typeof options !== 'object' || options.connection === undefined || options.connection === null || options.connection === '') {
    throw new ConfigError('bullmqQueue() needs `connection`: a redis:// URL, ioredis options, or an ioredis instance.');
  }
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < 1) throw new ConfigError(`bullmqQueue(): \`${name}\` must be a positive integer, got ${String(value)}.`);
    return value;
  };
  const queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
  if (typeof queueName !== 'string' || queueName === '' || queueName.includes(':')) {
    throw new ConfigError('bullmqQueue(): `queueName` must be a non-empty string without ":".');
  }
  const worker = options.worker !== false;
  // BullMQ's worker blocks on Redis, and refuses a shared ioredis instance that gives up on a command
  // after N retries; say so here, at start-up, rather than on every dispatcher pass.
  const instanceOptions = (options.connection as { options?: { maxRetriesPerRequest?: unknown } }).options;
  if (worker && typeof options.connection === 'object' && instanceOptions && instanceOptions.maxRetriesPerRequest !== null) {
    throw new ConfigError('bullmqQueue(): a worker needs its ioredis instance made with `maxRetriesPerRequest: null` (`new Redis(url, { maxRetriesPerRequest: null })`), or pass a URL or options instead.');
  }
  return {
    connection: typeof options.connection === 'string' ? { url: options.connection } : options.connection,
    queueName,
    prefix: options.prefix,
    worker,
    leaseMs: options.leaseMs === undefined ? undefined : positive('leaseMs', options.leaseMs, 1),
    lockDuration: options.lockDuration === undefined ? undefined : positive('lockDuration', options.lockDuration, 1),
    stalledInterval: options.stalledInterval === undefined ? undefined : positive('stalledInterval', options.stalledInterval, 1),
    workerConcurrency: options.workerConcurrency === undefined ? undefined : positive('workerConcurrency', options.workerConcurrency, 1),
    maxWaiting: positive('maxWaiting', options.maxWaiting, DEFAULT_MAX_WAITING),
    sharedLimits: options.sharedLimits !== false,
    logger: options.logger ?? silentLogger,
  };
}

/** One open Queue (and Worker): from the first dispatcher pass after `start()` to `close()`. */
interface Opened {
  readonly queue: Queue<DeliveryJobData>;
  readonly worker: Worker<DeliveryJobData> | undefined;
  readonly shutdown: AbortController;
  readonly adding: Set<Promise<unknown>>;
  /** Stops watching the Redis connection (see `#stallEpoch`). */
  unwatch?: () => void;
}

class BullmqQueue implements DeliveryQueue {
  readonly leaseMs: number;
  readonly gate: SendGate | undefined;
  readonly #context: QueueContext;
  readonly #claims: ClaimReader;
  readonly #settings: Settings;
  #opened: Opened | undefined;
  /** The queue `close()` is closing: its attempts still finish through its connection. */
  #closing: Opened | undefined;
  /** Deliveries waiting in Redis (in jobs not yet started), as last counted, plus those added since. */
  #backlog = 0;
  #refreshTimer: NodeJS.Timeout | undefined;
  #active = 0;
  #idle: Array<() => void> = [];
  #listener: () => void = () => {};
  #redisCheck: NodeJS.Timeout | undefined;
  /** The check of Redis running now, if any: `close()` waits for it, as it reads the store the hooks close next. */
  #checking: Promise<void> | undefined;
  /** Set when jobs may be missing from Redis (an add failed, a job failed for good): re-add every claim in flight. */
  #resyncWanted = false;
  /** Set while the store cannot be read by this worker's jobs, so the outage is logged once, not per job. */
  #storeUnreachable = false;
  readonly #guard: DeliveryGuard;
  readonly #sharedGate: RedisSendGate | undefined;
  readonly #keyPrefix: string;
  /** `workerConcurrency`: attempts in flight at once in this worker. */
  readonly #slots: number;
  readonly #attempts: WorkerSlots;
  /** Deliveries in the jobs this worker runs that are not yet done (waiting for a slot, or in flight). */
  #held = 0;
  /** Jobs waiting for room (see `#roomForJob`), first come first served. */
  #waitingJobs: Array<{ readonly size: number; readonly resolve: (admitted: number) => void }> = [];
  readonly #watchedSignals = new WeakSet<AbortSignal>();
  /**
   * Counts the moments after which the keys this worker's jobs hold may be gone or another's: event-loop
   * stalls (SIGSTOP, a suspended VM) long enough that BullMQ may have handed the jobs to another worker,
   * and lost Redis connections (a Redis restarted without persistence forgets every key, and the relays
   * add the jobs of deliveries in flight again). The deliveries of a job taken before one are not
   * attempted any more by that job.
   */
  #stallEpoch = 0;
  #lastTick = performance.now();
  #ticker: NodeJS.Timeout | undefined;

  constructor(context: QueueContext, settings: Settings) {
    this.#context = context;
    this.#claims = new ClaimReader((ids) => context.loadClaims(ids));
    this.#settings = settings;
    this.leaseMs = settings.leaseMs ?? defaultLeaseMs(context.timeoutMs, settings.maxWaiting);
    this.#keyPrefix = `${settings.prefix ?? 'bull'}:${settings.queueName}`;
    this.#slots = settings.workerConcurrency ?? context.concurrency;
    // A key outlives its job only when the job's worker died: long enough to cover a job that holds a
    // delivery up to HELD_PER_SLOT attempts long and then attempts it; a job that held it longer gives it back.
    this.#guard = new DeliveryGuard(() => this.#redisClient(), { keyPrefix: this.#keyPrefix, ttlMs: this.#guardTtlMs() });
    this.#attempts = new WorkerSlots({
      slots: this.#slots,
      fairness: context.fairness,
      processor: context.processor,
      prepare: (claim, signal) => this.#prepare(claim, signal),
      full: () => this.#held >= this.#holdLimit(),
    });
    const fairness = context.fairness;
    this.#sharedGate = settings.sharedLimits
      ? new RedisSendGate(() => this.#redisClient(), {
          keyPrefix: this.#keyPrefix,
          leaseMs: context.timeoutMs + SLOT_LEASE_MARGIN_MS,
          perOrigin: fairness?.perOrigin ?? Number.MAX_SAFE_INTEGER,
          perSubscription: fairness?.perSubscription ?? Number.MAX_SAFE_INTEGER,
        })
      : undefined;
    this.gate = this.#sharedGate;
    if (this.leaseMs < context.timeoutMs + RECORD_MARGIN_MS) {
      settings.logger.warn(
        { leaseMs: this.leaseMs, timeoutMs: context.timeoutMs },
        'resthooks: bullmqQueue `leaseMs` is shorter than an attempt (delivery.timeout + 5 s): waiting jobs will be claimed again and again, and each lease extended when its job starts',
      );
    }
  }

  // Claims are bounded by the backlog in Redis, not by this process's workers: deliveries beyond it
  // stay in the store unleased, so a slow fleet never lets leases lapse on jobs still waiting.
  capacity(): number {
    this.#open();
    return Math.max(0, this.#settings.maxWaiting - this.#backlog);
  }

  async enqueue(deliveries: readonly ClaimedDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const opened = this.#opened;
    if (!opened) {
      // A dispatcher pass that was already running when `close()` began: relay its claims on a
      // one-off connection rather than leave them leased to nobody until the lease lapses.
      const queue = this.#newQueue();
      try {
        await this.#addJobs(queue, deliveries, 0, new DeliveryGuard(() => redisClientOf(queue), { keyPrefix: this.#keyPrefix, ttlMs: this.#guardTtlMs() }));
      } finally {
        await queue.close();
      }
      return;
    }
    const adding = this.#addJobs(opened.queue, deliveries);
    opened.adding.add(adding);
    let waiting: number;
    try {
      waiting = await adding;
    } catch (error) {
      // Some of these jobs may be in Redis, some not: once Redis answers, every claim in flight is re-added.
      this.#resyncWanted = true;
      throw error;
    } finally {
      opened.adding.delete(adding);
    }
    this.#backlog = waiting;
    this.#scheduleRefresh();
  }

  onCapacity(listener: () => void): void {
    this.#listener = listener;
  }

  /** Adds jobs for `attempts` and counts them as waiting (in deliveries, as `maxWaiting` is); resolves with the count. */
  async #addJobs(queue: Queue<DeliveryJobData>, attempts: readonly DeliveryAttempt[], delayMs = 0, guard = this.#guard): Promise<number> {
    await addJobs(queue, attempts, delayMs);
    return guard.added(attempts.length);
  }

  #guardTtlMs(): number {
    return Math.max(this.leaseMs, HELD_PER_SLOT * this.#context.timeoutMs) + this.#context.timeoutMs + RECORD_MARGIN_MS;
  }

  #holdLimit(): number {
    return HELD_PER_SLOT * this.#slots;
  }

  async settled(): Promise<void> {
    if (this.#active > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async close(timeoutMs: number): Promise<void> {
    const opened = this.#opened;
    this.#opened = undefined; // a later `start()` opens afresh
    this.#closing = opened;
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    clearTimeout(this.#redisCheck);
    this.#redisCheck = undefined;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    if (!opened) return;
    opened.unwatch?.();
    await Promise.allSettled([...opened.adding]);
    if (this.#checking) await bounded(this.#checking, FORCE_CLOSE_GRACE_MS);
    try {
      if (opened.worker) await this.#closeWorker(opened, timeoutMs);
      // The attempts did not wait for their finishes to reach Redis: send those still waiting.
      if (this.#sharedGate) await bounded(this.#sharedGate.flush(), FORCE_CLOSE_GRACE_MS);
    } finally {
      if (this.#closing === opened) this.#closing = undefined;
    }
    await this.#closeQueue(opened.queue);
  }

  /** Closes the producer connection; with Redis unreachable BullMQ's close never ends, so it gets a bound. */
  async #closeQueue(queue: Queue<DeliveryJobData>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      queue.close().then(() => true, () => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), FORCE_CLOSE_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!closed) {
      this.#settings.logger.warn({}, 'resthooks: the BullMQ queue did not close in time (is Redis reachable?)');
      void queue.disconnect().catch(() => undefined);
    }
  }

  /** Waits for the worker's jobs up to the deadline, then aborts their attempts (which give their claims back). */
  async #closeWorker({ worker, shutdown }: Opened, timeoutMs: number): Promise<void> {
    const closing = worker!.close().then(
      () => 'closed' as const,
      (error: unknown) => {
        this.#settings.logger.error({ err: loggedError(error) }, 'resthooks: closing the BullMQ worker failed');
        return 'closed' as const;
      },
    );
    const deadline = setTimeout(() => shutdown.abort(new Error('shutdown deadline')), timeoutMs);
    let grace: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'gave up'>((resolve) => {
      grace = setTimeout(() => resolve('gave up'), timeoutMs + FORCE_CLOSE_GRACE_MS);
    });
    try {
      if ((await Promise.race([closing, gaveUp])) === 'gave up') {
        // An attempt that ignores its abort signal, or Redis unreachable: stop waiting, and drop the
        // connections so they do not keep the process alive. A job left active in Redis goes back to
        // another worker by BullMQ's stalled check (at-least-once: it may be sent again).
        this.#settings.logger.warn(
          { active: this.#active },
          this.#active > 0 ? 'resthooks: attempts still running after the shutdown deadline; not waiting for them' : 'resthooks: the BullMQ worker did not close in time (is Redis reachable?)',
        );
        // Not awaited: with Redis unreachable, BullMQ's disconnect waits for a connection too.
        void worker!.disconnect().catch(() => undefined);
      }
    } finally {
      clearTimeout(deadline);
      clearTimeout(grace);
    }
  }

  #newQueue(): Queue<DeliveryJobData> {
    const { connection, queueName, prefix, logger } = this.#settings;
    const queue = new Queue<DeliveryJobData>(queueName, { connection, ...(prefix === undefined ? {} : { prefix }) });
    queue.on('error', (error) => logger.error({ err: loggedError(error) }, 'resthooks: BullMQ queue error'));
    return queue;
  }

  #open(): void {
    if (this.#opened) return;
    const { connection, queueName, prefix, logger, worker: runsWorker } = this.#settings;
    const shutdown = new AbortController();
    const queue = this.#newQueue();
    let worker: Worker<DeliveryJobData> | undefined;
    if (runsWorker) {
      // One parameter: BullMQ then makes no abort controller per job (its signal aborts only on
      // `cancelJob`, never called here). Every job shares the shutdown signal, as the in-process queue's
      // attempts do, so the sender watches it with one listener rather than one per job.
      const processJob = (job: Job<DeliveryJobData>) => this.#process(job, opened);
      try {
        const { lockDuration, stalledInterval } = this.#settings;
        // As many jobs as slots (jobs of one delivery each fill them); a job that finds the worker
        // holding all it may waits for room before it reads anything (see `#roomForJob`).
        worker = new DeliveryWorker<DeliveryJobData>(
          queueName,
          processJob,
          {
            connection,
            ...(prefix === undefined ? {} : { prefix }),
            concurrency: this.#slots,
            ...(lockDuration === undefined ? {} : { lockDuration }),
            ...(stalledInterval === undefined ? {} : { stalledInterval }),
          },
          () => redisClientOf(queue),
        );
      } catch (error) {
        void queue.close();
        throw error;
      }
      worker.on('error', (error) => logger.error({ err: loggedError(error) }, 'resthooks: BullMQ worker error'));
      worker.on('failed', (job, error) => {
        const final = job === undefined || job.attemptsMade >= (job.opts.attempts ?? 1);
        // A job gone for good while its delivery is still in flight: re-add it rather than wait for the lease.
        if (final) this.#resyncWanted = true;
        logger.warn(
          { err: loggedError(error), deliveryIds: job ? attemptsOf(job.data).map((a) => a.id) : undefined },
          final ? 'resthooks: delivery job failed for good; added again if its delivery is still in flight' : 'resthooks: delivery job failed; BullMQ retries it',
        );
      });
    }
    const opened: Opened = { queue, worker, shutdown, adding: new Set() };
    this.#opened = opened;
    if (worker) {
      this.#lastTick = performance.now();
      this.#ticker = setInterval(() => this.#noticeStall(), TICK_MS);
      this.#ticker.unref();
      this.#watchRedis(opened);
    }
    this.#scheduleRefresh();
    this.#scheduleRedisCheck(0);
  }

  /** A lost connection to Redis starts a new epoch: see `#stallEpoch`. */
  #watchRedis(opened: Opened): void {
    const lost = () => this.#stallEpoch++;
    redisClientOf(opened.queue).then(
      (client) => {
        client.on('reconnecting', lost);
        opened.unwatch = () => client.off('reconnecting', lost);
        if (this.#opened !== opened) opened.unwatch();
      },
      () => undefined, // BullMQ reports a connection that never opens through the queue's `error` event
    );
  }

  #scheduleRedisCheck(delayMs: number): void {
    this.#redisCheck = setTimeout(() => {
      const checking = this.#checkRedis().finally(() => {
        if (this.#checking === checking) this.#checking = undefined;
      });
      this.#checking = checking;
    }, delayMs);
    this.#redisCheck.unref();
  }

  /**
   * Notices that Redis lost its jobs (restarted without persistence, flushed, failed over) by a key
   * each relay keeps there, and then re-adds jobs for every delivery in flight in the store. That is
   * safe to repeat: a delivery also in a job still in Redis is attempted by one job at a time (see
   * DeliveryGuard), and a job skips a delivery recorded meanwhile. Without this, those deliveries would wait for
   * their leases.
   */
  async #checkRedis(): Promise<void> {
    const opened = this.#opened;
    if (!opened) return;
    try {
      const client = await redisClientOf(opened.queue);
      const key = `${this.#settings.prefix ?? 'bull'}:${this.#settings.queueName}:resthooks-relay`;
      if ((await client.get(key)) === null) {
        // Also on a first start against an empty Redis: another relay's claims may have lost their jobs.
        await client.set(key, String(Date.now()));
        this.#resyncWanted = true;
      }
      if (this.#resyncWanted && this.#opened === opened) {
        this.#resyncWanted = false;
        try {
          await this.#resync(opened);
        } catch (error) {
          this.#resyncWanted = true;
          throw error;
        }
      }
    } catch (error) {
      // Cut short by close(): there is no "again" to announce.
      if (this.#opened === opened) this.#settings.logger.warn({ err: loggedError(error) }, 'resthooks: could not check the BullMQ jobs in Redis; trying again');
    } finally {
      if (this.#opened === opened) this.#scheduleRedisCheck(REDIS_CHECK_MS);
    }
  }

  async #resync(opened: Opened): Promise<void> {
    let added = 0;
    // Page by page until done, or until close(): the claims of pages left unread then come back when
    // their leases lapse, as those of a relay that died would.
    for (let after: string | undefined; this.#opened === opened; ) {
      const page = await this.#context.inFlightAttempts(RESYNC_PAGE, after);
      if (page.length === 0) break;
      await this.#addJobs(opened.queue, page);
      added += page.length;
      after = page[page.length - 1]!.id;
    }
    if (added > 0) this.#settings.logger.warn({ count: added }, 'resthooks: jobs may have been lost from Redis; the deliveries in flight were added again');
  }

  /**
   * The claim as it may be attempted now, its lease covering the attempt: a delivery that waited (in
   * Redis, or in this worker for a slot) longer than its claim's lease would otherwise let a relay
   * claim it again while it is being attempted. Undefined when another claimer took it meanwhile.
   */
  async #prepare(claim: ClaimedDelivery, signal: AbortSignal): Promise<ClaimedDelivery | undefined> {
    const needed = this.#context.timeoutMs + RECORD_MARGIN_MS;
    if (claim.leaseUntil - Date.now() >= needed) return claim;
    const leaseUntil = Date.now() + needed;
    const extended = await this.#untilStoreAnswers(() => this.#context.extendLease(claim, leaseUntil), signal);
    return extended ? { ...claim, leaseUntil } : undefined;
  }

  /** Runs a store operation, waiting out a store that cannot be reached (a database restart) until `signal` aborts. */
  async #untilStoreAnswers<T>(operation: () => Promise<T>, signal: AbortSignal): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        const result = await operation();
        if (this.#storeUnreachable) {
          this.#storeUnreachable = false;
          this.#settings.logger.warn({}, 'resthooks: the store answers again; jobs resume');
        }
        return result;
      } catch (error) {
        if (signal.aborted) throw error;
        if (!this.#storeUnreachable) {
          this.#storeUnreachable = true;
          this.#settings.logger.error({ err: loggedError(error) }, 'resthooks: cannot read deliveries from the store; jobs wait for it');
        }
        await abortableSleep(Math.min(STORE_RETRY_MAX_MS, STORE_RETRY_FIRST_MS * 2 ** failures), signal);
      }
    }
  }

  /**
   * The open queue's Redis connection (the gate's scripts run on it). While `close()` waits for the
   * attempts, the closing queue's: an attempt cut short by the deadline still frees its slots, and
   * must not open the queue (and a worker) again.
   */
  async #redisClient() {
    const opened = this.#opened ?? this.#closing;
    if (opened) return redisClientOf(opened.queue);
    this.#open();
    return redisClientOf(this.#opened!.queue);
  }

  /**
   * Runs one job: takes its deliveries' keys (DeliveryGuard), reads their claims in one query, attempts
   * them in this worker's slots, and ends when all are done. Deliveries another job holds are tried
   * again in a job of their own a little later: by then that job has attempted them (and this one
   * finds them recorded) or given them back.
   */
  async #process(job: Job<DeliveryJobData>, opened: Opened): Promise<void> {
    const attempts = attemptsOf(job.data);
    // What its keys hold: the job's id and when it was added. A Redis restarted empty numbers its jobs
    // from 1 again, and a job from before the restart must not let go of the keys a new one took.
    const jobId = `${job.id!}@${job.timestamp}`;
    const { signal } = opened.shutdown;
    const epoch = this.#stallEpoch;
    let open = 0;
    const done = (count: number) => {
      open -= count;
      this.#held -= count;
      this.#admitWaitingJobs();
    };
    this.#active++;
    /** Keys this job holds that a later job may need: all but those of deliveries it recorded or gave back. */
    let holding: DeliveryAttempt[] = [];
    try {
      open = await this.#roomForJob(attempts.length, signal);
      // A job larger than this worker may hold keeps what it may and hands the rest to other workers
      // (if it is run again, the deliveries in both jobs are attempted by one of them: the keys).
      const kept = attempts.slice(0, open);
      if (kept.length < attempts.length) await this.#addJobs(opened.queue, attempts.slice(open));
      // A job of this version counts off the waiting deliveries on its first start (its retries and
      // stalled runs were counted off then); a job of an earlier version was never counted in.
      const firstStart = isBatch(job.data) && (job.attemptsStarted ?? 1) <= 1;
      const mine = await this.#guard.take(jobId, kept, firstStart ? attempts.length : 0);
      const takenAt = performance.now();
      const taken = kept.filter((_, i) => mine[i]);
      const recorded = new Set<DeliveryAttempt>();
      holding = taken;
      // Read after the keys are taken: a claim read before would not see a record made meanwhile.
      const read = await this.#untilStoreAnswers(() => this.#claims.readAll(kept.map((a) => a.id)), signal);
      const claims = read.filter((_, i) => mine[i]);
      // Held by another job, and still to do: tried again once that job has had its turn.
      const heldElsewhere = kept.filter((a, i) => !mine[i] && read[i]?.attempt === a.attempt);
      if (heldElsewhere.length > 0) await this.#addJobs(opened.queue, heldElsewhere, HELD_ELSEWHERE_RETRY_MS);
      done(kept.length - taken.length);
      const go = (): Go => {
        this.#noticeStall();
        if (this.#stallEpoch !== epoch) return 'drop';
        return performance.now() - takenAt > this.#guardTtlMs() - this.#context.timeoutMs - RECORD_MARGIN_MS ? 'give back' : 'go';
      };
      const outcomes = await Promise.all(
        taken.map(async (attempt, i) => {
          const claim = claims[i];
          try {
            // No claim: recorded meanwhile (a duplicate job). Another attempt number: that attempt has its own job.
            if (!claim || claim.attempt !== attempt.attempt) return 'skipped';
            const outcome = await this.#attempts.run(claim, signal, go);
            // Claimed again by a relay, it may be in a new job soon: let that job have it.
            if (outcome === 'given back') await this.#release(jobId, [attempt]);
            // Recorded: a job that meets its key reads the claim, finds it moved on, and has nothing to do.
            if (outcome === 'recorded' || outcome === 'given back') recorded.add(attempt);
            return outcome;
          } finally {
            done(1);
          }
        }),
      );
      holding = taken.filter((a) => !recorded.has(a));
      if (outcomes.includes('dropped')) {
        // Its worker stalled long enough for BullMQ to hand the job to another worker, or lost Redis (and
        // perhaps its keys): what it has not attempted is another job's now, or this job's again when BullMQ retries it.
        throw new Error('resthooks: the worker stalled or lost its Redis connection; its job is run again for the deliveries it had not attempted');
      }
    } finally {
      // Skipped, dropped, or cut short by an error: the job's next run, or another job, takes them.
      await this.#release(jobId, holding);
      if (open > 0) done(open);
      this.#active--;
      if (this.#active === 0) {
        for (const resolve of this.#idle.splice(0)) resolve();
        // Retries recorded by these attempts may be due soon: let the dispatcher look.
        this.#listener();
      }
    }
  }

  /** Lets go of a job's keys; one that cannot be let go expires with its time to live. */
  async #release(jobId: string, attempts: readonly DeliveryAttempt[]): Promise<void> {
    try {
      await this.#guard.release(jobId, attempts);
    } catch (error) {
      this.#settings.logger.warn({ err: loggedError(error) }, 'resthooks: could not let go of the keys of a job; they expire on their own');
    }
  }

  /**
   * Waits until this worker holds fewer than HELD_PER_SLOT deliveries per slot, then counts the job's
   * in: how many of its deliveries it may hold (all, unless the job alone is larger than that). A job
   * that waits has taken no key and read nothing: another job may still take its deliveries. Past the
   * shutdown deadline every job goes on (its deliveries are given back at once).
   */
  async #roomForJob(size: number, signal: AbortSignal): Promise<number> {
    if ((this.#held < this.#holdLimit() && this.#waitingJobs.length === 0) || signal.aborted) {
      const admitted = signal.aborted ? size : Math.min(size, this.#holdLimit());
      this.#held += admitted;
      return admitted;
    }
    if (!this.#watchedSignals.has(signal)) {
      this.#watchedSignals.add(signal);
      signal.addEventListener('abort', () => this.#admitWaitingJobs(true), { once: true });
    }
    return new Promise<number>((resolve) => this.#waitingJobs.push({ size, resolve }));
  }

  #admitWaitingJobs(all = false): void {
    while (this.#waitingJobs.length > 0 && (all || this.#held < this.#holdLimit())) {
      const job = this.#waitingJobs.shift()!;
      const admitted = all ? job.size : Math.min(job.size, this.#holdLimit());
      this.#held += admitted;
      job.resolve(admitted);
    }
  }

  /**
   * A gap between two ticks longer than half BullMQ's lock: the lock may have lapsed meanwhile and the
   * job gone to another worker, so what the jobs taken before it have not started is left alone.
   */
  #noticeStall(): void {
    const now = performance.now();
    if (now - this.#lastTick > (this.#settings.lockDuration ?? DEFAULT_LOCK_MS) / 2) this.#stallEpoch++;
    this.#lastTick = now;
  }

  #scheduleRefresh(): void {
    if (this.#refreshTimer || !this.#opened) return;
    this.#refreshTimer = setTimeout(() => void this.#refresh(), BACKLOG_REFRESH_MS);
    this.#refreshTimer.unref();
  }

  /** Counts the deliveries still waiting in Redis (all relays' jobs, all workers'); frees capacity as they start. */
  async #refresh(): Promise<void> {
    this.#refreshTimer = undefined;
    const opened = this.#opened;
    try {
      if (!opened) return;
      const waiting = await this.#guard.waiting();
      if (this.#opened !== opened) return;
      const before = this.#backlog;
      this.#backlog = waiting;
      if (this.#backlog < before) this.#listener();
    } catch (error) {
      this.#settings.logger.warn({ err: loggedError(error) }, 'resthooks: could not count the BullMQ backlog');
    } finally {
      if (this.#opened === opened && this.#backlog > 0) this.#scheduleRefresh();
    }
  }
}

/** Waits for `work`, but no longer than `ms` (a Redis or store that does not answer). */
async function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Waits `ms`, or less if `signal` aborts first. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A queue's Redis connection: `queue.backend.client` from BullMQ 6, `queue.client` on BullMQ 5 (the
 * peer range takes both).
 */
function redisClientOf(queue: Queue<DeliveryJobData>): Promise<RedisClient> {
  const { backend, client } = queue as unknown as { backend?: { client: Promise<RedisClient> }; client?: Promise<RedisClient> };
  const found = backend?.client ?? client;
  if (!found) throw new Error('resthooks: this BullMQ version gives no access to its Redis connection (queue.backend.client or queue.client)');
  return found;
}
