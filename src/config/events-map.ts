import { ConfigError } from '../errors.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/** `'Model.action'`, `'Model.action+'` (every owner's subscribers), or `null` (a raw event). */
export type EventTarget = `${string}.${string}` | null;
export type EventsMap = Readonly<Record<string, EventTarget>>;

/** One parsed entry of the events map. */
export interface EventDefinition {
  readonly name: string;
  /** `null` for raw events (mapped to `null`). */
  readonly model: string | null;
  readonly action: string | null;
  /** `true` for a `+` mapping: the event reaches every owner's subscriptions. */
  readonly allOwners: boolean;
  /** The schema of its payload data, from `createHooks({ schemas })`. */
  readonly schema?: StandardSchemaV1;
}

// Dot-separated words, as in django-rest-hooks' 'book.added'. Kept strict so event names are safe in URLs and logs.
const EVENT_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
// 'Model.action' with an optional '+'. Unlike django-rest-hooks, anything after '+' is an error, not silently ignored.
const TARGET = /^([A-Za-z_$][\w$]*)\.([A-Za-z_][\w-]*)(\+)?$/;

/**
 * Parses the events map, failing at start-up (never at the first save, as django-rest-hooks did) on a bad
 * name, a bad target, or two events sharing one `Model.action` — with or without `+`.
 */
export function parseEventsMap(events: unknown): EventDefinition[] {
  if (events === null || typeof events !== 'object' || Array.isArray(events)) {
    throw new ConfigError('`events` must be an object such as { "book.added": "Book.created", "user.logged_in": null }.');
  }
  const definitions: EventDefinition[] = [];
  const owners = new Map<string, string>();
  for (const [name, target] of Object.entries(events)) {
    if (name.length > 64 || !EVENT_NAME.test(name)) {
      throw new ConfigError(
        `Event name "${name}" is invalid: use dot-separated words of letters, digits, "_" and "-" (at most 64 characters), e.g. "book.added".`,
      );
    }
    if (target === null) {
      definitions.push(Object.freeze({ name, model: null, action: null, allOwners: false }));
      continue;
    }
    const match = typeof target === 'string' ? TARGET.exec(target) : null;
    if (!match) {
      throw new ConfigError(
        `Event "${name}" maps to ${JSON.stringify(target)}, which is not of the form "Model.action", "Model.action+" or null (e.g. "Book.created").`,
      );
    }
    const [, model, action, plus] = match as unknown as [string, string, string, string | undefined];
    const key = `${model}.${action}`;
    const previous = owners.get(key);
    if (previous !== undefined) {
      throw new ConfigError(`Events "${previous}" and "${name}" both map to ${key}; each Model.action may have only one event.`);
    }
    owners.set(key, name);
    definitions.push(Object.freeze({ name, model, action, allOwners: plus === '+' }));
  }
  return definitions;
}
