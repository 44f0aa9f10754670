import type { HookInfo } from '../store/records.js';

/**
 * The seed's payload, `{"hook":{"id","event","target"},"data":…}`, built by concatenation: the data
 * was serialized once at trigger time and is spliced in as is, whatever the number of subscriptions.
 */
export function envelopeBody(hook: HookInfo, data: string): string {
  return `{"hook":${JSON.stringify({ id: hook.id, event: hook.event, target: hook.target })},"data":${data}}`;
}
