/**
 * `createHooks()`: the one place that wires config → triggers → store → delivery.
 * @module
 */
import type { MigrationResultSet } from 'kysely';
import { EventRoutes } from './config/event-routes.js';
import { parseEventsMap, type EventDefinition, type EventsMap } from './config/events-map.js';
import type { ActionOf, EventSchemas, ModelData, ModelOf, PayloadOf, PayloadsOf, RoutedPairs } from './config/event-types.js';
import { checkHooksOptions, resolveDeliveryOptions, resolveFinderRetry, type HooksOptions, type Serializer } from './config/options.js';
import { defaultOwner } from './triggers/owner.js';
import { AttemptRecorder } from './delivery/attempt-recorder.js';
import { AttemptRunner } from './delivery/attempt-runner.js';
import { envelopeBody } from './delivery/envelope.js';
import { CommitWatch } from './delivery/commit-watch.js';
import { Dispatcher } from './delivery/dispatcher.js';
import { inProcessQueue } from './queue/in-process-queue.js';
import { MemorySendGate } from './queue/memory-send-gate.js';
import type { QueueContext } from './queue/queue.js';
import { subscriptionFinder } from './delivery/fanout.js';
import { toMs, type Duration } from './delivery/retry.js';
import { Sender } from './delivery/sender.js';
import { guardedConnector } from './delivery/ssrf.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';
import { newId } from './ids.js';
import { KyselyStore } from './store/kysely-store.js';
import { resolveSecretStorage } from './store/secret-keys.js';
import { loggedError, resolveLogger } from './logger.js';
import { recentEvents } from './store/recent-events.js';
import { getOutboxEvent, listOutbox, OUTBOX_STATUSES, type OutboxEvent, type OutboxStatus } from './store/outbox.js';
import type { OutboxProbe } from './store/outbox-probe.js';
import { checkStorableText } from './store/storable-text.js';
import type { DeliveryWithAttempts, StoredEvent } from './store/records.js';
import { newDeliveryRow } from './store/rows.js';
import { Subscriptions, type OwnerScope } from './subscriptions.js';
import { toJsonText } from './triggers/serialize.js';
import { purgeBefore, RETENTION_INTERVAL_MS, type PurgeResult } from './store/retention.js';
import { normalizeOwner, type OwnerValue } from './triggers/owner.js';
import { Observability, type DispatcherCheck, type HealthReport } from './telemetry/observability.js';
import { Telemetry } from './telemetry/telemetry.js';
import { Triggers, type ActionTriggerOptions, type ModelType, type ModelTriggerOptions, type RawTriggerOptions, type SyncModelTriggerOptions, type TriggerResult } from './triggers/triggers.js';

/** The event sent by `sendTest()`, to one subscription only. Not subscribable. */
export const TEST_EVENT = 'hook.test';

export interface ListDeliveriesOptions {
  /** 1–100, default 50. */
  limit?: number;
  /** A delivery id: return older ones (newest-first paging). */
  cursor?: string;
}

export interface ListOutboxOptions extends OwnerScope {
  /** `undeliverable` (default): events given up on; `pending`: events waiting for fan-out, e.g. for another lookup try. */
  status?: OutboxStatus;
  /** 1–100, default 50. */
  limit?: number;
  /** An event id: return older ones (newest-first paging). */
  cursor?: string;
}

/**
 * The engine `createHooks()` returns. Its type parameters come from the options, so calls are checked:
 * `EventName` is the declared events' names, `Pairs` the `'Model.action'` pairs they route, and `Payloads`
 * the payload type of each event that has a schema. They widen to `string` / `unknown` for a map that is
 * not a literal; `Hooks` alone is that wide type, which every `Hooks<…>` can be passed as.
 */
