/**
 * The programmatic subscriptions API: validation, owner scoping and secrets. The REST API is a thin
 * layer over this.
 * @module
 */
import type { EventRoutes } from './config/event-routes.js';
import { checkTarget, type Resolver, type TargetPolicy } from './delivery/ssrf.js';
import { generateSecret } from './delivery/signing.js';
import { toMs, type Duration } from './delivery/retry.js';
import { NotFoundError, ValidationError } from './errors.js';
import { newId } from './ids.js';
import { checkStorableText } from './store/storable-text.js';
import type { KyselyStore } from './store/kysely-store.js';
import type { JsonValue, Subscription } from './store/records.js';
import type { SubscriptionTable } from './store/schema.js';
import { normalizeOwner, type OwnerValue } from './triggers/owner.js';

/** `EventName`: the declared event names (from `createHooks()`), so a typo fails to compile. */
export interface NewSubscription<EventName extends string = string> {
  owner: OwnerValue;
  event: EventName;
  target: string;
  /** Default true. */
  active?: boolean;
  metadata?: { [key: string]: JsonValue } | null;
  /**
   * Deliveries per second this subscription receives at most, across every worker; fractions allowed
   * (0.5: one every two seconds). Absent or null: `delivery.maxPerSecondPerSubscription`.
   */
  maxPerSecond?: number | null;
}

/** The fields `update` can change: any of a new subscription's, except its owner. */
export type SubscriptionPatch<EventName extends string = string> = Partial<Omit<NewSubscription<EventName>, 'owner'>>;

/** Limits an operation to one owner's subscriptions: another owner's id behaves as not found. */
export interface OwnerScope {
  owner?: OwnerValue;
}

export interface ListSubscriptionsOptions<EventName extends string = string> extends OwnerScope {
  event?: EventName;
  active?: boolean;
  /** 1–100, default 50. */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  readonly nextCursor: string | null;
}

export interface RotateSecretOptions extends OwnerScope {
  /** How long the previous secret keeps signing alongside the new one. Default 24 h. */
  gracePeriod?: Duration;
}

export const MAX_TARGET_LENGTH = 2048;
/** The owner column's width (characters). */
export const MAX_OWNER_LENGTH = 255;
// A rotation keeps at most this many old secrets signing: each adds a signature to every delivery.
const MAX_PREVIOUS_SECRETS = 3;

export class Subscriptions<EventName extends string = string> {
  readonly #store: KyselyStore;
  readonly #routes: EventRoutes;
  readonly #policy: TargetPolicy;
  readonly #resolver: Resolver | undefined;
  readonly #ready: () => Promise<void>;

  constructor(store: KyselyStore, routes: EventRoutes, policy: TargetPolicy, resolver: Resolver | undefined, ready: () => Promise<void>) {
    this.#store = store;
    this.#routes = routes;
    this.#policy = policy;
    this.#resolver = resolver;
    this.#ready = ready;
  }

  /**
   * Subscribes `target` to `event` for `owner`. Throws `ValidationError` (nothing stored) for an
   * unknown event, a target that is not an absolute http(s) URL, or one on a refused network.
   */
  async create(input: NewSubscription<EventName>): Promise<Subscription> {
    const owner = normalizeOwner(input?.owner);
    if (owner === null) throw new ValidationError('invalid_field', 'A subscription needs an owner (a non-empty string or number).', 'owner');
    checkStorableText(owner, 'owner');
    if (owner.length > MAX_OWNER_LENGTH) throw new ValidationError('invalid_field', `\`owner\` is ${owner.length} characters long; the limit is ${MAX_OWNER_LENGTH}.`, 'owner');
    this.#checkEvent(input.event);
    await this.#checkTarget(input.target);
    if (input.active !== undefined && typeof input.active !== 'boolean') throw new ValidationError('invalid_field', '`active` must be true or false.', 'active');
    await this.#ready();
    const now = Date.now();
    const row: SubscriptionTable = {
      id: newId('sub'),
      owner,
      event: input.event,
      target: input.target,
      active: input.active === false ? 0 : 1,
      secret: generateSecret(),
      previous_secrets: null,
      metadata: metadataText(input.metadata),
      disabled_reason: null,
      failing_since: null,
      max_per_second: maxPerSecondValue(input.maxPerSecond),
      created_at: now,
      updated_at: now,
    };
    return this.#store.insertSubscription(row);
  }

  async get(id: string, scope: OwnerScope = {}): Promise<Subscription | undefined> {
    checkStorableText(id, 'id');
    await this.#ready();
    const subscription = await this.#store.getSubscription(id);
    return subscription && inScope(subscription, scope) ? subscription : undefined;
  }

