/**
 * A token bucket per key (subscription), in memory: how long a delivery must wait so a receiver
 * gets at most `perSecond` of them, with bursts up to one second's worth.
 */
export class RateLimiter {
  readonly #perSecond: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perSecond: number) {
    this.#perSecond = perSecond;
  }

  /** Takes a token and returns 0, or returns how many ms to wait for one (taking nothing). */
  take(key: string, now: number): number {
    const capacity = Math.max(1, this.#perSecond);
    const bucket = this.#buckets.get(key) ?? { tokens: capacity, at: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) * this.#perSecond) / 1000);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    if (this.#buckets.size > 10_000) this.#forgetFull(now);
    return Math.ceil(((1 - bucket.tokens) * 1000) / this.#perSecond);
  }

  // Full buckets carry no information: dropping them keeps memory bounded by the busy receivers.
  #forgetFull(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) * this.#perSecond) / 1000 >= Math.max(1, this.#perSecond)) this.#buckets.delete(key);
    }
  }
}
