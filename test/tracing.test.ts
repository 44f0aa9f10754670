/**
 * Tracing through the app's own OpenTelemetry tracer, recorded by the SDK's in-memory exporter: a
 * trigger span in the caller's trace, fan-out and attempt spans linked to it by the event id, the
 * attempt's `traceparent` as the receiver got it, and the opt-out.
 */
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createHooks, sqliteStore, type TracingOptions } from '../src/index.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { eventually, testHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
// The app's tracer, typed as @opentelemetry/api types it: it must fit `tracing.tracer` as it is.
const tracer = provider.getTracer('resthooks-test');

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const later = <T>(cleanup: () => Promise<unknown> | unknown, value: T): T => (cleanups.unshift(cleanup), value);
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  context.disable();
  await provider.shutdown();
});
beforeEach(() => exporter.reset());

async function receiver(): Promise<Receiver> {
  const r = await startReceiver((request) => (request.path === '/fail' ? 500 : 200));
  return later(() => r.close(), r);
}

const spansNamed = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === name);
const only = <T>(items: readonly T[]): T => {
  expect(items).toHaveLength(1);
  return items[0]!;
};

describe.each(ENGINES)('tracing (%s)', (engine) => {
  it('a trigger span in the caller trace; fan-out and attempt spans linked to it by event id; traceparent of the attempt span sent', async () => {
    const db = new TestDatabase(engine);
    await db.init();
    cleanups.push(() => db.close());
    const r = await receiver();
    const tracing: TracingOptions = { tracer };
    const { hooks, close } = await testHooks({ events: EVENTS, store: db.dialect(), tracing, delivery: { retry: { schedule: [0], jitter: 0 } } });
    later(close, hooks);
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${r.url}/ok?token=secret-in-query` });
    await hooks.subscriptions.create({ owner: 'bob', event: 'book.added', target: `${r.url}/fail` });

    const request = tracer.startSpan('POST /books');
    const result = await context.with(trace.setSpan(context.active(), request), () => hooks.model('Book', 'created', { id: 1, ownerId: 'alice' }));
    request.end();
    await hooks.model('Book', 'created', { id: 2, ownerId: 'bob' });
    expect(result.status).toBe('queued');
    const eventId = (result as { eventId: string }).eventId;
    const [received] = await r.waitFor(2);
    await eventually(() => expect(spansNamed('resthooks attempt')).toHaveLength(2), 20_000);

    // The trigger: a child of the request span, in its trace.
    const trigger = spansNamed('resthooks trigger').find((span) => span.attributes['resthooks.event_id'] === eventId)!;
    expect(trigger).toBeDefined();
    expect(trigger.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(trigger.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(trigger.kind).toBe(SpanKind.PRODUCER);
    expect(trigger.attributes).toMatchObject({ 'resthooks.trigger': 'model', 'resthooks.trigger.status': 'queued' });
    // The other trigger had no active span: a trace of its own.
    const otherTrigger = spansNamed('resthooks trigger').find((span) => span.attributes['resthooks.event_id'] !== eventId)!;
    expect(otherTrigger.parentSpanContext).toBeUndefined();

    // The fan-out: linked to the triggers of the events it took.
    const fanOuts = spansNamed('resthooks fan-out');
    const fanOut = only(fanOuts.filter((span) => (span.attributes['resthooks.event_ids'] as string[]).includes(eventId)));
    expect(fanOut.links.map((link) => link.context.spanId)).toContain(trigger.spanContext().spanId);
    expect(fanOut.parentSpanContext).toBeUndefined();

    // The attempt: a client span linked to the trigger, with the delivery's ids, the URL without its query, the status code.
    const attempt = only(spansNamed('resthooks attempt').filter((span) => span.attributes['resthooks.event_id'] === eventId));
    expect(attempt.kind).toBe(SpanKind.CLIENT);
    expect(attempt.links.map((link) => link.context.spanId)).toEqual([trigger.spanContext().spanId]);
    expect(attempt.attributes).toMatchObject({
      'resthooks.event': 'book.added',
      'resthooks.delivery_id': received!.headers['webhook-id'],
      'resthooks.attempt': 1,
      'resthooks.outcome': 'delivered',
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      'url.full': `${r.url}/ok`,
    });
    expect(attempt.status.code).toBe(SpanStatusCode.OK);
    // What the receiver got: the W3C traceparent of the attempt span (sampled).
    expect(received!.path).toBe('/ok?token=secret-in-query');
    expect(received!.headers.traceparent).toBe(`00-${attempt.spanContext().traceId}-${attempt.spanContext().spanId}-01`);

    // A failed attempt: an error span with the receiver's status.
    const failed = only(spansNamed('resthooks attempt').filter((span) => span.attributes['resthooks.event_id'] !== eventId));
    expect(failed.attributes).toMatchObject({ 'http.response.status_code': 500, 'resthooks.outcome': 'failed' });
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    const failedRequest = r.received.find((request) => request.path === '/fail')!;
    expect(failedRequest.headers.traceparent).toBe(`00-${failed.spanContext().traceId}-${failed.spanContext().spanId}-01`);
  }, 30_000);
});

describe('tracing options', () => {
  it('traceparent: false sends no trace header, and spans are still made', async () => {
    const r = await receiver();
    const { hooks, close } = await testHooks({ events: EVENTS, tracing: { tracer, traceparent: false } });
    later(close, hooks);
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${r.url}/ok` });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const [received] = await r.waitFor(1);
    expect(received!.headers.traceparent).toBeUndefined();
    expect(received!.headers['webhook-signature']).toMatch(/^v1,/);
    await eventually(() => expect(spansNamed('resthooks attempt')).toHaveLength(1), 20_000);
  });

  it('a tracer that is not one is refused at createHooks', () => {
    expect(() => createHooks({ events: EVENTS, store: sqliteStore({} as never), tracing: { tracer: {} as never } })).toThrow(/tracing.tracer/);
  });
});
