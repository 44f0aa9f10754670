/**
 * `GET /openapi.json`: an OpenAPI 3.1 document generated from `schemas.ts` with zod 4's
 * `z.toJSONSchema` (JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
 * @module
 */
import { z } from 'zod';
import type { EventDefinition } from '../config/events-map.js';
import { jsonSchemaOf } from '../config/standard-schema.js';
import * as s from './schemas.js';
import { EventAcceptedSchema, OutboxEventSchema } from './outbox-routes.js';

export interface OpenApiInfo {
  title?: string;
  version?: string;
  description?: string;
}

type JsonObject = { [key: string]: unknown };
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonObject, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'A subscription id.' };
const eventId = { name: 'eventId', in: 'path', required: true, schema: { type: 'string' }, description: 'An event id.' };
const paging = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 50 } },
  { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'The `X-Next-Cursor` of the previous page.' },
];
const common = { '401': error('Missing or wrong credentials.') };
const withBody = (name: string) => ({ required: true, content: { 'application/json': { schema: ref(name) } } });
const bodyErrors = { '400': error('Invalid input; nothing was stored.'), '413': error('Body over the size limit.'), '415': error('Body not JSON.') };

/** One registry per direction: request bodies as their input type, responses as their output type. */
function components(events: readonly EventDefinition[]): JsonObject {
  const input = z.registry<{ id: string }>();
  input.add(s.CreateSubscriptionBody, { id: 'CreateSubscription' }).add(s.UpdateSubscriptionBody, { id: 'UpdateSubscription' }).add(s.RecoverBody, { id: 'Recover' });
  const output = z.registry<{ id: string }>();
  output.add(OutboxEventSchema, { id: 'OutboxEvent' }).add(EventAcceptedSchema, { id: 'EventAccepted' });
  for (const [name, schema] of Object.entries({ Subscription: s.SubscriptionSchema, Secret: s.SecretSchema, Recovered: s.RecoveredSchema, Accepted: s.AcceptedSchema, Delivery: s.DeliverySchema, Attempt: s.AttemptSchema, Event: s.EventSchema, Sample: s.SampleSchema, Error: s.ErrorSchema })) {
    output.add(schema, { id: name });
  }
  const uri = (name: string) => `#/components/schemas/${name}`;
  const schemas: Record<string, JsonObject> = {
    ...(z.toJSONSchema(input, { io: 'input', uri }).schemas as Record<string, JsonObject>),
    ...(z.toJSONSchema(output, { io: 'output', uri }).schemas as Record<string, JsonObject>),
  };
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
    open(schema);
  }
  // The declared event names are this app's, so they are documented here rather than in the schemas.
  const names = events.map((e) => e.name);
  for (const body of ['CreateSubscription', 'UpdateSubscription']) {
    const properties = schemas[body]?.properties as Record<string, JsonObject> | undefined;
    if (properties?.event) properties.event.enum = names;
  }
  return schemas;
}

// Responses may gain fields in later versions, so clients must not be told to reject them.
function open(schema: unknown): void {
  if (schema === null || typeof schema !== 'object') return;
  if ((schema as JsonObject).additionalProperties === false) delete (schema as JsonObject).additionalProperties;
  for (const value of Object.values(schema)) open(value);
}

const HOOK = {
  type: 'object',
  required: ['id', 'event', 'target'],
  properties: { id: { type: 'string', description: 'The subscription id.' }, event: { type: 'string' }, target: { type: 'string', format: 'uri' } },
};

/** OpenAPI 3.1 `webhooks`: what each event's receivers are sent, its `data` described by the event's schema when there is one. */
function webhooks(events: readonly EventDefinition[]): JsonObject {
  return Object.fromEntries(
    events.map((event) => {
      const routed = event.model === null ? 'a raw event' : `${event.model}.${event.action}${event.allOwners ? ', to every owner\'s subscribers' : ''}`;
      const envelope = { type: 'object', required: ['hook', 'data'], properties: { hook: HOOK, data: jsonSchemaOf(event.schema) ?? {} } };
      return [
        event.name,
        {
          post: {
            summary: `${event.name} (${routed})`,
            description: 'Signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).',
            requestBody: { required: true, content: { 'application/json': { schema: envelope } } },
            responses: { '2XX': { description: 'Delivered.' }, '410': { description: 'Gone: the subscription is deleted.' } },
          },
        },
      ];
    }),
  );
}

