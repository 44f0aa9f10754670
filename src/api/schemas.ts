/**
 * The API's shapes as zod 4 schemas: request bodies are checked with them, and `openapi.ts` turns
 * all of them into the OpenAPI document, so the docs cannot drift from the checks.
 * Only types are checked here; the core owns the semantic checks (declared event, http(s) URL,
 * length, refused networks) and their messages.
 * @module
 */
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { MAX_PER_SECOND_LIMIT, MAX_TARGET_LENGTH } from '../subscriptions.js';

const string = (field: string, what: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? `\`${field}\` is required: ${what}.` : `\`${field}\` must be a string: ${what}.`) });
const eventField = string('event', 'one of the declared event names (GET /events)');
const targetField = (field: string) => string(field, 'an absolute http(s) URL').meta({ format: 'uri', maxLength: MAX_TARGET_LENGTH });
const activeField = z.boolean({ error: '`active` must be true or false.' });
const maxPerSecondField = z
  .number({ error: `\`maxPerSecond\` must be a number above 0 and at most ${MAX_PER_SECOND_LIMIT}, or null for the default.` })
  .meta({ exclusiveMinimum: 0, maximum: MAX_PER_SECOND_LIMIT })
  .nullable();
const maxPerSecondAbout = 'Deliveries per second this subscription receives at most (fractions allowed); null or absent: the server\'s default.';

// Unknown fields are ignored (z.object strips them), as the contract asks.
export const CreateSubscriptionBody = z
  .object({
    event: eventField.describe('A declared event name.'),
    target: targetField('target').optional().describe('The URL deliveries are POSTed to.'),
    target_url: targetField('target_url').optional().describe('Alias of `target` (Zapier sends `target_url`).'),
    active: activeField.optional().describe('Default true.'),
    maxPerSecond: maxPerSecondField.optional().describe(maxPerSecondAbout),
  })
  .meta({ anyOf: [{ required: ['target'] }, { required: ['target_url'] }] });

export const UpdateSubscriptionBody = z.object({
  event: eventField.optional(),
  target: targetField('target').optional(),
  target_url: targetField('target_url').optional().describe('Alias of `target`.'),
  active: activeField.optional().describe('false pauses deliveries; true also clears an automatic disable.'),
  maxPerSecond: maxPerSecondField.optional().describe(maxPerSecondAbout),
});

const isoDate = z.string().meta({ format: 'date-time' });

export const SubscriptionSchema = z.object({
  id: z.string(),
  event: z.string(),
  target: z.string(),
  active: z.boolean(),
  secret: z.string().describe('`whsec_…`: verify deliveries with it (Standard Webhooks).'),
  createdAt: isoDate,
  updatedAt: isoDate,
  disabledReason: z.string().optional().describe('Present when resthooks disabled the subscription after continuous failures.'),
  maxPerSecond: z.number().optional().describe('Its own rate limit (deliveries per second); absent: the server\'s default applies.'),
});

export const RecoverBody = z.object({
  since: z.iso
    .datetime({ offset: true, error: '`since` is required: an ISO 8601 date-time, e.g. "2026-11-20T00:00:00Z".' })
    .describe('Re-queue failed and cancelled deliveries created since this time.'),
});

export const SecretSchema = z.object({ secret: z.string() });
export const RecoveredSchema = z.object({ requeued: z.number().int().describe('How many deliveries were re-queued.') });
export const AcceptedSchema = z.object({ deliveryId: z.string().describe('Also the `webhook-id` the receiver sees.') });

export const AttemptSchema = z.object({
  id: z.string(),
  number: z.number().int(),
  startedAt: isoDate,
  durationMs: z.number(),
  statusCode: z.number().int().nullable(),
  responseExcerpt: z.string().nullable(),
  error: z.string().nullable(),
  outcome: z.enum(['delivered', 'retry', 'failed', 'gone', 'cancelled']),
});

export const DeliverySchema = z.object({
  id: z.string().describe('Sent as `webhook-id` on every attempt.'),
  eventId: z.string(),
  event: z.string(),
  subscriptionId: z.string(),
  status: z.enum(['pending', 'in_flight', 'delivered', 'failed', 'cancelled']),
  nextAttemptAt: isoDate.nullable(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: isoDate,
  updatedAt: isoDate,
  attempts: z.array(AttemptSchema).describe('Oldest first.'),
});

export const EventSchema = z.object({
  name: z.string(),
  model: z.string().nullable(),
  action: z.string().nullable(),
  allOwners: z.boolean(),
  schema: z.record(z.string(), z.unknown()).optional().describe("The JSON Schema of the event's payload `data`, when the app declared one."),
});

export const SampleSchema = z.looseObject({ id: z.union([z.string(), z.number()]) });

export const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export type SubscriptionJson = z.output<typeof SubscriptionSchema>;
export type DeliveryJson = z.output<typeof DeliverySchema>;
export type AttemptJson = z.output<typeof AttemptSchema>;

/** Checks a parsed body against a schema; the first problem becomes a 400 `invalid_field`. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join('.');
  throw new ValidationError('invalid_field', issue.message, field || undefined);
}
