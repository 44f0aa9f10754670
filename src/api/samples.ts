/**
 * Sample payloads for `GET /events/:name/sample` (Zapier's `performList`): objects shaped like the
 * `data` a subscriber receives, each with an `id` Zapier can de-duplicate on. Pure.
 * @module
 */
import type { EventDefinition } from '../config/events-map.js';
import type { JsonValue, StoredEvent } from '../store/records.js';

export type Sample = { id: string | number; [key: string]: JsonValue };

/**
 * An event's data as a sample: an object keeps its own `id` (the book's, as the subscriber sees it)
 * and gets the event's id only when it has none; any other value is wrapped as `{ id, data }`.
 */
export function sampleOf(event: Pick<StoredEvent, 'id' | 'data'>): Sample {
  const data = event.data;
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const own = data.id;
    return { ...data, id: typeof own === 'string' || typeof own === 'number' ? own : event.id };
  }
  return { id: event.id, data };
}

/**
 * The sample shown before any real event exists: the app's own example for that event when it gave
 * one (`examples` option), else a placeholder naming the event, clearly marked `sample: true`.
 */
export function exampleSample(definition: EventDefinition, example: JsonValue | undefined): Sample {
  if (example !== undefined) return sampleOf({ id: `example_${definition.name}`, data: example });
  return { id: `example_${definition.name}`, event: definition.name, model: definition.model, action: definition.action, sample: true };
}
