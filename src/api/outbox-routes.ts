/**
 * `/outbox`: the caller's events that were not fanned out (their subscription lookup kept failing,
 * or they wait for another try), and fanning one out again. Events addressed to every owner are the
 * caller's too, as in the samples; another owner's are not found.
 * @module
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../errors.js';
import { OUTBOX_STATUSES, type OutboxEvent, type OutboxStatus } from '../store/outbox.js';
import type { ApiEnv, RouteDeps } from './api-env.js';
import { announceNextPage, limitParam, nextCursorOf } from './paging.js';

const isoDate = z.string().describe('ISO 8601 time (UTC).');

export const OutboxEventSchema = z.object({
  id: z.string(),
  event: z.string(),
  model: z.string().nullable(),
  action: z.string().nullable(),
  owner: z.string().nullable().describe('null for an event that reaches every owner.'),
  allOwners: z.boolean(),
  status: z.enum(['pending', 'done', 'undeliverable']),
  error: z.string().nullable().describe('Why it was not fanned out: the last failed subscription lookup.'),
  fanOutAttempts: z.number().int().describe('Failed subscription lookups so far.'),
  nextFanOutAt: isoDate.nullable().describe('When a pending event is tried next.'),
  retryable: z.boolean().describe('Whether `POST /outbox/{eventId}/retry` applies.'),
  data: z.unknown().describe('The event data, as subscribers receive it.'),
  createdAt: isoDate,
});

export const EventAcceptedSchema = z.object({ eventId: z.string() });

export type OutboxEventJson = z.output<typeof OutboxEventSchema>;

export function outboxEventJson(e: OutboxEvent): OutboxEventJson {
  return {
    id: e.id,
    event: e.name,
    model: e.model,
    action: e.action,
    owner: e.owner,
    allOwners: e.allOwners,
    status: e.status,
    error: e.error,
    fanOutAttempts: e.fanOutAttempts,
    nextFanOutAt: e.nextFanOutAt?.toISOString() ?? null,
    retryable: e.retryable,
    data: e.data,
    createdAt: e.createdAt.toISOString(),
  };
}

export function outboxRoutes({ hooks }: RouteDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get('/', async (c) => {
    const status = c.req.query('status') ?? 'undeliverable';
    if (!OUTBOX_STATUSES.includes(status as OutboxStatus)) throw new ValidationError('invalid_field', '`status` must be "undeliverable" (the default) or "pending".', 'status');
    const limit = limitParam(c, 50);
    const events = await hooks.outbox.list({ status: status as OutboxStatus, owner: c.var.owner, limit, cursor: c.req.query('cursor') });
    announceNextPage(c, nextCursorOf(events, limit), limit);
    return c.json(events.map(outboxEventJson));
  });

  app.get('/:eventId', async (c) => {
    const eventId = c.req.param('eventId');
    const event = await hooks.outbox.get(eventId, { owner: c.var.owner });
    if (!event) throw new NotFoundError(`No event ${eventId}.`);
    return c.json(outboxEventJson(event));
  });

  app.post('/:eventId/retry', async (c) => {
    const eventId = c.req.param('eventId');
    await hooks.outbox.retry(eventId, { owner: c.var.owner });
    return c.json({ eventId }, 202);
  });

  return app;
}
