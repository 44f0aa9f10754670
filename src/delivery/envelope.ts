import type { HookInfo } from '../store/records.js';

/**
 * The seed's payload, `{"hook":{"id","event","target"},"data":…}`, built by concatenation: the data
 * was serialized once at trigger time and is spliced in as is, whatever the number of subscriptions.
 */
export function envelopeBody(hook: HookInfo, data: string, members = ''): string {
  return `{"hook":${JSON.stringify({ id: hook.id, event: hook.event, target: hook.target })},"data":${data}${members}}`;
}

/**
 * One subscription's body from an event row: the row's whole `body` when it has one, else the envelope.
 * A `body` starting with a comma holds extra envelope members (a trigger's `extra`, e.g. `,"changes":[…]`),
 * spliced in after `data`; no JSON text starts with a comma, so the two never mix.
 */
export function eventBody(hook: HookInfo, data: string, body: string | null): string {
  if (body === null) return envelopeBody(hook, data);
  return body.startsWith(',') ? envelopeBody(hook, data, body) : body;
}
