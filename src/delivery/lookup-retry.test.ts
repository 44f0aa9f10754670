import { describe, expect, it } from 'vitest';
import { resolveFinderRetry } from '../config/options.js';
import { lookupRetryDelay, STORE_LOOKUP_MAX_DELAY_MS } from './fanout.js';

describe('finderRetry', () => {
  it('defaults to 8 tries, 5 s doubling up to 5 min: about ten minutes before a finder is given up on', () => {
    const policy = resolveFinderRetry();
    expect(policy).toEqual({ attempts: 8, delayMs: 5_000, maxDelayMs: 300_000 });
    const waits = [1, 2, 3, 4, 5, 6, 7].map((tries) => lookupRetryDelay(policy, tries, false));
    expect(waits).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000]);
    expect(waits.reduce((a, b) => a + b)).toBe(615_000);
  });

  it("the store's own read is tried at least every 30 s, however long it fails", () => {
    const policy = resolveFinderRetry();
    expect([1, 3, 4, 10, 1_000, 1e9].map((tries) => lookupRetryDelay(policy, tries, true))).toEqual([5_000, 20_000, STORE_LOOKUP_MAX_DELAY_MS, 30_000, 30_000, 30_000]);
    expect(lookupRetryDelay(resolveFinderRetry({ delay: 10, maxDelay: 40 }), 1e9, true)).toBe(40);
  });

  it('refuses a policy that would spin or never wait', () => {
    expect(() => resolveFinderRetry({ attempts: 0 })).toThrow(/finderRetry.attempts must be a positive integer/);
    expect(() => resolveFinderRetry({ delay: 0 })).toThrow(/at least 1 ms/);
    expect(() => resolveFinderRetry({ delay: '1m', maxDelay: '10s' })).toThrow(/must not be shorter/);
    expect(resolveFinderRetry({ attempts: 3, delay: '200ms', maxDelay: '1s' })).toEqual({ attempts: 3, delayMs: 200, maxDelayMs: 1_000 });
  });
});