export interface Hooks<EventName extends string = string, Pairs extends string = `${string}.${string}`, Payloads = {}> {
  /** The declared events, in declaration order. */
  readonly events: readonly EventDefinition[];
  /** django-rest-hooks' `get_event_actions_config()`: `{ Book: { created: ['book.added', false], … } }`. */
  eventActions(): Record<string, Record<string, readonly [string, boolean]>>;

  /**
   * A model instance was created, updated or deleted (or a custom action happened): route it and
   * append one outbox row. Without `tx` it never throws: problems are logged and reported in the result
   * (`failed`, with a coded `ResthooksError`). With `tx` an event that cannot be recorded in that
   * transaction throws `OutboxWriteError`, so the transaction rolls back instead of committing without it.
   * @example await hooks.model('Book', 'created', book)
   */
  model<Model extends ModelOf<Pairs>>(model: Model | ModelType, action: ActionOf<Pairs, Model>, instance: object, options?: ModelTriggerOptions): Promise<TriggerResult>;
  /**
   * `model()` inside a synchronous transaction (better-sqlite3's `db.transaction(fn)`, which cannot
   * await): the outbox row is written through `tx` before this returns, or `OutboxWriteError` is thrown.
   * Needs `hooks.start()` to have resolved; a model with a per-subscription payload (`serializeHook`, a
   * `payloadOverride` function) is refused. The dispatcher looks for the event once the commit is done.
   * @example
   * db.transaction(() => {
   *   const book = db.prepare('insert into books (title, ownerId) values (?, ?) returning *').get('Dune', 'alice');
   *   hooks.modelSync('Book', 'created', book, { tx: (sql, params) => db.prepare(sql).run(...params) });
   * })();
   */
  modelSync<Model extends ModelOf<Pairs>>(model: Model | ModelType, action: ActionOf<Pairs, Model>, instance: object, options: SyncModelTriggerOptions): TriggerResult;
  /**
   * A custom action on an instance (django-rest-hooks' `hook_event`), the model taken from its class.
   * @example await hooks.action(book, 'read')
   */
  action<Model extends ModelOf<Pairs> = ModelOf<Pairs>>(
    instance: object,
    action: ActionOf<Pairs, Model>,
    options?: Omit<ActionTriggerOptions, 'model'> & { model?: Model | ModelType },
  ): Promise<TriggerResult>;
  /**
   * A raw event with an arbitrary payload (django-rest-hooks' `raw_hook_event`). Throws `ValidationError`
   * for an event that is not declared (unless `trust`); anything else as `model()` (a payload over the
   * size limit is a `failed` result, or `OutboxWriteError` with `tx`). With a schema for the event, the
   * payload is typed and validated (see `schemas`).
   * @example await hooks.raw('user.logged_in', { username }, { owner: user.id })
   */
  raw<Name extends EventName>(event: Name, payload: PayloadOf<Payloads, Name>, options?: RawTriggerOptions): Promise<TriggerResult>;
  /** An event that is not declared, sent anyway (`trust: true`). */
  raw(event: string, payload: unknown, options: RawTriggerOptions & { trust: true }): Promise<TriggerResult>;

