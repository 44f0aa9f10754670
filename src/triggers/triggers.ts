/**
 * The write path: `model()`, `action()` and `raw()` route an event, serialize its data once and
 * append one outbox row. The cost does not grow with the number of subscribers, and a model
 * trigger never throws into the caller's write.
 * @module
 */
import type { EventDefinition } from '../config/events-map.js';
import type { EventRoutes } from '../config/event-routes.js';
import type { Serializer } from '../config/options.js';
import { ValidationError } from '../errors.js';
import { newId } from '../ids.js';
import { errorInfo, type Logger } from '../logger.js';
import type { KyselyStore } from '../store/kysely-store.js';
import { runOnHost, type HostExecutor } from '../store/host-executor.js';
import type { HookInfo, JsonValue, Subscription } from '../store/records.js';
import type { DeliveryTable, EventTable } from '../store/schema.js';
import { newDeliveryRow } from '../store/rows.js';
import { normalizeOwner, type OwnerResolver, type OwnerValue } from './owner.js';
import { toJsonText } from './serialize.js';

/** A model: its name, or anything with a `name` (a class, an entity schema). */
export type ModelRef = string | { readonly name: string };

/** What a trigger did. Model triggers report problems here instead of throwing. */
export type TriggerResult =
  /** Appended to the outbox; deliveries follow asynchronously. */
  | { readonly status: 'queued'; readonly eventId: string }
  /** No event is mapped to this (model, action): nothing was written. */
  | { readonly status: 'ignored' }
  /** Recorded, but it can reach no subscription (e.g. no owner for a non-`+` event). */
  | { readonly status: 'undeliverable'; readonly eventId: string; readonly reason: string }
  /** Not recorded: a raw event whose instance is of another model than the event's mapping. */
  | { readonly status: 'dropped'; readonly reason: string }
  /** Not recorded because of an error (serialization, payload size, store); it was logged. */
  | { readonly status: 'failed'; readonly error: Error };

/** The seed's `payload_override`: a whole payload for every subscription, or one per subscription. */
export type PayloadOverride = JsonValue | { make(hook: HookInfo, instance: object | undefined): unknown }['make'];

export interface ModelTriggerOptions {
  /** Write the outbox row in the caller's transaction (rolled back → never delivered). */
  tx?: HostExecutor;
  /** Deliver to this owner's subscriptions instead of the instance's owner; `false`: every owner's. */
  owner?: OwnerValue | false;
  payloadOverride?: PayloadOverride;
  /**
   * Extra members of the envelope, beside `hook` and `data` (an ORM adapter's `{ changes: ['title'] }`).
   * Ignored when a `payloadOverride` or `serializeHook` makes the whole payload.
   */
  extra?: Readonly<Record<string, JsonValue>>;
}

export interface ActionTriggerOptions extends ModelTriggerOptions {
  /** The model name when it cannot be taken from the instance (plain objects). */
  model?: ModelRef;
}

export interface RawTriggerOptions {
  tx?: HostExecutor;
  /** Whose subscriptions receive it; `false` for every owner's. Without it the event has no owner. */
  owner?: OwnerValue | false;
  /** Accept an event name that is not in the events map, and skip the model check. */
  trust?: boolean;
  /** The instance the event is about: if the event maps to a model, it must be an instance of it. */
  instance?: object;
  /** Send the payload as the whole body instead of inside `{ hook, data }` (the seed's `send_hook_meta=False`). */
  envelope?: boolean;
}

/** Finds the subscriptions for an event: the default lookup or the user's finder. */
export type FindSubscriptions = (event: EventTable) => Promise<readonly Subscription[]>;

export interface TriggerDeps {
  readonly routes: EventRoutes;
  readonly store: KyselyStore;
  readonly ready: () => Promise<void>;
  readonly owner: OwnerResolver;
  readonly serializers: Readonly<Record<string, Serializer>>;
  readonly findSubscriptions: FindSubscriptions;
  readonly maxPayloadBytes: number;
  readonly logger: Logger;
  /** Called after an append outside a host transaction, so delivery starts without waiting for a poll. */
  readonly appended: () => void;
}

const IGNORED: TriggerResult = Object.freeze({ status: 'ignored' });

export function modelName(model: ModelRef): string {
  return typeof model === 'string' ? model : model.name;
}

interface Serialized {
  readonly data: string;
  readonly body: string | null;
  /** Set when the payload depends on the subscription: fan-out happens at trigger time. */
  readonly perHook?: (hook: HookInfo) => string;
}

export class Triggers {
  readonly #deps: TriggerDeps;
  // store.ready() is memoized, but awaiting even a settled promise costs a microtask turn on every save.
  #ready = false;

  constructor(deps: TriggerDeps) {
    this.#deps = deps;
  }

