/**
 * The engine's instruments in one place: each stage (trigger, fan-out, attempt, record) reports to
 * it, and it feeds the in-process metrics and, when the app gave a tracer, the spans.
 * @module
 */
import type { FinishedAttempt } from '../delivery/attempt-runner.js';
import type { FanOutResult } from '../delivery/fanout.js';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import type { TriggerResult } from '../triggers/triggers.js';
import { DeliveryMetrics } from './delivery-metrics.js';
import { Tracing, type TracingOptions } from './tracing.js';

export class Telemetry {
  readonly metrics: DeliveryMetrics;
  readonly #tracing: Tracing | undefined;

  constructor(options: { tracing?: TracingOptions | undefined; latencyBuckets?: readonly number[] | undefined }) {
    this.metrics = new DeliveryMetrics(options.latencyBuckets);
    this.#tracing = options.tracing ? new Tracing(options.tracing) : undefined;
  }

  /** Runs a trigger (async, or sync for `modelSync`), counting and tracing it. */
  trigger<R extends TriggerResult | Promise<TriggerResult>>(kind: string, event: string | undefined, run: () => R): R {
    const tracing = this.#tracing;
    if (!tracing) {
      // Without a tracer, only the count: no closures on every save.
      const result = run();
      if (!(result instanceof Promise)) return this.#count(result) as R;
      return result.then(this.#count) as R;
    }
    const span = tracing.startTrigger(kind, event);
    const done = (result: TriggerResult) => {
      this.#count(result);
      tracing.endTrigger(span, result);
      return result;
    };
    let result: R;
    try {
      result = run();
    } catch (error) {
      tracing.endTrigger(span, undefined, error);
      throw error;
    }
    if (!(result instanceof Promise)) return done(result) as R;
    return result.then(done, (error: unknown) => {
      tracing.endTrigger(span, undefined, error);
      throw error;
    }) as R;
  }

  readonly #count = (result: TriggerResult): TriggerResult => {
    this.metrics.triggered(result.status);
    return result;
  };

  /**
   * Whether attempts are traced. When not, an attempt needs no span and no headers, and the caller only
   * counts its result with `attempted`: no closure and no promise of `attempt` per delivery.
   */
  get tracesAttempts(): boolean {
    return this.#tracing !== undefined;
  }

  /** Counts an attempt's result; returns it. */
  attempted(finished: FinishedAttempt): FinishedAttempt {
    if (finished.record) this.metrics.attempted(finished.record);
    else if (finished.release) this.metrics.givenBack.inc();
    return finished;
  }

  /** Runs one attempt with the headers that carry its span (none without tracing), and counts its result. */
  async attempt(claim: ClaimedDelivery, run: (headers: Record<string, string>) => Promise<FinishedAttempt>): Promise<FinishedAttempt> {
    const tracing = this.#tracing;
    const traced = tracing?.startAttempt({
      deliveryId: claim.id,
      eventId: claim.eventId,
      event: claim.event.name,
      subscriptionId: claim.subscriptionId,
      number: claim.attempt,
      target: claim.subscription?.target,
    });
    let finished: FinishedAttempt | undefined;
    try {
      finished = await run(traced?.headers ?? {});
      return finished;
    } finally {
      if (finished) this.attempted(finished);
      const record = finished?.record;
      if (traced) {
        tracing!.endAttempt(
          traced.span,
          record
            ? { outcome: record.attempt?.outcome ?? record.delivery.status, statusCode: record.attempt?.status_code ?? null, error: record.attempt?.error ?? record.delivery.last_error }
            : undefined,
        );
      }
    }
  }

  /** Runs one fan-out pass, counting what it took and tracing it when it took anything. */
  async fanOut(run: () => Promise<FanOutResult>): Promise<FanOutResult> {
    const startedAt = Date.now();
    const result = await run();
    if (result.taken > 0) {
      this.metrics.fannedOut(result.taken, result.eventIds.length, result.created);
      this.#tracing?.fanOut(startedAt, result.eventIds, result.created);
    }
    return result;
  }

  recordedBatch(size: number): void {
    if (size > 0) this.metrics.recordBatch.observe(size);
  }
}
