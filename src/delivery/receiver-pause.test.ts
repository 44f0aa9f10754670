import { describe, expect, it } from 'vitest';
import { MAX_PAUSE_MS, pauseLengthMs, receiverVerdict } from './receiver-pause.js';
import { resolveRetryPolicy } from './retry.js';

describe('pauseLengthMs', () => {
  const policy = { retry: resolveRetryPolicy({ schedule: [0, '5s', '1m'], jitter: 0 }), minDelayAfter429Ms: 60_000 };
  const now = Date.parse('2026-12-01T00:00:00Z');

  it("honours Retry-After's seconds and HTTP-date, up to an hour", () => {
    expect(pauseLengthMs({ statusCode: 429, retryAfter: '2' }, policy, 1, now, 0.5)).toBe(2000);
    expect(pauseLengthMs({ statusCode: 503, retryAfter: 'Tue, 01 Dec 2026 00:00:30 GMT' }, policy, 1, now, 0.5)).toBe(30_000);
    expect(pauseLengthMs({ statusCode: 429, retryAfter: '0' }, policy, 1, now, 0.5)).toBe(0);
    expect(pauseLengthMs({ statusCode: 429, retryAfter: '999999' }, policy, 1, now, 0.5)).toBe(MAX_PAUSE_MS);
  });

  it('without one: minDelayAfter429 for a 429, the next scheduled delay for a 503 (the last when used up)', () => {
    expect(pauseLengthMs({ statusCode: 429 }, policy, 1, now, 0.5)).toBe(60_000);
    expect(pauseLengthMs({ statusCode: 429, retryAfter: 'soon' }, policy, 1, now, 0.5)).toBe(60_000);
    expect(pauseLengthMs({ statusCode: 503 }, policy, 1, now, 0.5)).toBe(5000);
    expect(pauseLengthMs({ statusCode: 503 }, policy, 9, now, 0.5)).toBe(60_000);
  });

  it('no pause for other results', () => {
    for (const statusCode of [200, 410, 500, 502, 404]) expect(pauseLengthMs({ statusCode, retryAfter: '5' }, policy, 1, now, 0.5)).toBeNull();
    expect(pauseLengthMs({}, policy, 1, now, 0.5)).toBeNull();
  });
});

describe('receiverVerdict', () => {
  it('pause when asked; troubled without an answer or on a server error; fine on any other answer; unsent when aborted', () => {
    expect(receiverVerdict({ statusCode: 429 }, 2000)).toEqual({ kind: 'pause', ms: 2000 });
    expect(receiverVerdict({}, null)).toEqual({ kind: 'troubled' });
    expect(receiverVerdict({ statusCode: 502 }, null)).toEqual({ kind: 'troubled' });
    expect(receiverVerdict({ statusCode: 200 }, null)).toEqual({ kind: 'fine' });
    expect(receiverVerdict({ statusCode: 404 }, null)).toEqual({ kind: 'fine' });
    expect(receiverVerdict({ aborted: true }, null)).toEqual({ kind: 'unsent' });
  });
});