  /** Newest first. */
  async list(options: ListSubscriptionsOptions<EventName> = {}): Promise<Page<Subscription>> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new ValidationError('invalid_field', '`limit` must be an integer from 1 to 100.', 'limit');
    const owner = options.owner === undefined ? undefined : (normalizeOwner(options.owner) ?? '');
    checkStorableText(owner, 'owner');
    checkStorableText(options.event, 'event');
    checkStorableText(options.cursor, 'cursor');
    await this.#ready();
    const rows = await this.#store.listSubscriptions({
      limit: limit + 1,
      ...(owner !== undefined ? { owner } : {}),
      ...(options.event !== undefined ? { event: options.event } : {}),
      ...(options.active !== undefined ? { active: options.active } : {}),
      ...(options.cursor ? { before: options.cursor } : {}),
    });
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
  }

  async update(id: string, patch: SubscriptionPatch<EventName>, scope: OwnerScope = {}): Promise<Subscription> {
    const current = await this.#require(id, scope);
    const change: Partial<SubscriptionTable> = { updated_at: Date.now() };
    if (patch.event !== undefined) {
      this.#checkEvent(patch.event);
      change.event = patch.event;
    }
    if (patch.target !== undefined) {
      await this.#checkTarget(patch.target);
      change.target = patch.target;
    }
    if (patch.active !== undefined) {
      if (typeof patch.active !== 'boolean') throw new ValidationError('invalid_field', '`active` must be true or false.', 'active');
      change.active = patch.active ? 1 : 0;
      // Re-enabling clears the automatic-disable state.
      if (patch.active) Object.assign(change, { disabled_reason: null, failing_since: null });
    }
    if (patch.metadata !== undefined) change.metadata = metadataText(patch.metadata);
    if (patch.maxPerSecond !== undefined) change.max_per_second = maxPerSecondValue(patch.maxPerSecond);
    return (await this.#store.updateSubscription(current.id, change)) ?? notFound(id);
  }

  /** Deletes it (its undelivered deliveries are cancelled). False when there was none. */
  async delete(id: string, scope: OwnerScope = {}): Promise<boolean> {
    const current = await this.get(id, scope);
    return current ? this.#store.deleteSubscription(current.id, Date.now()) : false;
  }

  /** A new secret; the old one keeps signing alongside it for the grace period. */
  async rotateSecret(id: string, options: RotateSecretOptions = {}): Promise<Subscription> {
    checkStorableText(id, 'id');
    const owner = options.owner === undefined ? undefined : (normalizeOwner(options.owner) ?? '');
    checkStorableText(owner, 'owner');
    await this.#ready();
    const now = Date.now();
    const rotated = await this.#store.rotateSecret(id, {
      next: generateSecret(),
      expiresAt: now + toMs(options.gracePeriod ?? '24h'),
      keep: MAX_PREVIOUS_SECRETS,
      now,
      ...(owner !== undefined ? { owner } : {}),
    });
    return rotated ?? notFound(id);
  }

  async #require(id: string, scope: OwnerScope): Promise<Subscription> {
    return (await this.get(id, scope)) ?? notFound(id);
  }

  #checkEvent(event: unknown): asserts event is string {
    if (typeof event !== 'string' || event === '') throw new ValidationError('invalid_field', '`event` is required: one of the declared event names.', 'event');
    if (!this.#routes.event(event)) throw new ValidationError('unknown_event', `Unexpected event "${event}"`, 'event');
  }

  async #checkTarget(target: unknown): Promise<void> {
    if (typeof target !== 'string' || target === '') throw new ValidationError('invalid_field', '`target` is required: an absolute http(s) URL.', 'target');
    if (target.length > MAX_TARGET_LENGTH) throw new ValidationError('invalid_target', `\`target\` is ${target.length} characters long; the limit is ${MAX_TARGET_LENGTH}.`, 'target');
    // Checked before the URL parser, which would percent-encode these and hide them from the check.
    checkStorableText(target, 'target', 'invalid_target');
    const check = await checkTarget(target, this.#policy, this.#resolver);
    if (!check.ok) throw new ValidationError(check.code, check.reason, 'target');
  }
}

function inScope(subscription: Subscription, scope: OwnerScope): boolean {
  return scope.owner === undefined || subscription.owner === normalizeOwner(scope.owner);
}

function notFound(id: string): never {
  throw new NotFoundError(`No subscription ${id}.`);
}

/** The most `maxPerSecond` may be: beyond it a limit means nothing a receiver could notice. */
export const MAX_PER_SECOND_LIMIT = 1_000_000;

function maxPerSecondValue(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_PER_SECOND_LIMIT) {
    throw new ValidationError('invalid_field', `\`maxPerSecond\` must be a number above 0 and at most ${MAX_PER_SECOND_LIMIT}, or null for the default.`, 'maxPerSecond');
  }
  return value;
}

function metadataText(metadata: unknown): string | null {
  if (metadata === undefined || metadata === null) return null;
  if (typeof metadata !== 'object' || Array.isArray(metadata)) throw new ValidationError('invalid_field', '`metadata` must be a JSON object or null.', 'metadata');
  return JSON.stringify(metadata);
}
