/**
 * Everything `createHooks()` accepts, and the one function that validates it and fills defaults.
 * @module
 */
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { HookInfo, JsonValue, StoredEvent, Subscription } from '../store/records.js';
import type { StoreDialect } from '../store/store-dialect.js';
import type { AttemptOutcomeKind } from '../store/schema.js';
import { resolveRetryPolicy, toMs, type Duration, type ResolvedRetryPolicy, type RetryPolicy } from '../delivery/retry.js';
import type { Resolver } from '../delivery/ssrf.js';
import type { LookupRetryPolicy } from '../delivery/fanout.js';
import type { OwnerResolver } from '../triggers/owner.js';
import type { EventsMap } from './events-map.js';
import type { StandardSchemaV1 } from './standard-schema.js';
import type { QueueFactory } from '../queue/queue.js';
import type { HealthOptions, MetricsOptions } from '../telemetry/observability.js';
import type { TracingOptions } from '../telemetry/tracing.js';
import type { SecretKey } from '../store/secret-box.js';
import type { SecretStorage } from '../store/secret-keys.js';

/**
 * Turns an instance of one model into the `data` of its payload. Runs once per event. `Data` is what the
 * model's events' schemas accept, when they have schemas.
 */
export type Serializer<Data = unknown> = { serialize(instance: object): Data }['serialize'];

export interface FinderContext {
  /** The owner the event is for; `null` when it reaches every owner's subscriptions. */
  readonly owner: string | null;
  readonly allOwners: boolean;
  /** What the default finder would return: active subscriptions to this event for this owner (or all owners). */
  defaultFind(): Promise<Subscription[]>;
}

/**
 * A custom subscription lookup (django-rest-hooks' `HOOK_FINDER`): called with the event name and the stored
 * event (the serialized instance, not the live one), returns the subscriptions to deliver to.
 * @example
 * finder: async (name, event, { defaultFind }) =>
 *   (await defaultFind()).filter((s) => s.metadata?.plan === 'pro')
 */
export type Finder = (eventName: string, event: StoredEvent, context: FinderContext) => Promise<readonly Subscription[]> | readonly Subscription[];

export interface FinderRetryOptions {
  /** Failures of a custom finder before its event is marked undeliverable. Default 8. */
  attempts?: number;
  /** The wait after the first failure; it doubles after each one. Default 5 s. */
  delay?: Duration;
  /** The longest wait between two tries. Default 5 min (30 s at most for the store's own read). */
  maxDelay?: Duration;
}

export interface DelivererContext {
  readonly hook: HookInfo;
  /** The exact JSON text that was signed. */
  readonly body: string;
  /** `content-type` and the Standard Webhooks headers. */
  readonly headers: Readonly<Record<string, string>>;
  readonly deliveryId: string;
  readonly attempt: number;
  /** Aborted at the attempt timeout and on shutdown. */
  readonly signal: AbortSignal;
}

/**
 * Replaces the HTTP POST (django-rest-hooks' `HOOK_DELIVERER`), e.g. to hand deliveries to another system.
 * Resolve with `{ statusCode }` (or nothing, meaning delivered); throw to have the attempt retried.
 */
export type Deliverer = (target: string, payload: JsonValue, context: DelivererContext) => Promise<{ statusCode: number; body?: string } | void>;

/** What `onSent` receives after each attempt (django-rest-hooks' `hook_sent_event`). */
export interface SentInfo {
  readonly hook: HookInfo;
  /** The payload as sent (parsed). */
  readonly payload: JsonValue;
  /** The stored event; `event.data` is the serialized instance. */
  readonly event: StoredEvent;
  readonly deliveryId: string;
  readonly attempt: number;
  readonly outcome: AttemptOutcomeKind;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly durationMs: number;
}

