import { describe, expect, it } from 'vitest';
import { PAUSE_FORGET_MS, PROBE_WAIT_MS, pauseAfter, pauseDecision, rateRoom, rateWindow, type PauseState, type RateSlot } from './send-limits.js';

describe('rateWindow', () => {
  it('whole rates: that many a second; fractions above 1 round down; below 1, one per 1/rate s', () => {
    expect(rateWindow(10)).toEqual({ capacity: 10, windowMs: 1000 });
    expect(rateWindow(2.5)).toEqual({ capacity: 2, windowMs: 1000 });
    expect(rateWindow(0.5)).toEqual({ capacity: 1, windowMs: 2000 });
    expect(rateWindow(0.3)).toEqual({ capacity: 1, windowMs: 3334 });
  });
});

describe('rateRoom', () => {
  it('admits while fewer slots than the rate ended within the window', () => {
    const slots: RateSlot[] = [{ id: 'a', end: 100 }];
    expect(rateRoom(slots, 2, 500).waitMs).toBe(0);
  });

  it('a slot counts for a window after it ended: the wait is until the first one leaves', () => {
    const slots: RateSlot[] = [{ id: 'a', end: 100 }, { id: 'b', end: 300 }];
    expect(rateRoom(slots, 2, 500)).toEqual({ live: slots, waitMs: 600 });
    expect(rateRoom(slots, 2, 1100)).toEqual({ live: [slots[1]], waitMs: 0 });
  });

  it('a slot still in flight holds its place; the wait is then a short look again', () => {
    const slots: RateSlot[] = [{ id: 'a', end: 60_000 }];
    expect(rateRoom(slots, 1, 500).waitMs).toBe(1000);
    expect(rateRoom([{ id: 'a', end: 60_000 }, { id: 'b', end: 60_000 }], 100, 500).waitMs).toBe(0);
    expect(rateRoom(Array.from({ length: 100 }, (_, i) => ({ id: `${i}`, end: 60_000 })), 100, 500).waitMs).toBe(20);
  });

  it('a slot whose lease ran out (its worker died) leaves the window a window after its lease', () => {
    expect(rateRoom([{ id: 'a', end: 1000 }], 1, 2000).waitMs).toBe(0);
  });
});

describe('pause and probe', () => {
  const paused: PauseState = { until: 2000, lengthMs: 2000, probe: null };

  it('not paused: go, not as a probe', () => {
    expect(pauseDecision(undefined, 0)).toEqual({ go: true, probe: false });
  });

  it('paused: wait for the end; then exactly one goes, as the probe, and the others wait for it', () => {
    expect(pauseDecision(paused, 500)).toEqual({ go: false, waitMs: 1500, reason: 'paused' });
    expect(pauseDecision(paused, 2000)).toEqual({ go: true, probe: true });
    const probing = { ...paused, probe: { id: 'p', leaseUntil: 20_000 } };
    expect(pauseDecision(probing, 2001)).toEqual({ go: false, waitMs: PROBE_WAIT_MS, reason: 'probing' });
    // A probe whose lease ended (its worker died) no longer holds the others: the next one probes.
    expect(pauseDecision(probing, 20_000)).toEqual({ go: true, probe: true });
  });

  it('a pause is forgotten PAUSE_FORGET_MS after its end, or after its probe lease', () => {
    expect(pauseDecision(paused, 2000 + PAUSE_FORGET_MS - 1)).toEqual({ go: true, probe: true });
    expect(pauseDecision(paused, 2000 + PAUSE_FORGET_MS)).toEqual({ go: true, probe: false });
    const probing = { ...paused, probe: { id: 'p', leaseUntil: 20_000 } };
    expect(pauseDecision(probing, 20_000 + PAUSE_FORGET_MS - 1)).toEqual({ go: true, probe: true });
    expect(pauseDecision(probing, 20_000 + PAUSE_FORGET_MS)).toEqual({ go: true, probe: false });
  });

  it('a 429 or 503 pauses; a later one pushes the end out, never in', () => {
    const first = pauseAfter(undefined, { id: 'a', probe: false }, { kind: 'pause', ms: 2000 }, 100);
    expect(first).toEqual({ until: 2100, lengthMs: 2000, probe: null });
    expect(pauseAfter(first, { id: 'b', probe: false }, { kind: 'pause', ms: 500 }, 200)).toEqual({ until: 2100, lengthMs: 500, probe: null });
  });

  it("only the probe's answer ends the pause; a troubled probe extends it by its length; an unsent one lets another probe", () => {
    const probing: PauseState = { ...paused, probe: { id: 'p', leaseUntil: 20_000 } };
    expect(pauseAfter(probing, { id: 'p', probe: true }, { kind: 'fine' }, 2100)).toBeUndefined();
    expect(pauseAfter(probing, { id: 'x', probe: false }, { kind: 'fine' }, 2100)).toBe(probing);
    expect(pauseAfter(probing, { id: 'p', probe: true }, { kind: 'troubled' }, 2100)).toEqual({ until: 4100, lengthMs: 2000, probe: null });
    expect(pauseAfter(probing, { id: 'p', probe: true }, { kind: 'pause', ms: 5000 }, 2100)).toEqual({ until: 7100, lengthMs: 5000, probe: null });
    expect(pauseAfter(probing, { id: 'p', probe: true }, { kind: 'unsent' }, 2100)).toEqual({ ...paused, probe: null });
    // A probe that lost its role (its lease ran out and another probes now) decides nothing.
    expect(pauseAfter(probing, { id: 'old', probe: true }, { kind: 'fine' }, 2100)).toBe(probing);
  });
});

