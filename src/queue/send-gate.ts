/**
 * The gate an attempt passes before it is sent: a subscription's rate limit, a pause after its
 * receiver answered 429 or 503 (with one probe at the end of it), and, where the engine shares them
 * across processes, per-origin and per-subscription caps. An attempt the gate holds back is given
 * back to the store unattempted (no attempt counted) and is due again after the wait it names.
 * In-process engines use a gate in memory; the BullMQ engine one in Redis, shared by all its workers.
 * @module
 */

/** What the gate needs to know about an attempt about to be sent. */
export interface GateRequest {
  readonly subscriptionId: string;
  /** The target's origin (scheme, host, port). */
  readonly origin: string;
  /** Deliveries per second the subscription receives at most; null: no limit. */
  readonly perSecond: number | null;
}

/** An admitted attempt's hold on its slots; handed back to `finish`. */
export interface GatePass {
  readonly id: string;
  readonly request: GateRequest;
  /** Whether it is the one attempt that tests a paused receiver before the others resume. */
  readonly probe: boolean;
}

export type Admission =
  | { readonly admitted: true; readonly pass: GatePass }
  | { readonly admitted: false; readonly waitMs: number; readonly reason: 'rate' | 'paused' | 'probing' | 'origin' | 'subscription' };

/**
 * What an attempt's result says about its receiver:
 * - `pause`: it asked for a pause (429, 503): none of the subscription's attempts for `ms`;
 * - `troubled`: no answer, or a server error: a probe that meets it extends the pause;
 * - `fine`: it answered (a probe that meets it ends the pause);
 * - `unsent`: nothing was sent (shutdown): the pass frees its slots and says nothing.
 */
export type ReceiverVerdict = { readonly kind: 'pause'; readonly ms: number } | { readonly kind: 'troubled' } | { readonly kind: 'fine' } | { readonly kind: 'unsent' };

export interface SendGate {
  /** Admits the attempt (taking its slots) or says how long it should wait. */
  admit(request: GateRequest): Promise<Admission>;
  /** After the attempt: frees its slots and applies the verdict to the subscription's pause. */
  finish(pass: GatePass, verdict: ReceiverVerdict): Promise<void>;
  /**
   * `admit` and `finish` answered at once, by a gate that holds its state in this process's memory: the
   * attempt calls these instead, and makes no promise of its own for either (one of the few per delivery
   * an attempt costs). Both or neither.
   */
  readonly now?: {
    admit(request: GateRequest): Admission;
    finish(pass: GatePass, verdict: ReceiverVerdict): void;
  };
}