export function openApiDocument(events: readonly EventDefinition[], info: OpenApiInfo = {}, basePath = ''): JsonObject {
  const list = (name: string, description: string) => json({ type: 'array', items: ref(name) }, description);
  return {
    openapi: '3.1.0',
    info: { title: info.title ?? 'Webhook subscriptions (REST Hooks)', version: info.version ?? '1.0.0', ...(info.description ? { description: info.description } : {}) },
    ...(basePath ? { servers: [{ url: basePath }] } : {}),
    security: [{ bearer: [] }],
    paths: {
      '/hooks': {
        post: { summary: 'Subscribe a URL to an event', requestBody: withBody('CreateSubscription'), responses: { '201': json(ref('Subscription'), 'Created.'), ...bodyErrors, ...common } },
        get: { summary: "The caller's subscriptions, newest first", parameters: paging, responses: { '200': list('Subscription', 'A page; `X-Next-Cursor` and `Link: rel="next"` announce the next one.'), '400': error('Bad `limit`.'), ...common } },
      },
      '/hooks/{id}': {
        parameters: [id],
        get: { summary: 'One subscription', responses: { '200': json(ref('Subscription'), 'Found.'), '404': error('No such subscription for the caller.'), ...common } },
        patch: { summary: 'Change target, event or active', requestBody: withBody('UpdateSubscription'), responses: { '200': json(ref('Subscription'), 'Updated.'), ...bodyErrors, '404': error('Not found.'), ...common } },
        delete: { summary: 'Unsubscribe', responses: { '204': { description: 'Deleted.' }, '404': error('Not found.'), ...common } },
      },
      '/hooks/{id}/rotate-secret': {
        parameters: [id],
        post: { summary: 'New signing secret; the old one keeps signing alongside for the grace period', responses: { '200': json(ref('Secret'), 'The new secret.'), '404': error('Not found.'), ...common } },
      },
      '/hooks/{id}/test': {
        parameters: [id],
        post: { summary: 'Send a `hook.test` event to this subscription only', responses: { '202': json(ref('Accepted'), 'Queued.'), '404': error('Not found.'), ...common } },
      },
      '/hooks/{id}/deliveries': {
        parameters: [id],
        get: { summary: 'Deliveries, newest first, each with its attempts', parameters: paging, responses: { '200': list('Delivery', 'A page.'), '404': error('Not found.'), ...common } },
      },
      '/hooks/{id}/deliveries/{deliveryId}/retry': {
        parameters: [id, { name: 'deliveryId', in: 'path', required: true, schema: { type: 'string' } }],
        post: { summary: 'Attempt a delivery again now, with the same webhook-id', responses: { '202': json(ref('Accepted'), 'Queued.'), '404': error('Not found.'), '409': error('An attempt of this delivery is in flight; retry once it has an outcome.'), ...common } },
      },
      '/hooks/{id}/recover': {
        parameters: [id],
        post: { summary: 'Re-queue failed and cancelled deliveries created since a time', requestBody: withBody('Recover'), responses: { '202': json(ref('Recovered'), 'Re-queued.'), ...bodyErrors, '404': error('Not found.'), ...common } },
      },
      '/events': { get: { summary: 'Subscribable events', responses: { '200': list('Event', 'The declared events.'), ...common } } },
      '/events/{name}/sample': {
        get: {
          summary: 'Sample payloads (Zapier performList): recent real data, newest first, or one example',
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 25, default: 3 } }],
          responses: { '200': list('Sample', 'Shaped like the `data` a subscriber receives, each with an `id`.'), '404': error('No such event.'), ...common },
        },
      },
      '/outbox': {
        get: {
          summary: "The caller's events not fanned out, newest first: given up on (undeliverable) or waiting for another try (pending)",
          parameters: [{ name: 'status', in: 'query', schema: { type: 'string', enum: ['undeliverable', 'pending'], default: 'undeliverable' } }, ...paging],
          responses: { '200': list('OutboxEvent', 'A page.'), '400': error('Bad `status` or `limit`.'), ...common },
        },
      },
      '/outbox/{eventId}': {
        parameters: [eventId],
        get: { summary: 'One event and its fan-out state', responses: { '200': json(ref('OutboxEvent'), 'Found.'), '404': error('No such event for the caller.'), ...common } },
      },
      '/outbox/{eventId}/retry': {
        parameters: [eventId],
        post: {
          summary: 'Fan an undeliverable (or pending) event out again now, with a fresh count of tries',
          responses: { '202': json(ref('EventAccepted'), 'Queued for fan-out.'), '404': error('No such event for the caller.'), '409': error('Already fanned out, or no owner.'), ...common },
        },
      },
    },
    webhooks: webhooks(events),
    components: { schemas: components(events), securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  };
}
