/**
 * Tracing through the app's OpenTelemetry tracer, which the app passes in (`tracing: { tracer }`):
 * the core never imports `@opentelemetry/api`, and without a tracer nothing here runs.
 *
 * Spans: one per trigger (a child of the caller's active span, since the tracer starts spans in the
 * active context), one per fan-out pass and one per attempt. Fan-out and attempt run later, often in
 * another process, so they are not children of the trigger: they carry `resthooks.event_id`, and in
 * the process that fired the event they link to the trigger's span (OpenTelemetry's messaging
 * convention for work handed over through a queue).
 * @module
 */
import { publicTarget } from '../delivery/attempt-log.js';

/** `SpanContext` of `@opentelemetry/api`, as far as resthooks reads it. */
export interface TraceSpanContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
}

export type TraceAttributeValue = string | number | boolean | string[];
export type TraceAttributes = Record<string, TraceAttributeValue>;

/** `Span` of `@opentelemetry/api`, as far as resthooks uses it. */
export interface TraceSpan {
  spanContext(): TraceSpanContext;
  setAttribute(key: string, value: TraceAttributeValue): unknown;
  /** `code`: 0 unset, 1 ok, 2 error (`SpanStatusCode`). */
  setStatus(status: { code: number; message?: string }): unknown;
  end(endTime?: Date): void;
}

/** `SpanOptions` of `@opentelemetry/api`, as far as resthooks sets them. */
export interface TraceSpanOptions {
  /** `SpanKind`: 0 internal, 2 client, 3 producer. */
  kind?: number;
  attributes?: TraceAttributes;
  links?: Array<{ context: TraceSpanContext; attributes?: TraceAttributes }>;
  startTime?: Date;
  /** A new trace, whatever span is active. */
  root?: boolean;
}

/** What `trace.getTracer('resthooks')` returns, as far as resthooks uses it. */
export interface Tracer {
  startSpan(name: string, options?: TraceSpanOptions): TraceSpan;
}

export interface TracingOptions {
  /**
   * The tracer spans are made with, e.g. `trace.getTracer('resthooks')` from `@opentelemetry/api`.
   * Its context manager decides what "the caller's active span" is.
   */
  readonly tracer: Tracer;
  /** Send the attempt span's W3C `traceparent` header to receivers. Default true. */
  readonly traceparent?: boolean;
}

const SPAN_KIND = { internal: 0, client: 2, producer: 3 } as const;
const STATUS = { ok: 1, error: 2 } as const;
/** Trigger span contexts kept for linking later spans of the same events; the oldest go first. */
const LINKED_EVENTS = 10_000;
/** Links on one fan-out span at most (a pass may take 500 events). */
const MAX_LINKS = 128;
const INVALID_TRACE_ID = /^0+$/;

/** `traceparent` (W3C Trace Context §3.2, version 00) of a span, or undefined for a non-recording one. */
function traceparentOf(context: TraceSpanContext): string | undefined {
  if (INVALID_TRACE_ID.test(context.traceId) || INVALID_TRACE_ID.test(context.spanId)) return undefined;
  return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

export class Tracing {
  readonly #tracer: Tracer;
  readonly #traceparent: boolean;
  readonly #triggerSpans = new Map<string, TraceSpanContext>();

  constructor(options: TracingOptions) {
    this.#tracer = options.tracer;
    this.#traceparent = options.traceparent !== false;
  }

  /** A span around one trigger; `describe` reads the event id and outcome from its result. */
  startTrigger(kind: string, event: string | undefined): TraceSpan {
    return this.#tracer.startSpan(`resthooks trigger`, {
      kind: SPAN_KIND.producer,
      attributes: { 'resthooks.trigger': kind, ...(event !== undefined ? { 'resthooks.event': event } : {}) },
    });
  }

  endTrigger(span: TraceSpan, result: { status: string; eventId?: string } | undefined, error?: unknown): void {
    if (result) {
      span.setAttribute('resthooks.trigger.status', result.status);
      if (result.eventId !== undefined) {
        span.setAttribute('resthooks.event_id', result.eventId);
        this.#remember(result.eventId, span.spanContext());
      }
      if (result.status === 'failed') span.setStatus({ code: STATUS.error, message: 'trigger failed' });
    } else span.setStatus({ code: STATUS.error, message: error instanceof Error ? error.message : String(error) });
    span.end();
  }

  /** A span for a fan-out pass that took events, made after the fact so that empty passes cost nothing. */
  fanOut(startedAt: number, eventIds: readonly string[], deliveries: number): void {
    const links = eventIds.flatMap((id) => {
      const context = this.#triggerSpans.get(id);
      return context ? [{ context, attributes: { 'resthooks.event_id': id } }] : [];
    });
    const span = this.#tracer.startSpan('resthooks fan-out', {
      kind: SPAN_KIND.internal,
      root: true,
      startTime: new Date(startedAt),
      links: links.slice(0, MAX_LINKS),
      attributes: { 'resthooks.event_ids': [...eventIds], 'resthooks.fanout.events': eventIds.length, 'resthooks.fanout.deliveries': deliveries },
    });
    span.end();
  }

  /** A span for one attempt, and the headers that carry it to the receiver. */
  startAttempt(attempt: { deliveryId: string; eventId: string; event: string; subscriptionId: string; number: number; target: string | undefined }): { span: TraceSpan; headers: Record<string, string> } {
    const trigger = this.#triggerSpans.get(attempt.eventId);
    const span = this.#tracer.startSpan('resthooks attempt', {
      kind: SPAN_KIND.client,
      root: true,
      ...(trigger ? { links: [{ context: trigger, attributes: { 'resthooks.event_id': attempt.eventId } }] } : {}),
      attributes: {
        'resthooks.event_id': attempt.eventId,
        'resthooks.event': attempt.event,
        'resthooks.delivery_id': attempt.deliveryId,
        'resthooks.subscription_id': attempt.subscriptionId,
        'resthooks.attempt': attempt.number,
        'http.request.method': 'POST',
        ...(attempt.target !== undefined ? { 'url.full': publicTarget(attempt.target, '') } : {}),
      },
    });
    const traceparent = this.#traceparent ? traceparentOf(span.spanContext()) : undefined;
    return { span, headers: traceparent ? { traceparent } : {} };
  }

  endAttempt(span: TraceSpan, result: { outcome: string; statusCode: number | null; error: string | null } | undefined): void {
    if (result) {
      span.setAttribute('resthooks.outcome', result.outcome);
      if (result.statusCode !== null) span.setAttribute('http.response.status_code', result.statusCode);
      if (result.error !== null) span.setAttribute('error.type', result.error);
      span.setStatus(result.outcome === 'delivered' ? { code: STATUS.ok } : { code: STATUS.error, message: result.error ?? `HTTP ${result.statusCode}` });
    }
    span.end();
  }

  #remember(eventId: string, context: TraceSpanContext): void {
    if (this.#triggerSpans.size >= LINKED_EVENTS) this.#triggerSpans.delete(this.#triggerSpans.keys().next().value!);
    this.#triggerSpans.set(eventId, context);
  }
}
