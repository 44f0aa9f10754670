import { newId } from '../ids.js';
import type { HookInfo } from '../store/records.js';
import { MAX_TARGET_LENGTH } from '../subscriptions.js';

/**
 * django-rest-hooks' payload, `{"hook":{"id","event","target"},"data":…}`, built by concatenation: the data
 * was serialized once at trigger time and is spliced in as is, whatever the number of subscriptions.
 * `key`: see `hookJson`.
 */
export function envelopeBody(hook: HookInfo, data: string, members = '', key?: object): string {
  return `{"hook":${hookJson(hook, key)},"data":${data}${members}}`;
}

/**
 * One subscription's body from an event row: the row's whole `body` when it has one, else the envelope.
 * A `body` starting with a comma holds extra envelope members (a trigger's `extra`, e.g. `,"changes":[…]`),
 * spliced in after `data`; no JSON text starts with a comma, so the two never mix.
 */
export function eventBody(hook: HookInfo, data: string, body: string | null, key?: object): string {
  if (body === null) return envelopeBody(hook, data, '', key);
  return body.startsWith(',') ? envelopeBody(hook, data, body, key) : body;
}

/** The `hookJson` last made for each key (a claim's subscription part), forgotten with the key. */
const made = new WeakMap<object, { readonly hook: HookInfo; readonly json: string }>();

/**
 * The envelope's `hook` member. With a `key` (a claim's subscription part, which the claims of one fan-out
 * or claim batch share), the last one made for that key is reused while the hook stays the same: the
 * queue sends a batch's deliveries to each subscription in turn (at one subscription per event, one after
 * the other; at K subscriptions, every K-th), and stringifying the hook per delivery cost about as much as
 * the rest of the body. Weakly held: a key's entry goes when its claims have been sent.
 */
export function hookJson(hook: HookInfo, key?: object): string {
  if (key === undefined) return JSON.stringify({ id: hook.id, event: hook.event, target: hook.target });
  const known = made.get(key);
  if (known !== undefined && known.hook.id === hook.id && known.hook.event === hook.event && known.hook.target === hook.target) return known.json;
  const json = hookJson(hook);
  made.set(key, { hook, json });
  return json;
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
