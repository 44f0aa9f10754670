import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';

describe('RateLimiter', () => {
  it('allows a burst of one second, then one token per 1/rate seconds, per key', () => {
    const limiter = new RateLimiter(2);
    expect([limiter.take('a', 0), limiter.take('a', 0)]).toEqual([0, 0]);
    expect(limiter.take('a', 0)).toBe(500);
    expect(limiter.take('b', 0)).toBe(0);
    expect(limiter.take('a', 250)).toBe(250);
    expect(limiter.take('a', 500)).toBe(0);
    expect(limiter.take('a', 500)).toBe(500);
  });

  it('handles rates below one per second', () => {
    const limiter = new RateLimiter(0.5);
    expect(limiter.take('a', 0)).toBe(0);
    expect(limiter.take('a', 0)).toBe(2000);
    expect(limiter.take('a', 2000)).toBe(0);
  });
});
