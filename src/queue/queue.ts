/**
 * The dispatch port. The dispatcher claims due deliveries and hands them to a queue; the queue gets
 * each one attempted by a `DeliveryProcessor`, in this process (`InProcessQueue`) or in worker
 * processes elsewhere (BullMQ). Producers never send; senders never route.
 * @module
 */
import type { Logger } from '../logger.js';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import type { SendGate } from './send-gate.js';

/**
 * Makes one attempt of a claimed delivery and records it. All a queue needs from delivery. With an
 * aborted signal it makes no attempt and gives the claim back: due again at once, or after the
 * `delayMs` of a `GiveBack` reason.
 */
/** What became of a claim a processor was given: an attempt recorded, or the claim given back unattempted (due again later). */
export type ProcessedClaim = 'recorded' | 'given back';

/**
 * `stillMine`, when given, is asked after the send gate admits the attempt (a wait that may outlast a
 * fault): false means this process may no longer make it (its job may be another worker's now), and
 * the attempt is neither sent nor given back; its claim stays as it is, for whoever holds it now.
 */
export type DeliveryProcessor = (delivery: ClaimedDelivery, signal: AbortSignal, stillMine?: () => boolean) => Promise<ProcessedClaim | void>;

/** The abort reason of a claim handed back unattempted that should not be claimed again for `delayMs`. */
export class GiveBack extends Error {
  readonly delayMs: number;
  constructor(message: string, delayMs: number) {
    super(message);
    this.name = 'GiveBack';
    this.delayMs = delayMs;
  }
}

/** How long a claim given back for `reason` (an aborted signal's) waits before it is due again. */
export function giveBackDelayMs(reason: unknown): number {
  return reason instanceof GiveBack ? reason.delayMs : 0;
}

/** How the slots are shared out, so that one owner's slow receivers cannot hold them all. */
export interface FairnessLimits {
  /** Attempts in flight at once to one origin (scheme, host and port). */
  readonly perOrigin: number;
  /** Attempts in flight at once to one subscription. */
  readonly perSubscription: number;
  /** The fraction (0–1] of the slots not used by other owners that one owner may hold. */
  readonly ownerShare: number;
}

export interface DeliveryQueue {
  /** How long a claim handed to this queue is leased; past it, another claimer may take the delivery. */
  readonly leaseMs: number;
  /** Rate limits and pauses shared by every process of the engine; none: each process keeps its own in memory. */
  readonly gate?: SendGate;
  /** How many more deliveries it takes now: the dispatcher claims at most this many. */
  capacity(): number;
  /** Takes claimed deliveries; resolves once they are accepted (not processed). */
  enqueue(deliveries: readonly ClaimedDelivery[]): Promise<void>;
  /** Called with no argument whenever capacity frees up, so the dispatcher claims again. */
  onCapacity(listener: () => void): void;
  /** Resolves when nothing it accepted is still being processed here. */
  settled(): Promise<void>;
  /** Stops processing: work in progress gets until `timeoutMs`, then its signal is aborted. */
  close(timeoutMs: number): Promise<void>;
}

/** What the engine gives a queue implementation when `createHooks` builds it. */
export interface QueueContext {
  /** Attempts one claimed delivery and records it. */
  readonly processor: DeliveryProcessor;
  /** Reads claimed deliveries by id (a worker that received only ids from elsewhere). */
  loadClaims(ids: readonly string[]): Promise<ClaimedDelivery[]>;
  /**
   * The deliveries in flight in the store (any process's claims), `limit` at a time in id order after
   * `after`: a queue that lost its jobs (Redis restarted empty) hands them out again without waiting
   * for their leases.
   */
  inFlightAttempts(limit: number, after?: string): Promise<Array<{ readonly id: string; readonly attempt: number }>>;
  /**
   * Extends a claim's lease to `leaseUntil` if it is still that claim; false when another claimer took
   * the delivery or it was recorded. For a queue whose claims can wait long before their attempt starts.
   */
  extendLease(claim: ClaimedDelivery, leaseUntil: number): Promise<boolean>;
  /** `delivery.concurrency`: attempts in flight at once in this process. */
  readonly concurrency: number;
  /** `delivery.timeout` in ms: a claim must outlive one attempt. */
  readonly timeoutMs: number;
  /** `delivery.connectionsPerOrigin`, `delivery.concurrencyPerSubscription` and `delivery.ownerShare` (none: no caps). */
  readonly fairness?: FairnessLimits;
  /** The hooks' logger, for the queue's own troubles. */
  readonly logger: Logger;
}

/** Builds the dispatch engine; `createHooks({ queue })` takes one (default: the in-process queue). */
export type QueueFactory = (context: QueueContext) => DeliveryQueue;
