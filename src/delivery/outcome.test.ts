import { describe, expect, it } from 'vitest';
import { classifyAttempt, parseRetryAfter, type OutcomePolicy } from './outcome.js';
import { resolveRetryPolicy } from './retry.js';

const now = 1_700_000_000_000;
const policy: OutcomePolicy = {
  retry: resolveRetryPolicy({ schedule: [0, '10s', '1m'], jitter: 0 }),
  retryOn: () => true,
  minDelayAfter429Ms: 60_000,
};
const classify = (result: Parameters<typeof classifyAttempt>[0], made = 1, p = policy) => classifyAttempt(result, made, p, now, 0.5);

describe('classifyAttempt', () => {
  it('2xx is delivered', () => {
    for (const statusCode of [200, 201, 204, 299]) expect(classify({ statusCode })).toEqual({ kind: 'delivered' });
  });

  it('410 Gone ends the subscription, whatever the attempt', () => {
    expect(classify({ statusCode: 410 }, 3)).toEqual({ kind: 'gone' });
  });

  it('5xx, 408, 429, 3xx, other 4xx and network errors retry on the schedule', () => {
    for (const result of [{ statusCode: 500 }, { statusCode: 503 }, { statusCode: 408 }, { statusCode: 301 }, { statusCode: 404 }, { error: 'ECONNREFUSED' }]) {
      expect(classify(result)).toEqual({ kind: 'retry', at: now + 10_000 });
    }
  });

  it('fails after the last scheduled attempt', () => {
    expect(classify({ statusCode: 500 }, 3)).toEqual({ kind: 'failed', reason: 'gave up after 3 attempts' });
  });

  it('other 4xx fail at once when retryOn says so; 408/429/5xx still retry', () => {
    const strict = { ...policy, retryOn: () => false };
    expect(classify({ statusCode: 404 }, 1, strict)).toMatchObject({ kind: 'failed' });
    expect(classify({ statusCode: 503 }, 1, strict)).toMatchObject({ kind: 'retry' });
    expect(classify({ statusCode: 408 }, 1, strict)).toMatchObject({ kind: 'retry' });
  });

  it('honours Retry-After within [scheduled, 2 × scheduled]', () => {
    expect(classify({ statusCode: 503, retryAfter: '15' })).toEqual({ kind: 'retry', at: now + 15_000 });
    expect(classify({ statusCode: 503, retryAfter: '1' })).toEqual({ kind: 'retry', at: now + 10_000 });
    expect(classify({ statusCode: 503, retryAfter: '3600' })).toEqual({ kind: 'retry', at: now + 20_000 });
    expect(classify({ statusCode: 503, retryAfter: new Date(now + 12_000).toUTCString() })).toEqual({ kind: 'retry', at: now + 12_000 });
  });

  it('waits at least the 429 minimum after Too Many Requests', () => {
    expect(classify({ statusCode: 429 })).toEqual({ kind: 'retry', at: now + 60_000 });
  });
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP-dates, ignores garbage', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter(new Date(now - 5000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
