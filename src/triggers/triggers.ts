/**
 * The write path: `model()`, `action()` and `raw()` route an event, serialize its data once and
 * append one outbox row. The cost does not grow with the number of subscribers. Without `tx` a trigger
 * reports every problem in its result and never throws into the caller's write; with `tx` a problem
 * that leaves the event unrecorded is thrown, so the caller's transaction cannot commit without it.
 * @module
 */
import type { EventDefinition } from '../config/events-map.js';
import type { EventRoutes } from '../config/event-routes.js';
import type { Serializer } from '../config/options.js';
import type { StandardSchemaIssue, StandardSchemaResult, StandardSchemaV1 } from '../config/standard-schema.js';
import { envelopeOverheadBytes } from '../delivery/envelope.js';
import { OutboxWriteError, ResthooksError, ValidationError } from '../errors.js';
import { newId } from '../ids.js';
import { errorInfo, loggedError, type Logger } from '../logger.js';
import type { KyselyStore } from '../store/kysely-store.js';
import { announcesCommit, runOnHost, type HostExecutor } from '../store/host-executor.js';
import type { HookInfo, JsonValue, Subscription } from '../store/records.js';
import type { DeliveryTable, EventTable } from '../store/schema.js';
import { newDeliveryRow } from '../store/rows.js';
import { resolveInstanceModel, resolveModelRef, type ResolvedModel } from './model-name.js';
import { normalizeOwner, type OwnerResolver, type OwnerValue } from './owner.js';
import { toJsonText } from './serialize.js';

/**
 * A model: its name, or anything with a `name` (a class, an entity schema). A class's declared model name
 * (`static [resthooksModel] = 'Book'` or `static resthooksModel = 'Book'`) wins over its `name`, which
 * minifiers change.
 */
export type ModelRef = string | ModelType;

/** A model named by an object: a class or an entity schema (see `ModelRef`). */
export interface ModelType {
  readonly name: string;
}

/** What a trigger did. Without `tx`, problems are reported here instead of thrown. */
export type TriggerResult =
  /** Appended to the outbox; deliveries follow asynchronously. */
  | { readonly status: 'queued'; readonly eventId: string }
  /** No event is mapped to this (model, action): nothing was written. */
  | { readonly status: 'ignored' }
  /** Recorded (in `tx` when given), but it can reach no subscription (e.g. no owner for a non-`+` event). */
  | { readonly status: 'undeliverable'; readonly eventId: string; readonly reason: string }
  /** Not recorded: a raw event whose instance is of another model than the event's mapping. */
  | { readonly status: 'dropped'; readonly reason: string }
  /**
   * Not recorded because of an error; it was logged. A `ResthooksError` whose `code` names the cause:
   * `invalid_field` (no model, an instance that is not an object, a bad `extra`), `serialization_failed`
   * (a serializer, `toJSON`, `serializeHook` or `payloadOverride` threw, or the data is circular),
   * `owner_failed` (the owner resolver threw), `payload_too_large`; otherwise the store's or finder's own
   * error. Never returned when `tx` is given: then it is thrown as an `OutboxWriteError`.
   */
  | { readonly status: 'failed'; readonly error: Error };

/** django-rest-hooks' `payload_override`: a whole payload for every subscription, or one per subscription. */
export type PayloadOverride = JsonValue | { make(hook: HookInfo, instance: object | undefined): unknown }['make'];

