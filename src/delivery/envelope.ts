import { newId } from '../ids.js';
import type { HookInfo } from '../store/records.js';
import { MAX_TARGET_LENGTH } from '../subscriptions.js';

/**
 * django-rest-hooks' payload, `{"hook":{"id","event","target"},"data":…}`, built by concatenation: the data
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

// Subscription ids all have one length; JSON.stringify writes at most 6 bytes per UTF-16 unit (a control
// character or a lone surrogate becomes `\uXXXX`), so this bounds any target a subscription can hold.
const HOOK_ID_LENGTH = newId('sub').length;
const MAX_TARGET_JSON_BYTES = 6 * MAX_TARGET_LENGTH;

/**
 * The most bytes the envelope of an event named `event` adds around its data (and extra members), whatever
 * subscription receives it: the `hook` member is counted with the longest target a subscription may have.
 * The trigger checks the payload size with it, so no body sent is ever over the limit.
 */
export function envelopeOverheadBytes(event: string): number {
  const shell = envelopeBody({ id: 'x'.repeat(HOOK_ID_LENGTH), event, target: '' }, '');
  return Buffer.byteLength(shell) + MAX_TARGET_JSON_BYTES;
}