export interface DeliveryOptions {
  /** Attempts in flight at once, over all receivers. Default 64. */
  concurrency?: number;
  /**
   * Keep-alive connections per receiver origin, and so attempts in flight at once to one origin
   * (scheme, host and port): more wait in the queue, leaving the slots to other receivers. Default 16.
   */
  connectionsPerOrigin?: number;
  /** Attempts in flight at once to one subscription. Default: `connectionsPerOrigin`. */
  concurrencyPerSubscription?: number;
  /**
   * The fraction of the slots (`concurrency`) that one owner's attempts may hold, counted among the
   * slots other owners are not using: with the default 0.5, an owner alone holds at most half of them,
   * a second one half of the rest, and so on, so one owner's hanging receivers never hold every slot
   * and another owner's deliveries start at once. 1 lets one owner take every slot. Default 0.5.
   */
  ownerShare?: number;
  /** Per-attempt timeout, from connect to the end of the response. Default 15 s. */
  timeout?: Duration;
  /** Retry schedule and jitter. */
  retry?: Partial<RetryPolicy>;
  /** Retry a response status that is not 2xx, 408, 410, 429 or 5xx? Default: always. */
  retryOn?: (statusCode: number) => boolean;
  /** Lowest delay after a 429 Too Many Requests. Default 60 s. */
  minDelayAfter429?: Duration;
  /** Bytes of each response kept in the delivery log. Default 64 KiB. */
  responseExcerptBytes?: number;
  /** How often the dispatcher looks for work written by other processes or transactions. Default 1 s. */
  pollInterval?: Duration;
  /** Largest serialized payload accepted at the trigger. Default 256 KiB. */
  maxPayloadBytes?: number;
  /**
   * Disable a subscription whose every attempt has failed for this long (the streak resets on any
   * success). Default 5 days; `false` never disables.
   */
  disableAfter?: Duration | false;
  /**
   * At most this many deliveries per second to any one subscription (per process). Deliveries over
   * the rate wait, unattempted. Default: no limit.
   */
  maxPerSecondPerSubscription?: number;
  /**
   * Also send `x-hook-signature`: the hex HMAC-SHA256 of the body keyed with the subscription's
   * secret string, for receivers written against the older REST Hooks convention. Default false.
   */
  legacySignatureHeader?: boolean;
  userAgent?: string;
}

