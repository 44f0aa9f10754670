/**
 * The decisions behind the send gate, as pure functions (the clock passed in): how a rate becomes a
 * sliding window, whether a subscription's window has room, and a pause and its probe. The in-memory
 * gate applies them directly; the Redis gate runs the same rules in one Lua script per call
 * (bullmq/redis-send-gate.ts), and one test suite holds both gates to them.
 * @module
 */
import type { ReceiverVerdict } from './send-gate.js';

/** Beyond an attempt's timeout, how long its slots are held at most (one never freed: a crash mid-attempt). */
export const SLOT_LEASE_MARGIN_MS = 5_000;
/** How often the attempts held back by a running probe look again. */
export const PROBE_WAIT_MS = 500;
/** The shortest wait of an attempt held back by a slot still in flight (whose end cannot be known). */
export const MIN_SLOT_WAIT_MS = 20;

/**
 * A rate as a sliding window: at most `capacity` attempts whose slots ended within `windowMs`. A slot
 * is held from the attempt's start until its response (or its end) and counts for a window after
 * that, so however long requests take on the way, a receiver never sees more than `capacity` of them
 * in any `windowMs` of its own clock. Rates above 1 round down (2.5 → 2 a second); rates below 1
 * become one per `1000 / rate` ms.
 */
export function rateWindow(perSecond: number): { readonly capacity: number; readonly windowMs: number } {
  if (perSecond < 1) return { capacity: 1, windowMs: Math.ceil(1000 / perSecond) };
  return { capacity: Math.floor(perSecond), windowMs: 1000 };
}

/** One attempt's hold on a rate window: `end` is when it ended, or its lease's expiry while it runs. */
export interface RateSlot {
  readonly id: string;
  end: number;
}

/**
 * The slots still in the window at `now`, and 0 if another attempt fits, or else how long to wait:
 * until the first ended slot leaves the window, or a short while if one still running may end first.
 */
export function rateRoom(slots: readonly RateSlot[], perSecond: number, now: number): { live: RateSlot[]; waitMs: number } {
  const { capacity, windowMs } = rateWindow(perSecond);
  const live = slots.filter((slot) => slot.end > now - windowMs);
  if (live.length < capacity) return { live, waitMs: 0 };
  let waitMs = Infinity;
  for (const slot of live) {
    waitMs = Math.min(waitMs, slot.end <= now ? slot.end + windowMs - now : Math.max(MIN_SLOT_WAIT_MS, Math.floor(windowMs / capacity)));
  }
  return { live, waitMs: Math.max(1, waitMs) };
}

/** A paused subscription: nothing is sent before `until`; then one probe, whose answer ends or extends the pause. */
export interface PauseState {
  readonly until: number;
  /** The pause's length, for extending it when the probe finds the receiver still in trouble. */
  readonly lengthMs: number;
  /** The probe running now, and when its lease ends (a probe whose worker died stops holding the others back). */
  readonly probe: { readonly id: string; readonly leaseUntil: number } | null;
}

export type PauseDecision = { readonly go: true; readonly probe: boolean } | { readonly go: false; readonly waitMs: number; readonly reason: 'paused' | 'probing' };

/**
 * How long a pause is remembered after it ended (or after its probe's lease) with no probe answered:
 * a receiver left alone that long gets its next deliveries without a probe, and the record goes.
 */
export const PAUSE_FORGET_MS = 60_000;

/** Whether a pause no longer counts at `now` (see `PAUSE_FORGET_MS`). */
export function pauseForgotten(state: PauseState, now: number): boolean {
  return now >= Math.max(state.until, state.probe?.leaseUntil ?? 0) + PAUSE_FORGET_MS;
}

/** Whether an attempt may go now, and whether it goes as the probe. */
export function pauseDecision(state: PauseState | undefined, now: number): PauseDecision {
  if (!state || pauseForgotten(state, now)) return { go: true, probe: false };
  if (now < state.until) return { go: false, waitMs: state.until - now, reason: 'paused' };
  if (state.probe && state.probe.leaseUntil > now) return { go: false, waitMs: Math.min(PROBE_WAIT_MS, state.probe.leaseUntil - now), reason: 'probing' };
  return { go: true, probe: true };
}

/** The pause after an attempt (`undefined`: not paused). Only the current probe's answer ends a pause. */
export function pauseAfter(state: PauseState | undefined, pass: { readonly id: string; readonly probe: boolean }, verdict: ReceiverVerdict, now: number): PauseState | undefined {
  const isProbe = pass.probe && state?.probe?.id === pass.id;
  if (verdict.kind === 'pause') {
    return { until: Math.max(state?.until ?? 0, now + verdict.ms), lengthMs: verdict.ms, probe: isProbe ? null : (state?.probe ?? null) };
  }
  if (!isProbe || !state) return state;
  if (verdict.kind === 'fine') return undefined;
  if (verdict.kind === 'troubled') return { until: now + state.lengthMs, lengthMs: state.lengthMs, probe: null };
  return { ...state, probe: null };
}

