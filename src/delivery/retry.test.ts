import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { DEFAULT_SCHEDULE, delayBeforeAttempt, parseSchedule, resolveRetryPolicy, toMs } from './retry.js';

describe('durations', () => {
  it('reads numbers and unit strings', () => {
    expect([toMs(0), toMs(250), toMs('200ms'), toMs('5s'), toMs('5m'), toMs('2h'), toMs('1d'), toMs('1.5s')]).toEqual([
      0, 250, 200, 5000, 300_000, 7_200_000, 86_400_000, 1500,
    ]);
  });
  it('rejects nonsense with a hint', () => {
    expect(() => toMs('soon' as never)).toThrow(/"soon" is not understood/);
    expect(() => toMs(-1)).toThrow(ConfigError);
  });
  it('parses the RESTHOOKS_RETRY_SCHEDULE format', () => {
    expect(parseSchedule('0,200ms, 1s')).toEqual([0, 200, 1000]);
  });
});

describe('retry policy', () => {
  it('defaults to 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h with ±20% jitter', () => {
    const policy = resolveRetryPolicy();
    expect(policy.schedule).toEqual([0, 5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(policy.jitter).toBe(0.2);
    expect(DEFAULT_SCHEDULE).toHaveLength(8);
  });

  it('gives the delay before each attempt, then null when the schedule is used up', () => {
    const policy = resolveRetryPolicy({ schedule: [0, '1s', '1m'], jitter: 0 });
    expect([0, 1, 2, 3].map((made) => delayBeforeAttempt(policy, made, 0.5))).toEqual([0, 1000, 60_000, null]);
  });

  it('spreads delays by the jitter fraction, both ways', () => {
    const policy = resolveRetryPolicy({ schedule: [0, '10s'], jitter: 0.2 });
    expect(delayBeforeAttempt(policy, 1, 0)).toBe(8000);
    expect(delayBeforeAttempt(policy, 1, 0.5)).toBe(10_000);
    expect(delayBeforeAttempt(policy, 1, 0.999_999)).toBe(12_000);
  });

  it('rejects an empty schedule and a jitter outside [0, 1)', () => {
    expect(() => resolveRetryPolicy({ schedule: [] })).toThrow(ConfigError);
    expect(() => resolveRetryPolicy({ jitter: 1 })).toThrow(ConfigError);
  });
});