export interface HooksOptions<EventName extends string = string> {
  /** `{ 'book.added': 'Book.created', 'book.changed': 'Book.updated+', 'user.logged_in': null }` */
  events: EventsMap & Record<EventName, EventsMap[string]>;
  /** Where subscriptions, the outbox and the delivery log live: `sqliteStore(db)` or `postgresStore(pool)`. */
  store: StoreDialect;
  /** Create or update the tables on start-up (and before the first trigger). Default true. */
  migrate?: boolean;
  /** Finds an instance's owner. Default `instance.ownerId ?? instance.userId ?? instance.user?.id`. */
  owner?: OwnerResolver;
  /** Per-model data serializers: `{ Book: (book: Book) => ({ id: book.id, title: book.title }) }`. */
  serializers?: Readonly<Record<string, Serializer>>;
  /**
   * A Standard Schema (zod, valibot, arktype, …) per event, for the data of its payload: `raw()`'s payload,
   * or the serializer's output (the instance, without one). It types those payloads, it is validated on
   * every trigger (the schema's output is what is sent), and the event catalog and OpenAPI document publish
   * it as JSON Schema when it can describe itself as one. An invalid payload is not recorded in
   * development (a `failed` result, or `OutboxWriteError` with `tx`, whose error is a `ValidationError` with
   * code `payload_invalid` and the `issues`), and is sent anyway with a warning in production.
   */
  schemas?: { readonly [Name in EventName]?: StandardSchemaV1 };
  /**
   * Development mode: payloads that fail their schema are refused instead of sent with a warning, and
   * with no `secretKeys` subscription secrets are stored unencrypted (with a warning) instead of
   * stopping the start-up. Default: `process.env.NODE_ENV !== 'production'`.
   */
  development?: boolean;
  /**
   * The keys subscription secrets are sealed with at rest (AES-256-GCM): the first seals, every one
   * opens, so a new key goes first and the old ones stay listed until `resthooks secrets rotate` has
   * re-sealed every row. Each key is 32 bytes (base64 or hex). Default: `RESTHOOKS_SECRET_KEYS`
   * (`id:key` pairs, comma-separated).
   * @example secretKeys: [{ id: '2026-06', key: process.env.HOOKS_KEY_2026_06! }]
   */
  secretKeys?: readonly SecretKey[];
  /**
   * `'plaintext'` stores new subscription secrets unencrypted, by choice (keys given still open sealed
   * ones). `'encrypted'` requires keys, in development too. Default (`RESTHOOKS_SECRET_STORAGE`, else
   * unset): encrypted when keys are given; without keys, unencrypted with a warning in development and
   * a `ConfigError` at start-up in production.
   */
  secretStorage?: SecretStorage;
  finder?: Finder;
  /**
   * How a subscription lookup that throws is tried again. The event stays pending meanwhile. After
   * `attempts` failures of a custom `finder` the event is marked undeliverable (logged at error level;
   * `hooks.outbox.retry` fans it out again). A failure of the store's own read is never given up on.
   */
  finderRetry?: FinderRetryOptions;
  deliverer?: Deliverer;
  /** Called after each attempt; errors it throws are logged and ignored. */
  onSent?: (info: SentInfo) => void | Promise<void>;
  /** Called when a subscription is disabled for failing continuously (`delivery.disableAfter`). */
  onSubscriptionDisabled?: (subscription: Subscription, reason: string) => void | Promise<void>;
  delivery?: DeliveryOptions;
  /** Allow targets on loopback and private networks (development, self-hosting). Default false. */
  allowPrivateTargets?: boolean;
  /** Destinations allowed even when private targets are refused: CIDRs, IPs or exact host names. */
  allowList?: readonly string[];
  /**
   * How long finished deliveries (with their attempts) and handled events are kept; older ones are
   * purged hourly while started. Pending work is never purged. Default 30 days; `false` keeps all.
   */
  retention?: Duration | false;
  /** DNS lookup used by the SSRF guard (tests inject a fake one). */
  resolver?: Resolver;
  /**
   * The dispatch engine. Default: attempts run in this process. `bullmqQueue(…)` from
   * `resthooks/bullmq` hands them to worker processes on any number of machines.
   */
  queue?: QueueFactory;
  /**
   * Where resthooks reports what goes wrong: a pino-compatible logger (`logger.warn(obj, msg)`; `console`
   * fits too). Failed attempts are logged at warn; retries exhausted, subscriptions disabled and events
   * that cannot be delivered at error, each with the `Error` itself under `err`. Never logged: secrets,
   * signatures, payloads, and a target's query string and credentials. Default: warnings and errors to
   * stderr. `false` silences it.
   */
  logger?: Logger | false;
  /** `hooks.metrics()`: how long the store's backlog figures are reused, the latency buckets. */
  metrics?: MetricsOptions;
  /** `hooks.health()`: the thresholds of its checks. */
  health?: HealthOptions;
  /**
   * OpenTelemetry spans per trigger, fan-out and attempt, and a `traceparent` header to receivers,
   * e.g. `tracing: { tracer: trace.getTracer('resthooks') }`. Off (and free) without one.
   */
  tracing?: TracingOptions;
}

