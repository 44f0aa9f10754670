/**
 * The send gate of in-process engines: rate windows and pauses in this process's memory. Each process
 * holds its own, so with several processes on one store a limit holds per process; the BullMQ engine
 * shares one gate in Redis instead.
 * @module
 */
import type { Admission, GatePass, GateRequest, ReceiverVerdict, SendGate } from './send-gate.js';
import { pauseAfter, pauseDecision, pauseForgotten, rateRoom, rateWindow, SLOT_LEASE_MARGIN_MS, type PauseState, type RateSlot } from './send-limits.js';

/** Beyond this many subscriptions with a window, idle windows are dropped (memory bounded by busy receivers). */
const IDLE_SWEEP_AT = 10_000;

export class MemorySendGate implements SendGate {
  /** How long a slot is held at most: an attempt's timeout and a margin. */
  readonly #leaseMs: number;
  readonly #windows = new Map<string, { perSecond: number; slots: RateSlot[] }>();
  readonly #pauses = new Map<string, PauseState>();
  /** Pass ids: unique within this gate, which is all they need to be (a UUID per attempt cost more than the rest of `admit`). */
  #passes = 0;
  readonly now = {
    admit: (request: GateRequest): Admission => this.admitAt(request, Date.now()),
    finish: (pass: GatePass, verdict: ReceiverVerdict): void => this.finishAt(pass, verdict, Date.now()),
  };

  constructor(timeoutMs: number) {
    this.#leaseMs = timeoutMs + SLOT_LEASE_MARGIN_MS;
  }

  async admit(request: GateRequest): Promise<Admission> {
    return this.admitAt(request, Date.now());
  }

  async finish(pass: GatePass, verdict: ReceiverVerdict): Promise<void> {
    this.finishAt(pass, verdict, Date.now());
  }

  admitAt(request: GateRequest, now: number): Admission {
    const subscription = request.subscriptionId;
    let pause = this.#pauses.get(subscription);
    if (pause && pauseForgotten(pause, now)) {
      this.#pauses.delete(subscription);
      pause = undefined;
    }
    const decision = pauseDecision(pause, now);
    if (!decision.go) return { admitted: false, waitMs: decision.waitMs, reason: decision.reason };
    const id = String(++this.#passes);
    if (request.perSecond !== null) {
      const { live, waitMs } = rateRoom(this.#windows.get(subscription)?.slots ?? [], request.perSecond, now);
      if (waitMs > 0) {
        this.#windows.set(subscription, { perSecond: request.perSecond, slots: live });
        return { admitted: false, waitMs, reason: 'rate' };
      }
      live.push({ id, end: now + this.#leaseMs });
      if (this.#windows.size >= IDLE_SWEEP_AT) this.#sweep(now);
      this.#windows.set(subscription, { perSecond: request.perSecond, slots: live });
    }
    if (decision.probe) this.#pauses.set(subscription, { ...pause!, probe: { id, leaseUntil: now + this.#leaseMs } });
    return { admitted: true, pass: { id, request, probe: decision.probe } };
  }

  finishAt(pass: GatePass, verdict: ReceiverVerdict, now: number): void {
    const subscription = pass.request.subscriptionId;
    const slot = this.#windows.get(subscription)?.slots.find((s) => s.id === pass.id);
    if (slot) slot.end = now;
    const next = pauseAfter(this.#pauses.get(subscription), pass, verdict, now);
    if (next) this.#pauses.set(subscription, next);
    else this.#pauses.delete(subscription);
  }

  #sweep(now: number): void {
    for (const [key, window] of this.#windows) {
      const { windowMs } = rateWindow(window.perSecond);
      if (window.slots.every((slot) => slot.end <= now - windowMs)) this.#windows.delete(key);
    }
  }
}