  readonly subscriptions: Subscriptions<EventName>;
  readonly deliveries: {
    /** A subscription's deliveries, newest first, each with its attempts. */
    list(subscriptionId: string, options?: ListDeliveriesOptions & OwnerScope): Promise<DeliveryWithAttempts[]>;
    get(deliveryId: string): Promise<DeliveryWithAttempts | undefined>;
    /**
     * Attempts a finished delivery again, now (with the same `webhook-id`). With `subscriptionId`,
     * a delivery of another subscription is not found. Throws `ConflictError` (code `conflict`) while
     * the delivery is in flight: its current attempt decides what happens next.
     */
    retry(deliveryId: string, scope?: OwnerScope & { subscriptionId?: string }): Promise<void>;
    /**
     * Re-queues a subscription's failed and cancelled deliveries created since `since` (e.g. after
     * fixing a receiver that was down). Returns how many were re-queued.
     */
    recover(subscriptionId: string, options: { since: Date | number } & OwnerScope): Promise<number>;
  };
  /**
   * Events not fanned out: given up on (`undeliverable`) or waiting (`pending`), with why. With an
   * `owner`, only events addressed to that owner or to every owner are seen.
   */
  readonly outbox: {
    /** Newest first. */
    list(options?: ListOutboxOptions): Promise<OutboxEvent[]>;
    get(eventId: string, scope?: OwnerScope): Promise<OutboxEvent | undefined>;
    /**
     * Fans an event out again, now, with a fresh count of tries: one marked undeliverable because its
     * finder kept failing (fix the finder first), or one pending a later try. Throws `NotFoundError`
     * for an unknown event (or another owner's), and `ConflictError` (`conflict`) for one already
     * fanned out or one with no owner, which can reach no subscription.
     */
    retry(eventId: string, scope?: OwnerScope): Promise<void>;
  };
  /**
   * The latest events of one name that reached `owner` (addressed to them, or to every owner), newest
   * first; `limit` 1–100, default 10. What the REST API shows as samples.
   */
  recentEvents(event: EventName, options: { owner: OwnerValue; limit?: number }): Promise<StoredEvent[]>;
  /** Sends a `hook.test` event to one subscription. */
  sendTest(subscriptionId: string, scope?: OwnerScope): Promise<{ deliveryId: string }>;

  /** Creates the tables if needed, then starts delivering (and resumes what a previous run left). */
  start(): Promise<void>;
  /** Stops delivering: waits for in-flight attempts up to `timeout` (default 10 s), then gives the rest back. */
  stop(options?: { timeout?: Duration }): Promise<void>;
  /** `stop()`, then closes the store's database. */
  close(options?: { timeout?: Duration }): Promise<void>;
  /**
   * Tells the dispatcher that new events were committed, instead of waiting for its poll. A trigger does it
   * by itself, with `tx` too (the dispatcher then looks again for about a second after it); events written
   * by other processes are found by the poll, or by calling this.
   */
  notify(): void;
  /**
   * For ORM adapters: a probe row and its removal, compiled for the store's dialect, to learn whether the
   * app's database is the store's (and so whether outbox rows can be written in the app's transactions).
   */
  outboxProbe(): Promise<OutboxProbe>;
  /**
   * Resolves when the outbox is empty and no delivery is due or in flight in any process sharing the
   * store (retries scheduled for later do not count). After a crash, the dead process's claims count
   * as in flight until their leases lapse.
   */
  idle(options?: { timeout?: Duration }): Promise<void>;
  /**
   * Deletes finished deliveries idle (no attempt, retry or recovery) for longer than `olderThan`, with
   * their attempts, and handled events made before then that no delivery is left of, in batches.
   * Runs hourly by itself while started (see `retention`).
   */
  purge(options: { olderThan: Duration }): Promise<PurgeResult>;
  /** Runs the store's migrations now. */
  migrate(): Promise<MigrationResultSet>;
  /**
   * This process's counters (triggers, attempts, deliveries, latency, batch sizes) and the store's
   * backlog (read at most once per `metrics.backlogCacheTtl`), in the Prometheus text format.
   */
  metrics(): Promise<string>;
  /** Whether the store answers, the dispatcher's loop ticks and no due delivery waits too long. */
  health(): Promise<HealthReport>;
  /** The dispatcher check of `health()` alone, without a store read: what a liveness probe asks (`/healthz`). */
  liveness(): DispatcherCheck;
}

/** The owner an `OwnerScope` limits to, as stored; one that names no one matches no event. */
function scopedOwner(scope: OwnerScope): string | undefined {
  const owner = scope.owner === undefined ? undefined : (normalizeOwner(scope.owner) ?? '');
  checkStorableText(owner, 'owner');
  return owner;
}