export interface ResolvedDeliveryOptions {
  readonly concurrency: number;
  readonly connectionsPerOrigin: number;
  readonly concurrencyPerSubscription: number;
  readonly ownerShare: number;
  readonly timeoutMs: number;
  readonly retry: ResolvedRetryPolicy;
  readonly retryOn: (statusCode: number) => boolean;
  readonly minDelayAfter429Ms: number;
  readonly responseExcerptBytes: number;
  readonly pollIntervalMs: number;
  readonly maxPayloadBytes: number;
  readonly disableAfterMs: number | null;
  readonly maxPerSecondPerSubscription: number | null;
  readonly legacySignatureHeader: boolean;
  readonly userAgent: string;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a positive integer, got ${value}.`);
  return value;
}

function positiveRate(value: number | undefined): number | null {
  if (value === undefined) return null;
  if (!(value > 0) || !Number.isFinite(value)) throw new ConfigError(`delivery.maxPerSecondPerSubscription must be a positive number, got ${value}.`);
  return value;
}

function share(value: number | undefined): number {
  if (value === undefined) return 0.5;
  if (!(value > 0 && value <= 1)) throw new ConfigError(`delivery.ownerShare must be a number above 0 and at most 1, got ${value}.`);
  return value;
}

export function resolveDeliveryOptions(options: DeliveryOptions = {}): ResolvedDeliveryOptions {
  const connectionsPerOrigin = positiveInteger('delivery.connectionsPerOrigin', options.connectionsPerOrigin, 16);
  return Object.freeze({
    concurrency: positiveInteger('delivery.concurrency', options.concurrency, 64),
    connectionsPerOrigin,
    concurrencyPerSubscription: positiveInteger('delivery.concurrencyPerSubscription', options.concurrencyPerSubscription, connectionsPerOrigin),
    ownerShare: share(options.ownerShare),
    timeoutMs: toMs(options.timeout ?? '15s'),
    retry: resolveRetryPolicy(options.retry),
    retryOn: options.retryOn ?? (() => true),
    minDelayAfter429Ms: toMs(options.minDelayAfter429 ?? '60s'),
    responseExcerptBytes: positiveInteger('delivery.responseExcerptBytes', options.responseExcerptBytes, 64 * 1024),
    pollIntervalMs: toMs(options.pollInterval ?? '1s'),
    maxPayloadBytes: positiveInteger('delivery.maxPayloadBytes', options.maxPayloadBytes, 256 * 1024),
    disableAfterMs: options.disableAfter === false ? null : toMs(options.disableAfter ?? '5d'),
    maxPerSecondPerSubscription: positiveRate(options.maxPerSecondPerSubscription),
    legacySignatureHeader: options.legacySignatureHeader === true,
    userAgent: options.userAgent ?? 'resthooks',
  });
}

/** `finderRetry` with its defaults: 8 tries over about 10 minutes (5 s, 10 s, … 5 min between them). */
export function resolveFinderRetry(options: FinderRetryOptions = {}): LookupRetryPolicy {
  const delayMs = toMs(options.delay ?? '5s');
  const maxDelayMs = toMs(options.maxDelay ?? '5m');
  // A zero wait would have a lookup that keeps failing (the database's, forever) tried on every pass.
  if (delayMs < 1) throw new ConfigError('finderRetry.delay must be at least 1 ms.');
  if (maxDelayMs < delayMs) throw new ConfigError(`finderRetry.maxDelay (${maxDelayMs} ms) must not be shorter than finderRetry.delay (${delayMs} ms).`);
  return Object.freeze({ attempts: positiveInteger('finderRetry.attempts', options.attempts, 8), delayMs, maxDelayMs });
}

export function checkHooksOptions(options: HooksOptions<string>): void {
  if (options === null || typeof options !== 'object') throw new ConfigError('createHooks() needs an options object: { events, store }.');
  if (!options.store || typeof options.store.executeBatch !== 'function') {
    throw new ConfigError('createHooks() needs `store`, e.g. `store: sqliteStore(new Database("hooks.db"))` or `store: postgresStore(pool)`.');
  }
  for (const [name, value] of Object.entries({ owner: options.owner, finder: options.finder, deliverer: options.deliverer, onSent: options.onSent, onSubscriptionDisabled: options.onSubscriptionDisabled })) {
    if (value !== undefined && typeof value !== 'function') throw new ConfigError(`\`${name}\` must be a function.`);
  }
  for (const [model, serializer] of Object.entries(options.serializers ?? {})) {
    if (typeof serializer !== 'function') throw new ConfigError(`serializers.${model} must be a function (instance) => data.`);
  }
  const events = options.events && typeof options.events === 'object' ? options.events : {};
  for (const [event, schema] of Object.entries(options.schemas ?? {})) {
    if (!Object.hasOwn(events, event)) throw new ConfigError(`schemas.${event}: there is no event "${event}" in the events map.`);
    if (schema !== undefined && typeof (schema as Partial<StandardSchemaV1>)?.['~standard']?.validate !== 'function') {
      throw new ConfigError(`schemas.${event} must be a Standard Schema (a zod, valibot or arktype schema, or anything with "~standard".validate).`);
    }
  }
  if (options.tracing !== undefined && typeof options.tracing?.tracer?.startSpan !== 'function') {
    throw new ConfigError("`tracing.tracer` must be an OpenTelemetry tracer, e.g. `trace.getTracer('resthooks')` from @opentelemetry/api.");
  }
}
