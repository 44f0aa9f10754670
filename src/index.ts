/**
 * resthooks: REST Hooks for TypeScript. Declare events, let your users subscribe URLs to them, and
 * every create/update/delete or custom event is delivered to them, durably, signed and safely.
 * @module
 */
export { createHooks, TEST_EVENT, type Hooks, type TypedHooksOptions, type ListDeliveriesOptions, type ListOutboxOptions } from './hooks.js';
export type { EventsMap, EventTarget, EventDefinition } from './config/events-map.js';
export type { RoutedPairs, ModelOf, ActionOf, EventSchemas, PayloadsOf, PayloadOf, ModelData } from './config/event-types.js';
export type { StandardSchemaV1, StandardSchemaIssue, StandardSchemaResult, SchemaInput, SchemaOutput } from './config/standard-schema.js';
export type {
  HooksOptions,
  DeliveryOptions,
  Serializer,
  Finder,
  FinderContext,
  FinderRetryOptions,
  Deliverer,
  DelivererContext,
  SentInfo,
} from './config/options.js';
export type { ModelRef, ModelType, TriggerResult, PayloadOverride, ModelTriggerOptions, SyncModelTriggerOptions, SyncHostExecutor, ActionTriggerOptions, RawTriggerOptions } from './triggers/triggers.js';
export { resthooksModel } from './triggers/model-name.js';
export { unstorableTextProblem } from './store/storable-text.js';
export { defaultOwner, type OwnerResolver, type OwnerValue } from './triggers/owner.js';
export type { NewSubscription, SubscriptionPatch, OwnerScope, ListSubscriptionsOptions, Page, RotateSecretOptions, Subscriptions } from './subscriptions.js';
export type { Subscription, HookInfo, StoredEvent, Delivery, DeliveryWithAttempts, Attempt, JsonValue } from './store/records.js';
export type { DeliveryStatus, AttemptOutcomeKind } from './store/schema.js';
export type { HostExecutor, CompiledStatement } from './store/host-executor.js';
export type { OutboxProbe } from './store/outbox-probe.js';
export type { PurgeResult } from './store/retention.js';
export type { OutboxEvent, OutboxStatus } from './store/outbox.js';
export { GiveBack, type DeliveryQueue, type DeliveryProcessor, type ProcessedClaim, type FairnessLimits, type QueueContext, type QueueFactory } from './queue/queue.js';
export type { ClaimedDelivery } from './store/kysely-store.js';
export type { StoreDialect, StoreCapabilities } from './store/store-dialect.js';
export { sqliteStoreDialect as sqliteStore, type SqliteDatabase, type SqliteStoreDialectOptions } from './store/sqlite/sqlite-store-dialect.js';
export { sqliteTx, type SqlitePreparer } from './store/sqlite/sqlite-tx.js';
export { postgresStoreDialect as postgresStore, type PgPool, type PostgresStoreDialectOptions } from './store/postgres/postgres-store-dialect.js';
export type { Logger } from './logger.js';
export type { DispatcherCheck, HealthCheck, HealthOptions, HealthReport, MetricsOptions } from './telemetry/observability.js';
export { healthEndpoints, type ObservedHooks } from './telemetry/health-endpoints.js';
export type { Tracer, TracingOptions, TraceSpan, TraceSpanContext, TraceSpanOptions, TraceAttributes, TraceAttributeValue } from './telemetry/tracing.js';
export { DEFAULT_SCHEDULE, parseSchedule, toMs, type Duration, type RetryPolicy } from './delivery/retry.js';
export { generateSecret, sign, signatureHeaders } from './delivery/signing.js';
export { generateSecretKey, type SecretKey } from './store/secret-box.js';
export type { SecretStorage } from './store/secret-keys.js';
export { resealSecrets, type ResealSecretsOptions, type ResealSecretsResult } from './store/secret-reseal.js';
export { checkTarget, refusedRange, type TargetPolicy, type Resolver } from './delivery/ssrf.js';
export { ResthooksError, ConfigError, ValidationError, NotFoundError, ConflictError, MigrationRequiredError, OutboxWriteError, DeliveryAttemptError, type ResthooksErrorCode } from './errors.js';

import type { StoreDialect } from './store/store-dialect.js';
import { KyselyStore } from './store/kysely-store.js';
import type { MigrationResultSet } from 'kysely';

/** Creates or updates the resthooks tables (what `hooks.start()` does when `migrate` is on). */
export function migrate(store: StoreDialect): Promise<MigrationResultSet> {
  return new KyselyStore(store).migrate();
}
