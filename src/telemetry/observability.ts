/**
 * `hooks.metrics()` and `hooks.health()`: this process's counters, plus the backlog read from the
 * store (shared by every process on it), read at most once per `metrics.backlogCacheTtl` however
 * often they are scraped.
 * @module
 */
import { errorInfo } from '../logger.js';
import { toMs, type Duration } from '../delivery/retry.js';
import { readBacklog, pingStore, type Backlog } from '../store/backlog.js';
import type { KyselyStore } from '../store/kysely-store.js';
import type { DeliveryMetrics } from './delivery-metrics.js';
import { gaugeText } from './prometheus-text.js';

export interface MetricsOptions {
  /** How long the backlog read from the store is reused by later scrapes and health checks. Default 5 s. */
  backlogCacheTtl?: Duration;
  /** Upper bounds (seconds) of the attempt latency histogram's buckets. Default 5 ms to 30 s. */
  latencyBuckets?: readonly number[];
}

export interface HealthOptions {
  /** The backlog check fails once a due delivery has waited longer than this. Default 5 min. */
  maxDueAge?: Duration;
  /**
   * The dispatcher check fails when its loop has not finished a pass for this long. Default: three
   * times the longest pause between passes (the poll interval, or 10 s after failed passes), so 30 s.
   */
  dispatcherStaleAfter?: Duration;
  /** How long the store may take to answer the health query. Default 2 s. */
  storeTimeout?: Duration;
}

export interface HealthCheck {
  readonly ok: boolean;
  /** What was found, for a person to read. */
  readonly detail: string;
}

/** What `hooks.health()` resolves to. `ok` is true when every check is. */
export interface HealthReport {
  readonly ok: boolean;
  readonly checks: {
    /** The store answers a query within `health.storeTimeout`. */
    readonly store: HealthCheck;
    /** Started, and its loop finished a pass within `health.dispatcherStaleAfter`. */
    readonly dispatcher: DispatcherCheck;
    /** No due delivery has waited longer than `health.maxDueAge` (read from the store). */
    readonly backlog: HealthCheck & { readonly oldestDueAgeMs: number | null };
  };
}

/** Started, and its loop finished a pass within `health.dispatcherStaleAfter`: liveness. */
export type DispatcherCheck = HealthCheck & { readonly started: boolean; readonly lastPassAgeMs: number | null };

/** What the dispatcher tells of its loop. */
export interface DispatcherState {
  readonly running: boolean;
  readonly lastPassAt: number | undefined;
}

export interface ObservabilityDeps {
  readonly store: KyselyStore;
  readonly ready: () => Promise<void>;
  readonly dispatcher: DispatcherState;
  readonly metrics: DeliveryMetrics;
  readonly pollIntervalMs: number;
  readonly metricsOptions: MetricsOptions | undefined;
  readonly healthOptions: HealthOptions | undefined;
}

/** The longest pause between two dispatcher passes after failed ones (dispatcher.ts). */
const DISPATCHER_MAX_PAUSE_MS = 10_000;

export class Observability {
  readonly #deps: ObservabilityDeps;
  readonly #cacheMs: number;
  readonly #maxDueAgeMs: number;
  readonly #staleAfterMs: number;
  readonly #storeTimeoutMs: number;
  #backlog: Backlog | undefined;
  #reading: Promise<Backlog> | undefined;

  constructor(deps: ObservabilityDeps) {
    this.#deps = deps;
    this.#cacheMs = toMs(deps.metricsOptions?.backlogCacheTtl ?? '5s');
    this.#maxDueAgeMs = toMs(deps.healthOptions?.maxDueAge ?? '5m');
    this.#staleAfterMs = toMs(deps.healthOptions?.dispatcherStaleAfter ?? 3 * Math.max(deps.pollIntervalMs, DISPATCHER_MAX_PAUSE_MS));
    this.#storeTimeoutMs = toMs(deps.healthOptions?.storeTimeout ?? '2s');
  }

