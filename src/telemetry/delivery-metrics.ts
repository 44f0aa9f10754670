/**
 * The engine's in-process counters and histograms: what this process did since it started. The
 * backlog gauges are read from the store at scrape time (see observability.ts).
 * @module
 */
import type { AttemptRecord } from '../store/kysely-store.js';
import { Counter, Histogram } from './prometheus-text.js';

/** Attempt latency buckets, in seconds: from a local receiver's milliseconds to the 15 s default timeout. */
const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30] as const;
const BATCH_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000] as const;

const ATTEMPT_OUTCOMES = ['delivered', 'retry', 'failed', 'gone'] as const;
const DELIVERY_OUTCOMES = ['delivered', 'failed', 'gone', 'cancelled'] as const;
const TRIGGER_STATUSES = ['queued', 'ignored', 'undeliverable', 'dropped', 'failed'] as const;

/** The counts of `counter` by the value of its one label, each handle made on first use. */
function handlesByValue(counter: Counter, label: string): (value: string) => { inc(): void } {
  const handles = new Map<string, { inc(): void }>();
  return (value) => {
    let handle = handles.get(value);
    if (!handle) handles.set(value, (handle = counter.labelled({ [label]: value })));
    return handle;
  };
}

export class DeliveryMetrics {
  readonly triggers = new Counter(
    'resthooks_triggers_total',
    'Trigger calls (model, action, raw) by result: queued in the outbox, ignored (no event mapped), undeliverable, dropped, failed.',
    TRIGGER_STATUSES.map((status) => ({ status })),
  );
  readonly attempts = new Counter('resthooks_attempts_total', 'Delivery attempts made by this process, by outcome.', ATTEMPT_OUTCOMES.map((outcome) => ({ outcome })));
  readonly deliveries = new Counter(
    'resthooks_deliveries_total',
    'Deliveries ended by an attempt of this process, by outcome (gone: the receiver answered 410 and the subscription was deleted).',
    DELIVERY_OUTCOMES.map((outcome) => ({ outcome })),
  );
  readonly givenBack = new Counter('resthooks_claims_given_back_total', 'Claimed deliveries given back unattempted (rate limit, shutdown), due again later.');
  readonly latency: Histogram;
  readonly eventsFannedOut = new Counter('resthooks_events_fanned_out_total', 'Outbox events fanned out by this process.');
  readonly deliveriesCreated = new Counter('resthooks_fanout_deliveries_total', 'Deliveries created by the fan-out of this process.');
  readonly fanOutBatch = new Histogram('resthooks_fanout_batch_events', 'Events taken by one fan-out pass.', BATCH_BUCKETS);
  readonly recordBatch = new Histogram('resthooks_record_batch_attempts', 'Attempt results written to the store in one transaction.', BATCH_BUCKETS);

  // Counted on every save and every attempt: a handle per label value, so no label text is built each time.
  // Made in the constructor: a compiled build may initialize private fields before the public ones they read.
  readonly #triggerCount: (status: string) => { inc(): void };
  readonly #attemptCount: (outcome: string) => { inc(): void };
  readonly #deliveryCount: (outcome: string) => { inc(): void };

  constructor(latencyBuckets: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.latency = new Histogram('resthooks_attempt_duration_seconds', 'Time from sending an attempt to the end of its response (or its failure).', latencyBuckets);
    this.#triggerCount = handlesByValue(this.triggers, 'status');
    this.#attemptCount = handlesByValue(this.attempts, 'outcome');
    this.#deliveryCount = handlesByValue(this.deliveries, 'outcome');
  }

  triggered(status: string): void {
    this.#triggerCount(status).inc();
  }

  /** One attempt's result (or the end of a delivery without an attempt: its subscription gone or inactive). */
  attempted(record: AttemptRecord): void {
    const attempt = record.attempt;
    if (attempt) {
      this.#attemptCount(attempt.outcome).inc();
      this.latency.observe(attempt.duration_ms / 1000);
    }
    const status = record.delivery.status;
    if (status === 'pending') return;
    this.#deliveryCount(attempt?.outcome === 'gone' ? 'gone' : status).inc();
  }

  /** A pass took `taken` events, fanned out `fannedOut` of them (the rest wait for another lookup) and created `created` deliveries. */
  fannedOut(taken: number, fannedOut: number, created: number): void {
    this.eventsFannedOut.inc({}, fannedOut);
    this.deliveriesCreated.inc({}, created);
    this.fanOutBatch.observe(taken);
  }

  render(): string {
    return [this.triggers, this.attempts, this.deliveries, this.givenBack, this.latency, this.eventsFannedOut, this.deliveriesCreated, this.fanOutBatch, this.recordBatch]
      .map((metric) => metric.render())
      .join('');
  }
}