export interface ModelTriggerOptions {
  /**
   * Write the outbox row(s) in the caller's transaction: they commit or roll back with the app's write.
   * If the event cannot be recorded in it, the trigger throws `OutboxWriteError`: roll the transaction back.
   */
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

/**
 * Runs a statement in the caller's synchronous transaction (better-sqlite3, Drizzle's `BetterSQLite3Database`)
 * and returns once it has run. A returned promise counts as a failure: its statement might run after COMMIT.
 */
export type SyncHostExecutor = (sql: string, parameters: readonly unknown[]) => unknown;

export interface SyncModelTriggerOptions extends Omit<ModelTriggerOptions, 'tx'> {
  /** The transaction to write the outbox row in, before the trigger returns. */
  tx: SyncHostExecutor;
}

export interface ActionTriggerOptions extends ModelTriggerOptions {
  /** The model name when it cannot be taken from the instance (plain objects). */
  model?: ModelRef;
}

export interface RawTriggerOptions {
  /** As for `model()`: written in the caller's transaction; `OutboxWriteError` thrown if it cannot be. */
  tx?: HostExecutor;
  /** Whose subscriptions receive it; `false` for every owner's. Without it the event has no owner. */
  owner?: OwnerValue | false;
  /** Accept an event name that is not in the events map, and skip the model check. */
  trust?: boolean;
  /** The instance the event is about: if the event maps to a model, it must be an instance of it. */
  instance?: object;
  /** Send the payload as the whole body instead of inside `{ hook, data }` (django-rest-hooks' `send_hook_meta=False`). */
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
  /** Each event's schema, for those that have one. */
  readonly schemas: ReadonlyMap<string, StandardSchemaV1>;
  /** Refuse payloads that fail their schema (else send them with a warning). */
  readonly development: boolean;
  /** Called after an append through the caller's transaction, which commits later: see CommitWatch. */
  readonly appendedInTransaction: () => void;
}

const IGNORED: TriggerResult = Object.freeze({ status: 'ignored' });

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
  /** The envelope's largest overhead per declared event (an undeclared, trusted raw event computes its own). */
  readonly #overheads: ReadonlyMap<string, number>;
  readonly #mappedModels: ReadonlySet<string>;
  /** Classes already warned about: one line per class, however often it is triggered. */
  readonly #unmatchedClasses = new WeakSet<object>();

  constructor(deps: TriggerDeps) {
    this.#deps = deps;
    this.#overheads = new Map(deps.routes.all().map((definition) => [definition.name, envelopeOverheadBytes(definition.name)]));
    this.#mappedModels = new Set(Object.keys(deps.routes.table()));
  }

  async model(model: ModelRef, action: string, instance: object, options: ModelTriggerOptions = {}): Promise<TriggerResult> {
    const resolved = resolveModelRef(model);
    if (resolved === undefined) return this.#refused(String(action), options.tx, unnamedModel(action));
    return this.#modelEvent(resolved, action, instance, options);
  }

  async #modelEvent(model: ResolvedModel, action: string, instance: object, options: ModelTriggerOptions): Promise<TriggerResult> {
    const { name } = model;
    const definition = this.#routeModel(model, action);
    if (!definition) return IGNORED;
    try {
      checkInstance(name, action, instance);
      const checked = this.#checked(definition.name, this.#dataOf(definition.name, name, instance));
      // Awaited only when a schema validates asynchronously: an await is a microtask on every save.
      const data = isPromiseLike(checked) ? await checked : checked;
      const serialized = this.#serializeInstance(definition.name, name, data, instance, options.payloadOverride, options.extra);
      const allOwners = options.owner === false || definition.allOwners;
      const owner = allOwners ? null : normalizeOwner(options.owner ?? this.#ownerOf(definition.name, instance));
      return await this.#append(definition.name, definition, owner, allOwners, serialized, options.tx);
    } catch (error) {
      return this.#refused(definition.name, options.tx, error);
    }
  }