  /** The backlog, read again only when the last read is older than the cache's life; concurrent callers share one read. */
  backlog(now = Date.now()): Promise<Backlog> {
    if (this.#backlog && now - this.#backlog.readAt < this.#cacheMs) return Promise.resolve(this.#backlog);
    this.#reading ??= this.#timed(
      (async () => {
        await this.#deps.ready();
        return readBacklog(this.#deps.store, Date.now());
      })(),
    )
      .then((backlog) => (this.#backlog = backlog))
      .finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async metrics(): Promise<string> {
    let backlog: Backlog | undefined;
    try {
      backlog = await this.backlog();
    } catch {
      // The store is down: the counters are still worth scraping, and resthooks_store_up says why the gauges are missing.
    }
    const { dispatcher } = this.#deps;
    const lastPassAge = dispatcher.lastPassAt === undefined ? undefined : (Date.now() - dispatcher.lastPassAt) / 1000;
    let text = this.#deps.metrics.render();
    text += gaugeText('resthooks_store_up', 'Whether the last backlog read from the store succeeded (1) or not (0).', [[{}, backlog ? 1 : 0]]);
    text += gaugeText('resthooks_dispatcher_running', 'Whether this process claims and fans out (started and not stopped).', [[{}, dispatcher.running ? 1 : 0]]);
    if (lastPassAge !== undefined) text += gaugeText('resthooks_dispatcher_last_pass_age_seconds', "Seconds since this process's dispatcher loop last finished a pass.", [[{}, lastPassAge]]);
    if (!backlog) return text;
    const s = backlog.subscriptions;
    text += gaugeText('resthooks_deliveries_pending', 'Deliveries waiting for an attempt, due now or scheduled (store-wide).', [[{}, backlog.pending]]);
    text += gaugeText('resthooks_deliveries_due', 'Pending deliveries that are due now (store-wide).', [[{}, backlog.due]]);
    text += gaugeText('resthooks_deliveries_in_flight', 'Deliveries claimed by some process and not yet recorded (store-wide).', [[{}, backlog.inFlight]]);
    text += gaugeText('resthooks_oldest_due_age_seconds', 'How long the longest-waiting due delivery has been due; 0 when none is (store-wide).', [[{}, backlog.oldestDueAgeMs / 1000]]);
    text += gaugeText('resthooks_outbox_pending_events', 'Events in the outbox not yet fanned out (store-wide).', [[{}, backlog.outboxPending]]);
    text += gaugeText('resthooks_outbox_oldest_age_seconds', 'Age of the oldest event not yet fanned out; 0 when there is none (store-wide).', [[{}, backlog.outboxOldestAgeMs / 1000]]);
    text += gaugeText('resthooks_subscriptions', 'Subscriptions by state: active (failing ones included), failing, disabled (by the engine), inactive (by their owner).', [
      [{ state: 'active' }, s.active],
      [{ state: 'failing' }, s.failing],
      [{ state: 'disabled' }, s.disabled],
      [{ state: 'inactive' }, s.inactive],
    ]);
    text += gaugeText('resthooks_backlog_read_age_seconds', 'Age of the backlog figures above (they are cached).', [[{}, (Date.now() - backlog.readAt) / 1000]]);
    return text;
  }

  async health(): Promise<HealthReport> {
    const now = Date.now();
    const [store, backlog] = await Promise.all([this.#checkStore(), this.backlog(now).then((b) => b, (error: unknown) => error as Error)]);
    const dispatcher = this.dispatcherCheck(now);
    const backlogCheck =
      backlog instanceof Error
        ? { ok: false, detail: `backlog unreadable: ${backlog.message}`, oldestDueAgeMs: null }
        : backlog.oldestDueAgeMs > this.#maxDueAgeMs
          ? { ok: false, detail: `a due delivery has waited ${backlog.oldestDueAgeMs} ms (limit ${this.#maxDueAgeMs} ms)`, oldestDueAgeMs: backlog.oldestDueAgeMs }
          : { ok: true, detail: `${backlog.due} due, oldest ${backlog.oldestDueAgeMs} ms`, oldestDueAgeMs: backlog.oldestDueAgeMs };
    return { ok: store.ok && dispatcher.ok && backlogCheck.ok, checks: { store, dispatcher, backlog: backlogCheck } };
  }

  /** The dispatcher check alone: no store read, so a liveness probe never waits on the database. */
  dispatcherCheck(now = Date.now()): DispatcherCheck {
    const { dispatcher: state } = this.#deps;
    const lastPassAgeMs = state.lastPassAt === undefined ? null : Math.max(0, now - state.lastPassAt);
    if (!state.running) return { ok: false, started: false, detail: 'not started', lastPassAgeMs };
    if (lastPassAgeMs === null || lastPassAgeMs > this.#staleAfterMs) {
      return { ok: false, started: true, detail: `no pass finished for ${lastPassAgeMs ?? '?'} ms (limit ${this.#staleAfterMs} ms)`, lastPassAgeMs };
    }
    return { ok: true, started: true, detail: `last pass ${lastPassAgeMs} ms ago`, lastPassAgeMs };
  }

  async #checkStore(): Promise<HealthCheck> {
    const started = Date.now();
    try {
      await this.#timed(pingStore(this.#deps.store));
      return { ok: true, detail: `answered in ${Date.now() - started} ms` };
    } catch (error) {
      return { ok: false, detail: `unreachable: ${errorInfo(error).message}` };
    }
  }

  /** A store read that may hang (a network partition) gives up after `storeTimeout`; the read itself is left to finish. */
  #timed<T>(read: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#storeTimeoutMs} ms`)), this.#storeTimeoutMs);
    });
    return Promise.race([read, timeout]).finally(() => clearTimeout(timer));
  }
}