  async model(model: ModelRef, action: string, instance: object, options: ModelTriggerOptions = {}): Promise<TriggerResult> {
    const name = modelName(model);
    const definition = this.#deps.routes.route(name, action);
    if (!definition) return IGNORED;
    try {
      const serialized = this.#serializeInstance(name, instance, options.payloadOverride, options.extra);
      const allOwners = options.owner === false || definition.allOwners;
      const owner = allOwners ? null : normalizeOwner(options.owner ?? this.#deps.owner(instance));
      return await this.#append(definition.name, definition, owner, allOwners, serialized, options.tx);
    } catch (error) {
      return this.#failed(definition.name, error);
    }
  }

  action(instance: object, action: string, options: ActionTriggerOptions = {}): Promise<TriggerResult> {
    const model = options.model ?? instanceModel(instance);
    if (model === undefined) {
      return Promise.resolve(this.#failed(action, new ValidationError('invalid_field', `Cannot tell the model of a plain object for action "${action}"; pass { model: 'Book' }.`, 'model')));
    }
    return this.model(model, action, instance, options);
  }

  async raw(event: string, payload: unknown, options: RawTriggerOptions = {}): Promise<TriggerResult> {
    const definition = this.#deps.routes.event(event);
    if (!definition && !options.trust) {
      throw new ValidationError('unknown_event', `Unexpected event "${event}": it is not in the events map (pass { trust: true } to send it anyway).`, 'event');
    }
    if (definition?.model && options.instance && !options.trust) {
      const model = instanceModel(options.instance);
      if (model !== undefined && modelName(model) !== definition.model) {
        const reason = `event "${event}" maps to ${definition.model}, not ${modelName(model)}`;
        this.#deps.logger.debug({ event }, `resthooks: raw event dropped: ${reason}`);
        return { status: 'dropped', reason };
      }
    }
    const data = toJsonText(payload);
    this.#checkSize(event, data);
    const allOwners = options.owner === false || (options.owner === undefined && definition?.allOwners === true);
    const owner = allOwners ? null : normalizeOwner(options.owner ?? (options.instance ? this.#deps.owner(options.instance) : undefined));
    const serialized: Serialized = { data, body: options.envelope === false ? data : null };
    try {
      return await this.#append(event, definition, owner, allOwners, serialized, options.tx);
    } catch (error) {
      return this.#failed(event, error);
    }
  }

  #serializeInstance(model: string, instance: object, override: PayloadOverride | undefined, extra?: ModelTriggerOptions['extra']): Serialized {
    const serializer = this.#deps.serializers[model];
    const data = toJsonText(serializer ? serializer(instance) : instance);
    this.#checkSize(model, data);
    if (typeof override === 'function') return { data, body: null, perHook: (hook) => toJsonText(override(hook, instance)) };
    if (override !== undefined) return { data, body: toJsonText(override) };
    const own = (instance as { serializeHook?: unknown }).serializeHook;
    // The seed's per-instance serializer returns the whole payload and may depend on the hook.
    if (typeof own === 'function') return { data, body: null, perHook: (hook) => toJsonText(own.call(instance, hook)) };
    return { data, body: extraMembers(extra) };
  }

  #checkSize(what: string, data: string): void {
    // UTF-16 length is a lower bound of the UTF-8 size: only count bytes when it might matter.
    if (data.length * 3 > this.#deps.maxPayloadBytes && Buffer.byteLength(data) > this.#deps.maxPayloadBytes) {
      throw new ValidationError('payload_too_large', `The payload of ${what} is ${Buffer.byteLength(data)} bytes, over the ${this.#deps.maxPayloadBytes}-byte limit (delivery.maxPayloadBytes).`);
    }
  }

  async #append(
    name: string,
    definition: EventDefinition | undefined,
    owner: string | null,
    allOwners: boolean,
    serialized: Serialized,
    tx: HostExecutor | undefined,
  ): Promise<TriggerResult> {
    if (!this.#ready) {
      await this.#deps.ready();
      this.#ready = true;
    }
    const now = Date.now();
    const undeliverable = owner === null && !allOwners;
    const event: EventTable = {
      id: newId('evt'),
      name,
      model: definition?.model ?? null,
      action: definition?.action ?? null,
      owner,
      all_owners: allOwners ? 1 : 0,
      data: serialized.data,
      body: serialized.body,
      status: undeliverable ? 'undeliverable' : 'pending',
      error: undeliverable ? 'no owner: the instance has none and no owner was given' : null,
      created_at: now,
    };
    let deliveries: DeliveryTable[] = [];
    if (serialized.perHook && !undeliverable) {
      deliveries = await this.#fanOutNow(event, serialized.perHook, now);
      event.status = 'done';
    }
    const statements = this.#deps.store.compileAppend(event, deliveries);
    if (tx) await runOnHost(tx, statements);
    else {
      await this.#deps.store.dialect.executeBatch(statements);
      if (!undeliverable) this.#deps.appended();
    }
    if (undeliverable) {
      this.#deps.logger.warn({ event: name, eventId: event.id }, `resthooks: ${name} has no owner and is not an all-owners (+) event; recorded as undeliverable`);
      return { status: 'undeliverable', eventId: event.id, reason: event.error! };
    }
    return { status: 'queued', eventId: event.id };
  }

  // A payload that depends on the subscription needs the subscriptions now, while the instance is alive.
  async #fanOutNow(event: EventTable, perHook: (hook: HookInfo) => string, now: number): Promise<DeliveryTable[]> {
    const subscriptions = await this.#deps.findSubscriptions(event);
    return subscriptions.map((s) => newDeliveryRow(event.id, s.id, now, perHook({ id: s.id, event: s.event, target: s.target })));
  }

  #failed(name: string, error: unknown): TriggerResult {
    this.#deps.logger.error({ event: name, err: errorInfo(error) }, `resthooks: could not record ${name}`);
    return { status: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
  }
}

// Extra envelope members are stored in the event's `body` as `,"changes":[…]`: no JSON text starts with a
// comma, so the dispatcher tells them from a whole payload (delivery/envelope.ts) without a new column.
function extraMembers(extra: ModelTriggerOptions['extra']): string | null {
  let members = '';
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (key === 'hook' || key === 'data') throw new ValidationError('invalid_field', `extra.${key} would replace the envelope's own "${key}"; pick another name.`, 'extra');
    members += `,${JSON.stringify(key)}:${toJsonText(value)}`;
  }
  return members === '' ? null : members;
}

function instanceModel(instance: object): string | undefined {
  const constructor = (instance as { constructor?: { name?: unknown } }).constructor;
  const name = constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? name : undefined;
}

