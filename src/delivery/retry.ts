/**
 * Retry timing as data plus pure functions (no clock reads, randomness injected).
 * @module
 */
import { ConfigError } from '../errors.js';

/** A duration: milliseconds, or a string with a unit: `200ms`, `5s`, `5m`, `2h`, `1d`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

export interface RetryPolicy {
  /**
   * Delay before each attempt, the first included: `[0, '5s', '5m']` makes three attempts, the
   * first at once. Default: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight attempts over ~28 h).
   */
  readonly schedule: readonly Duration[];
  /** Random spread applied to each delay, as a fraction: 0.2 means ±20%. Default 0.2. */
  readonly jitter: number;
}

export const DEFAULT_SCHEDULE: readonly Duration[] = [0, '5s', '5m', '30m', '2h', '5h', '10h', '10h'];

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function toMs(duration: Duration | string): number {
  if (typeof duration === 'number') {
    if (!Number.isFinite(duration) || duration < 0) throw new ConfigError(`Duration ${duration} must be a non-negative number of milliseconds.`);
    return duration;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(duration);
  if (!match) throw new ConfigError(`Duration "${duration}" is not understood; use milliseconds or a unit: "200ms", "5s", "5m", "2h".`);
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 'ms']!);
}

/** `"0,200ms,1s"` → `[0, 200, 1000]` (the `RESTHOOKS_RETRY_SCHEDULE` format). */
export function parseSchedule(text: string): number[] {
  return text.split(',').map((part) => toMs(part.trim()));
}

/** A validated policy with the schedule in milliseconds. */
export interface ResolvedRetryPolicy {
  readonly schedule: readonly number[];
  readonly jitter: number;
}

export function resolveRetryPolicy(policy: Partial<RetryPolicy> = {}): ResolvedRetryPolicy {
  const schedule = (policy.schedule ?? DEFAULT_SCHEDULE).map(toMs);
  if (schedule.length === 0) throw new ConfigError('retry.schedule needs at least one entry (the first attempt).');
  const jitter = policy.jitter ?? 0.2;
  if (!(jitter >= 0 && jitter < 1)) throw new ConfigError(`retry.jitter ${jitter} must be at least 0 and below 1.`);
  return Object.freeze({ schedule: Object.freeze(schedule), jitter });
}

/**
 * The delay before attempt number `attemptsMade + 1`, or `null` when the schedule is used up.
 * `random` is a number in [0, 1).
 */
export function delayBeforeAttempt(policy: ResolvedRetryPolicy, attemptsMade: number, random: number): number | null {
  const base = policy.schedule[attemptsMade];
  if (base === undefined) return null;
  return Math.round(base * (1 + policy.jitter * (2 * random - 1)));
}