/**
 * Declares the events and wires the engine. Validates everything at once: a bad events map throws
 * `ConfigError` here, not at the first save.
 * @example
 * import Database from 'better-sqlite3';
 * import { createHooks, sqliteStore } from 'resthooks';
 *
 * const hooks = createHooks({
 *   events: {
 *     'book.added': 'Book.created',
 *     'book.changed': 'Book.updated+', // every owner's subscribers
 *     'book.read': 'Book.read',        // a custom action
 *     'user.logged_in': null,          // a raw event
 *   },
 *   store: sqliteStore(new Database('hooks.db')),
 * });
 * await hooks.start();
 * await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: 'https://example.com/hooks' });
 * await hooks.model('Book', 'created', { id: 1, title: 'The Two Towers', ownerId: 'alice' });
 */
export function createHooks<const EventName extends string, const Events extends EventsMap = EventsMap, const Schemas extends EventSchemas<EventName> = {}>(
  options: HooksOptions<EventName> & TypedHooksOptions<EventName, Events, Schemas>,
): Hooks<EventName, RoutedPairs<Events>, PayloadsOf<Schemas>> {
  // One implementation, wide; the types only narrow what callers may pass.
  return wireHooks(options) as unknown as Hooks<EventName, RoutedPairs<Events>, PayloadsOf<Schemas>>;
}

/** What `createHooks()` infers its types from: the literal events map, schemas keyed by declared events, serializers typed by them. */
export interface TypedHooksOptions<EventName extends string, Events extends EventsMap, Schemas extends EventSchemas<EventName>> {
  readonly events: Events;
  readonly schemas?: Schemas & { readonly [Unknown in Exclude<keyof Schemas, EventName>]: never };
  readonly serializers?: { readonly [Model in ModelOf<RoutedPairs<Events>>]?: Serializer<ModelData<Events, PayloadsOf<Schemas>, Model>> };
}