  /** The event a model's action routes to, if any; warns first when the instance's class name matches no mapped model. */
  #routeModel(model: ResolvedModel, action: string): EventDefinition | undefined {
    this.#checkClassName(model);
    return this.#deps.routes.route(model.name, action);
  }

  /**
   * `model()` for a synchronous transaction: the outbox row is written through `tx` before this returns,
   * so it commits with a transaction that cannot await (better-sqlite3's). What cannot be done without
   * awaiting is refused with `OutboxWriteError`: a first write before `hooks.start()` has resolved, and a
   * payload that depends on the subscription (`serializeHook` / a `payloadOverride` function), which
   * needs the subscriptions looked up first.
   */
  modelSync(model: ModelRef, action: string, instance: object, options: SyncModelTriggerOptions): TriggerResult {
    const { tx } = options;
    const resolved = resolveModelRef(model);
    if (resolved === undefined) return this.#refused(String(action), tx, unnamedModel(action));
    const { name } = resolved;
    const definition = this.#routeModel(resolved, action);
    if (!definition) return IGNORED;
    try {
      checkInstance(name, action, instance);
      if (!this.#ready && !this.#deps.store.isReady) {
        throw new ResthooksError('migration_required', `${definition.name} was triggered in a synchronous transaction before the store was ready: await hooks.start() first.`);
      }
      const data = this.#checked(definition.name, this.#dataOf(definition.name, name, instance));
      if (isPromiseLike(data)) {
        data.then(undefined, () => undefined);
        throw new ValidationError('payload_invalid', `The schema of ${definition.name} validates asynchronously, which a synchronous transaction cannot wait for; use model() with an async tx.`);
      }
      const serialized = this.#serializeInstance(definition.name, name, data, instance, options.payloadOverride, options.extra);
      if (serialized.perHook) {
        throw new ValidationError(
          'invalid_field',
          `${definition.name} has a payload per subscription (serializeHook or a payloadOverride function), which needs the subscriptions looked up, and a synchronous transaction cannot wait for that; use a serializer instead.`,
        );
      }
      const allOwners = options.owner === false || definition.allOwners;
      const owner = allOwners ? null : normalizeOwner(options.owner ?? this.#ownerOf(definition.name, instance));
      const event = this.#eventRow(definition.name, definition, owner, allOwners, serialized);
      for (const statement of this.#deps.store.compileAppend(event)) {
        const done: unknown = tx(statement.sql, statement.parameters);
        if (isPromiseLike(done)) {
          done.then(undefined, () => undefined);
          throw new ResthooksError('outbox_write_failed', 'The synchronous tx returned a promise: its statement may run after COMMIT. Pass an executor that runs the statement before returning, or use model() with an async tx.');
        }
      }
      if (event.status !== 'undeliverable' && !announcesCommit(tx)) this.#deps.appendedInTransaction();
      return this.#appended(definition.name, event);
    } catch (error) {
      return this.#refused(definition.name, tx, error);
    }
  }

  async action(instance: object, action: string, options: ActionTriggerOptions = {}): Promise<TriggerResult> {
    const model = options.model !== undefined ? resolveModelRef(options.model) : isObject(instance) ? resolveInstanceModel(instance) : undefined;
    if (model === undefined) {
      if (options.model !== undefined) return this.#refused(String(action), options.tx, unnamedModel(action));
      const error = isObject(instance)
        ? new ValidationError('invalid_field', `Cannot tell the model of a plain object for action "${action}"; pass { model: 'Book' }.`, 'model')
        : new ValidationError('invalid_field', `The instance of action "${action}" must be an object, got ${typeName(instance)}.`, 'instance');
      return this.#refused(action, options.tx, error);
    }
    return this.#modelEvent(model, action, instance, options);
  }

  async raw(event: string, payload: unknown, options: RawTriggerOptions = {}): Promise<TriggerResult> {
    const definition = this.#deps.routes.event(event);
    if (!definition && !options.trust) {
      throw new ValidationError('unknown_event', `Unexpected event "${event}": it is not in the events map (pass { trust: true } to send it anyway).`, 'event');
    }
    if (typeof event !== 'string' || event === '') throw new ValidationError('invalid_field', 'A raw event needs a name.', 'event');
    const instance = isObject(options.instance) ? options.instance : undefined;
    if (definition?.model && instance && !options.trust) {
      const model = resolveInstanceModel(instance);
      if (model !== undefined) this.#checkClassName(model);
      if (model !== undefined && model.name !== definition.model) {
        const reason = `event "${event}" maps to ${definition.model}, not ${model.name}`;
        this.#deps.logger.debug({ event }, `resthooks: raw event dropped: ${reason}`);
        return { status: 'dropped', reason };
      }
    }
    try {
      const checked = this.#checked(event, payload);
      const data = serialize(isPromiseLike(checked) ? await checked : checked, 'payload', event);
      const serialized: Serialized = { data, body: options.envelope === false ? data : null };
      this.#checkSize(event, serialized);
      const allOwners = options.owner === false || (options.owner === undefined && definition?.allOwners === true);
      const owner = allOwners ? null : normalizeOwner(options.owner ?? (instance ? this.#ownerOf(event, instance) : undefined));
      return await this.#append(event, definition, owner, allOwners, serialized, options.tx);
    } catch (error) {
      return this.#refused(event, options.tx, error);
    }
  }

  /**
   * A model named only by its class name that matches no mapped model is most likely a class a minifier
   * renamed (`Book` became `o`): its events would be ignored without a word, so say so, once per class.
   */
  #checkClassName(model: ResolvedModel): void {
    if (!model.fromClassName || model.type === undefined || this.#mappedModels.has(model.name) || this.#unmatchedClasses.has(model.type)) return;
    this.#unmatchedClasses.add(model.type);
    const mapped = [...this.#mappedModels];
    const example = mapped[0] ?? 'Book';
    this.#deps.logger.warn(
      { model: model.name, mappedModels: mapped },
      `resthooks: class "${model.name}" matches no mapped model (mapped: ${mapped.length > 0 ? mapped.join(', ') : 'none'}); its events are ignored. ` +
        `If it is one of them and a minifier renamed it, name its model: pass { model: '${example}' }, or declare static resthooksModel = '${example}' ` +
        `(or static [resthooksModel] = '${example}') on the class.`,
    );
  }

  /**
   * An event that could not be recorded. Without `tx`: a logged `failed` result. With `tx`: thrown as
   * `OutboxWriteError`, so the caller's transaction aborts instead of committing without its event.
   */
  #refused(name: string, tx: HostExecutor | SyncHostExecutor | undefined, error: unknown): TriggerResult {
    if (tx) {
      // The caller gets the error and decides (an ORM adapter may fall back to appending after commit):
      // an error-level line here would report a loss that may never happen.
      this.#deps.logger.debug({ event: name, err: loggedError(error) }, `resthooks: could not record ${name} in the caller's transaction`);
      throw new OutboxWriteError(name, error);
    }
    const err = loggedError(error);
    this.#deps.logger.error({ event: name, err }, `resthooks: could not record ${name}`);
    return { status: 'failed', error: err };
  }

  #ownerOf(event: string, instance: object): OwnerValue | null | undefined {
    try {
      return this.#deps.owner(instance);
    } catch (error) {
      throw new ResthooksError('owner_failed', `The owner resolver threw for ${event}: ${errorInfo(error).message}`, { cause: error });
    }
  }

  /** The value an instance's payload data is made of: its model's serializer's output, or the instance. */
  #dataOf(event: string, model: string, instance: object): unknown {
    const serializer = this.#deps.serializers[model];
    if (!serializer) return instance;
    try {
      return serializer(instance);
    } catch (error) {
      throw serializationFailed(`the ${model}`, event, error);
    }
  }

  /**
   * The payload data checked against the event's schema, if it has one: its output when valid. Invalid
   * data is refused in development (`payload_invalid`) and sent as it is, with a warning, in production.
   */
  #checked(event: string, value: unknown): unknown {
    const schema = this.#deps.schemas.get(event);
    if (!schema) return value;
    const result = schema['~standard'].validate(value);
    return isPromiseLike(result) ? Promise.resolve(result).then((settled) => this.#settle(event, value, settled)) : this.#settle(event, value, result);
  }

  #settle(event: string, value: unknown, result: StandardSchemaResult<unknown>): unknown {
    if (!result.issues) return result.value;
    const summary = result.issues.map((issue) => `${issuePath(issue)}${issue.message}`).join('; ');
    const error = new ValidationError('payload_invalid', `The payload of ${event} does not match its schema: ${summary}`, undefined, result.issues);
    if (this.#deps.development) throw error;
    this.#deps.logger.warn({ event, issues: result.issues, err: error }, `resthooks: the payload of ${event} does not match its schema; sent anyway (production mode)`);
    return value;
  }

  #serializeInstance(event: string, model: string, value: unknown, instance: object, override: PayloadOverride | undefined, extra?: ModelTriggerOptions['extra']): Serialized {
    let data: string;
    try {
      data = toJsonText(value);
    } catch (error) {
      throw serializationFailed(`the ${model}`, event, error);
    }
    let serialized: Serialized;
    if (typeof override === 'function') {
      serialized = { data, body: null, perHook: (hook) => serializeMade(() => override(hook, instance), 'payloadOverride', event) };
    } else if (override !== undefined) {
      serialized = { data, body: serialize(override, 'payloadOverride', event) };
    } else {
      const own = (instance as { serializeHook?: unknown }).serializeHook;
      // django-rest-hooks' per-instance serializer returns the whole payload and may depend on the hook.
      serialized =
        typeof own === 'function'
          ? { data, body: null, perHook: (hook) => serializeMade(() => own.call(instance, hook), 'serializeHook', event) }
          : { data, body: extraMembers(event, extra) };
    }
    this.#checkSize(event, serialized);
    return serialized;
  }

  /**
   * The limit applies to what is sent: a whole body as is, an envelope with its `hook` member counted at
   * its largest (see envelopeOverheadBytes). The data is stored with the event, so it is bounded too.
   * Per-hook bodies are checked as they are made (#fanOutNow).
   */
  #checkSize(event: string, serialized: Serialized): void {
    const { data, body } = serialized;
    this.#checkBytes(event, 'data', data, 0);
    if (serialized.perHook) return;
    if (body !== null && !body.startsWith(',')) this.#checkBytes(event, 'payload', body, 0);
    else this.#checkBytes(event, 'payload', body === null ? data : data + body, this.#overheads.get(event) ?? envelopeOverheadBytes(event));
  }

  #checkBytes(event: string, what: string, text: string, overhead: number): void {
    const max = this.#deps.maxPayloadBytes;
    // UTF-16 length × 3 bounds the UTF-8 size: only count bytes when it might matter.
    if (text.length * 3 + overhead <= max) return;
    const bytes = Buffer.byteLength(text) + overhead;
    if (bytes <= max) return;
    const counted = overhead > 0 ? ` (with the envelope's "hook" member counted at its largest, ${overhead} bytes)` : '';
    throw new ValidationError('payload_too_large', `The ${what} of ${event} is ${bytes} bytes${counted}, over the ${max}-byte limit (delivery.maxPayloadBytes).`);
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
    const event = this.#eventRow(name, definition, owner, allOwners, serialized);
    let deliveries: DeliveryTable[] = [];
    if (serialized.perHook && event.status === 'pending') {
      deliveries = await this.#fanOutNow(event, serialized.perHook, event.created_at);
      event.status = 'done';
    }
    // Everything that can fail before the write has run: the event and its deliveries are written together,
    // and in `tx` a failing statement is thrown (#refused), so the caller rolls back any row written before it.
    const statements = this.#deps.store.compileAppend(event, deliveries);
    if (tx) {
      await runOnHost(tx, statements);
      if (event.status !== 'undeliverable' && !announcesCommit(tx)) this.#deps.appendedInTransaction();
    } else {
      await this.#deps.store.dialect.executeBatch(statements);
      if (event.status !== 'undeliverable') this.#deps.appended();
    }
    return this.#appended(name, event);
  }

  #eventRow(name: string, definition: EventDefinition | undefined, owner: string | null, allOwners: boolean, serialized: Serialized): EventTable {
    const undeliverable = owner === null && !allOwners;
    return {
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
      created_at: Date.now(),
    };
  }

  /** The result of a recorded event (an undeliverable one is logged). */
  #appended(name: string, event: EventTable): TriggerResult {
    if (event.status === 'undeliverable') {
      // The error's stack leads to the code that fired an event without an owner.
      const err = new ValidationError('invalid_field', `${name} was fired without an owner: ${event.error}`, 'owner');
      this.#deps.logger.error({ event: name, eventId: event.id, err }, `resthooks: ${name} has no owner and is not an all-owners (+) event; recorded as undeliverable`);
      return { status: 'undeliverable', eventId: event.id, reason: event.error! };
    }
    return { status: 'queued', eventId: event.id };
  }

  // A payload that depends on the subscription needs the subscriptions now, while the instance is alive.
  async #fanOutNow(event: EventTable, perHook: (hook: HookInfo) => string, now: number): Promise<DeliveryTable[]> {
    const subscriptions = await this.#deps.findSubscriptions(event);
    return subscriptions.map((s) => {
      // The event's own name, as the dispatcher sends it for envelope bodies (a custom finder may return others' subscriptions).
      const body = perHook({ id: s.id, event: event.name, target: s.target });
      this.#checkBytes(event.name, `payload for subscription ${s.id}`, body, 0);
      return newDeliveryRow(event.id, s.id, now, body);
    });
  }
}