function wireHooks(options: HooksOptions): Hooks {
  checkHooksOptions(options);
  const schemas = new Map(Object.entries(options.schemas ?? {}).flatMap(([event, schema]) => (schema ? [[event, schema] as const] : [])));
  const routes = new EventRoutes(parseEventsMap(options.events).map((definition) => {
    const schema = schemas.get(definition.name);
    return schema ? Object.freeze({ ...definition, schema }) : definition;
  }));
  const delivery = resolveDeliveryOptions(options.delivery);
  const logger = resolveLogger(options.logger);
  const secretStorage = resolveSecretStorage(options, process.env, options.development ?? process.env.NODE_ENV !== 'production');
  if (secretStorage.warning) logger.warn({}, secretStorage.warning);
  const store = new KyselyStore(options.store, secretStorage.box);
  const telemetry = new Telemetry({ tracing: options.tracing, latencyBuckets: options.metrics?.latencyBuckets });
  const ready = () => store.ready(options.migrate !== false);
  const findSubscriptions = subscriptionFinder(store, options.finder);
  const policy = { allowPrivateTargets: options.allowPrivateTargets === true, allowList: options.allowList ?? [] };
  const sender = new Sender({
    connectionsPerOrigin: delivery.connectionsPerOrigin,
    excerptBytes: delivery.responseExcerptBytes,
    userAgent: delivery.userAgent,
    connect: guardedConnector(policy, options.resolver, { timeout: delivery.timeoutMs }),
  });
  const recorder = new AttemptRecorder({
    store,
    disableAfterMs: delivery.disableAfterMs,
    onSent: options.onSent,
    onSubscriptionDisabled: options.onSubscriptionDisabled,
    logger,
    onBatchWritten: (size) => telemetry.recordedBatch(size),
  });
  const queueContext: QueueContext = {
    // The signal (aborted at the shutdown deadline) also ends the retries of the attempt's record.
    processor: async (claim, signal, stillMine) => {
      const finished = telemetry.tracesAttempts
        ? await telemetry.attempt(claim, (headers) => runner.run(claim, signal, headers, stillMine))
        : telemetry.attempted(await runner.run(claim, signal, undefined, stillMine));
      await recorder.record(finished, signal);
      return finished.release ? 'given back' : 'recorded';
    },
    loadClaims: (ids) => store.loadClaims(ids),
    inFlightAttempts: (limit, after) => store.inFlightAttempts(limit, after),
    extendLease: (claim, leaseUntil) => store.extendLease(claim, leaseUntil, Date.now()),
    concurrency: delivery.concurrency,
    timeoutMs: delivery.timeoutMs,
    fairness: { perOrigin: delivery.connectionsPerOrigin, perSubscription: delivery.concurrencyPerSubscription, ownerShare: delivery.ownerShare },
    logger,
  };
  const queue = (options.queue ?? inProcessQueue)(queueContext);
  // Built after the queue (its processor runs only once started): a queue whose workers share limits brings its own gate.
  const gate = queue.gate ?? new MemorySendGate(delivery.timeoutMs);
  const runner = new AttemptRunner({ sender, options: delivery, deliverer: options.deliverer, wantsSentInfo: options.onSent !== undefined, logger, gate });
  const dispatcher = new Dispatcher({
    store,
    queue,
    customFind: options.finder ? findSubscriptions : undefined,
    lookupRetry: resolveFinderRetry(options.finderRetry),
    pollIntervalMs: delivery.pollIntervalMs,
    logger,
    observeFanOut: (run) => telemetry.fanOut(run),
    recordsForPass: () => recorder.recordsForPass(),
  });
  const observability = new Observability({
    store,
    ready,
    dispatcher,
    metrics: telemetry.metrics,
    pollIntervalMs: delivery.pollIntervalMs,
    metricsOptions: options.metrics,
    healthOptions: options.health,
  });
  const settled = async () => {
    await queue.settled();
    await recorder.settled();
  };
  const commitWatch = new CommitWatch(() => dispatcher.nudge());
  const triggers = new Triggers({
    routes,
    store,
    ready,
    owner: options.owner ?? defaultOwner,
    serializers: options.serializers ?? {},
    findSubscriptions,
    maxPayloadBytes: delivery.maxPayloadBytes,
    logger,
    appended: () => dispatcher.nudge(),
    appendedInTransaction: () => commitWatch.written(),
    schemas,
    development: options.development ?? process.env.NODE_ENV !== 'production',
  });
  const subscriptions = new Subscriptions(store, routes, policy, options.resolver, ready);

  const retentionMs = options.retention === false ? null : toMs(options.retention ?? '30d');
  let retentionTimer: NodeJS.Timeout | undefined;
  // The hourly purge in flight: `stop()` ends it between two batches and waits, so `close()` never
  // destroys the store under it.
  let backgroundPurge: { readonly stopping: AbortController; readonly done: Promise<unknown> } | undefined;
  const purge = async ({ olderThan }: { olderThan: Duration }, signal?: AbortSignal) => {
    await ready();
    return purgeBefore(store, Date.now() - toMs(olderThan), { signal });
  };
  const purgeInBackground = (olderThan: Duration) => {
    if (backgroundPurge) return;
    const stopping = new AbortController();
    const done = purge({ olderThan }, stopping.signal)
      .catch((error) => logger.error({ err: loggedError(error) }, 'resthooks: retention purge failed'))
      .finally(() => (backgroundPurge = undefined));
    backgroundPurge = { stopping, done };
  };

  const stop = async (stopOptions: { timeout?: Duration } = {}) => {
    clearInterval(retentionTimer);
    retentionTimer = undefined;
    backgroundPurge?.stopping.abort();
    const purgeEnded = backgroundPurge?.done;
    dispatcher.stop();
    commitWatch.stop();
    const timeoutMs = toMs(stopOptions.timeout ?? '10s');
    // A pass in flight hands its claims to the queue before the queue closes, and a purge in flight
    // ends its batch (bounded: a store that does not answer must not hold the shutdown up; its claims
    // then come back when their lease lapses).
    let passWait: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([dispatcher.passEnded(), purgeEnded]), new Promise<void>((resolve) => (passWait = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(passWait);
    await queue.close(timeoutMs);
    await recorder.settled();
    await sender.close();
    await options.store.maintenance?.stop();
  };

  return {
    events: routes.all(),
    eventActions: () => routes.table(),
    model: (model: string | ModelType, action: string, instance: object, triggerOptions?: ModelTriggerOptions) =>
      telemetry.trigger('model', undefined, () => triggers.model(model, action, instance, triggerOptions)),
    modelSync: (model: string | ModelType, action: string, instance: object, triggerOptions: SyncModelTriggerOptions) =>
      telemetry.trigger('model', undefined, () => triggers.modelSync(model, action, instance, triggerOptions)),
    action: (instance: object, action: string, triggerOptions?: ActionTriggerOptions) =>
      telemetry.trigger('action', undefined, () => triggers.action(instance, action, triggerOptions)),
    raw: (event: string, payload: unknown, triggerOptions?: RawTriggerOptions) => telemetry.trigger('raw', event, () => triggers.raw(event, payload, triggerOptions)),
    subscriptions,
    deliveries: {
      async list(subscriptionId, listOptions = {}) {
        checkStorableText(listOptions.cursor, 'cursor');
        const subscription = await subscriptions.get(subscriptionId, listOptions);
        if (!subscription) throw new NotFoundError(`No subscription ${subscriptionId}.`);
        const limit = Math.min(Math.max(listOptions.limit ?? 50, 1), 100);
        return store.listDeliveries(subscription.id, limit, listOptions.cursor);
      },
      async get(deliveryId) {
        checkStorableText(deliveryId, 'deliveryId');
        await ready();
        return store.getDelivery(deliveryId);
      },
      async retry(deliveryId, scope = {}) {
        checkStorableText(deliveryId, 'deliveryId');
        checkStorableText(scope.subscriptionId, 'subscriptionId');
        await ready();
        const subscriptionId = await store.subscriptionOfDelivery(deliveryId);
        const owned = subscriptionId !== undefined && (scope.subscriptionId ?? subscriptionId) === subscriptionId && (await subscriptions.get(subscriptionId, scope));
        if (!owned) throw new NotFoundError(`No delivery ${deliveryId}${scope.subscriptionId ? ` for subscription ${scope.subscriptionId}` : ''}.`);
        const requeued = await store.requeueDelivery(deliveryId, Date.now());
        if (requeued === 'in_flight') {
          throw new ConflictError(`Delivery ${deliveryId} is in flight (an attempt of it is queued or running right now), so it was not queued again; wait for that attempt's outcome in the delivery log, then retry if it failed.`);
        }
        if (requeued === 'missing') throw new NotFoundError(`No delivery ${deliveryId}.`);
        dispatcher.nudge(false);
      },
      async recover(subscriptionId, recoverOptions) {
        const subscription = await subscriptions.get(subscriptionId, recoverOptions);
        if (!subscription) throw new NotFoundError(`No subscription ${subscriptionId}.`);
        const since = recoverOptions.since instanceof Date ? recoverOptions.since.getTime() : recoverOptions.since;
        if (!Number.isFinite(since)) throw new ValidationError('invalid_field', '`since` must be a date or a time in ms.', 'since');
        const count = await store.requeueFinished(subscription.id, since, Date.now());
        dispatcher.nudge(false);
        return count;
      },
    },
    outbox: {
      async list(listOptions = {}) {
        const status = listOptions.status ?? 'undeliverable';
        if (!OUTBOX_STATUSES.includes(status)) throw new ValidationError('invalid_field', '`status` must be "undeliverable" or "pending".', 'status');
        const limit = listOptions.limit ?? 50;
        if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new ValidationError('invalid_field', '`limit` must be an integer from 1 to 100.', 'limit');
        checkStorableText(listOptions.cursor, 'cursor');
        const owner = scopedOwner(listOptions);
        await ready();
        return listOutbox(store, { status, limit, ...(owner !== undefined ? { owner } : {}), ...(listOptions.cursor ? { before: listOptions.cursor } : {}) });
      },
      async get(eventId, scope = {}) {
        checkStorableText(eventId, 'eventId');
        const owner = scopedOwner(scope);
        await ready();
        return getOutboxEvent(store, eventId, owner);
      },
      async retry(eventId, scope = {}) {
        checkStorableText(eventId, 'eventId');
        const owner = scopedOwner(scope);
        await ready();
        const event = await getOutboxEvent(store, eventId, owner);
        if (!event) throw new NotFoundError(`No event ${eventId}.`);
        if (!event.retryable) {
          throw new ConflictError(
            event.status === 'done'
              ? `Event ${eventId} was fanned out already; retry its deliveries instead.`
              : `Event ${eventId} has no owner, so it can reach no subscription; fire it again with an owner (or as an all-owners event).`,
          );
        }
        // Lost only to a concurrent fan-out of the same event, which then did what was asked.
        await store.refanEvent(event.id, Date.now());
        dispatcher.nudge();
      },
    },
    async recentEvents(event, { owner, limit = 10 }) {
      const normalized = normalizeOwner(owner);
      if (normalized === null) return [];
      checkStorableText(event, 'event');
      checkStorableText(normalized, 'owner');
      await ready();
      return recentEvents(store, event, normalized, Math.min(Math.max(Math.trunc(limit) || 1, 1), 100));
    },
    async sendTest(subscriptionId, scope = {}) {
      const subscription = await subscriptions.get(subscriptionId, scope);
      if (!subscription) throw new NotFoundError(`No subscription ${subscriptionId}.`);
      const now = Date.now();
      const eventId = newId('evt');
      const data = toJsonText({ message: 'This is a test delivery from resthooks.', subscriptionId: subscription.id, sentAt: new Date(now) });
      // The envelope names the test event, not the subscription's own event, so receivers can tell it apart.
      const body = envelopeBody({ id: subscription.id, event: TEST_EVENT, target: subscription.target }, data);
      const deliveryRow = newDeliveryRow(eventId, subscription.id, now, body);
      await store.append(
        { id: eventId, name: TEST_EVENT, model: null, action: null, owner: subscription.owner, all_owners: 0, data, body: null, status: 'done', error: null, created_at: now },
        [deliveryRow],
      );
      dispatcher.nudge(false);
      return { deliveryId: deliveryRow.id };
    },
    async start() {
      await ready();
      options.store.maintenance?.start(logger);
      dispatcher.start();
      commitWatch.start();
      if (retentionMs !== null && retentionTimer === undefined) {
        const run = () => purgeInBackground(retentionMs);
        retentionTimer = setInterval(run, RETENTION_INTERVAL_MS).unref();
        void run();
      }
    },
    stop,
    async close(closeOptions) {
      await stop(closeOptions);
      await store.destroy();
    },
    notify: () => dispatcher.nudge(),
    async outboxProbe() {
      await ready();
      const id = newId('evt');
      return { ...store.compileProbe(id, Date.now()), seen: () => store.hasEvent(id) };
    },
    async idle(idleOptions = {}) {
      const deadline = Date.now() + toMs(idleOptions.timeout ?? '30s');
      for (;;) {
        await settled();
        if (await store.isIdle(Date.now())) return;
        if (Date.now() > deadline) throw new Error('hooks.idle(): deliveries still pending at the deadline; is the dispatcher started?');
        dispatcher.nudge();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    purge,
    migrate: () => store.migrate(),
    metrics: () => observability.metrics(),
    health: () => observability.health(),
    liveness: () => observability.dispatcherCheck(),
  };
}