/** JSON text of `value`; a throw (`toJSON`, circular data) as `serialization_failed`. */
function serialize(value: unknown, what: string, event: string): string {
  try {
    return toJsonText(value);
  } catch (error) {
    throw serializationFailed(`the ${what}`, event, error);
  }
}

/** JSON text of what the user's `make` returns; its throw counts as the serialization's. */
function serializeMade(make: () => unknown, what: string, event: string): string {
  try {
    return toJsonText(make());
  } catch (error) {
    throw serializationFailed(`the ${what}`, event, error);
  }
}

function serializationFailed(what: string, event: string, error: unknown): ResthooksError {
  return new ResthooksError('serialization_failed', `Could not serialize ${what} of ${event}: ${errorInfo(error).message}`, { cause: error });
}

// Extra envelope members are stored in the event's `body` as `,"changes":[…]`: no JSON text starts with a
// comma, so the dispatcher tells them from a whole payload (delivery/envelope.ts) without a new column.
function extraMembers(event: string, extra: ModelTriggerOptions['extra']): string | null {
  // Most saves have none: no entries array to build.
  if (extra === undefined) return null;
  let members = '';
  for (const [key, value] of Object.entries(extra)) {
    if (key === 'hook' || key === 'data') throw new ValidationError('invalid_field', `extra.${key} would replace the envelope's own "${key}"; pick another name.`, 'extra');
    members += `,${JSON.stringify(key)}:${serialize(value, `extra.${key}`, event)}`;
  }
  return members === '' ? null : members;
}

function unnamedModel(action: unknown): ValidationError {
  return new ValidationError('invalid_field', `The model of action "${String(action)}" must be a model name or have a \`name\` (a class, an entity schema).`, 'model');
}

/** The instance is typed `object`, but plain JavaScript callers can pass anything. */
function checkInstance(model: string, action: string, instance: unknown): void {
  if (!isObject(instance)) throw new ValidationError('invalid_field', `The instance of ${model}.${action} must be an object, got ${typeName(instance)}.`, 'instance');
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return isObject(value) && typeof (value as { then?: unknown }).then === 'function';
}

/** `title: ` for an issue at `title`, `tags.0: ` deeper, nothing at the root. */
function issuePath(issue: StandardSchemaIssue): string {
  const keys = (issue.path ?? []).map((segment) => String(typeof segment === 'object' ? segment.key : segment));
  return keys.length > 0 ? `${keys.join('.')}: ` : '';
}

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

function typeName(value: unknown): string {
  return value === null ? 'null' : typeof value;
}
