/**
 * `/events`: the subscribable events, and sample payloads for each (Zapier's `performList`).
 * @module
 */
import { Hono } from 'hono';
import { jsonSchemaOf } from '../config/standard-schema.js';
import { NotFoundError } from '../errors.js';
import type { ApiEnv, RouteDeps } from './api-env.js';
import { limitParam } from './paging.js';
import { exampleSample, sampleOf } from './samples.js';

export function catalogRoutes({ hooks, examples }: RouteDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  // Each event's payload schema as JSON Schema, when it has one that can describe itself.
  let catalog: object[] | undefined;
  app.get('/', (c) =>
    c.json(
      (catalog ??= hooks.events.map(({ name, model, action, allOwners, schema }) => {
        const described = jsonSchemaOf(schema);
        return described ? { name, model, action, allOwners, schema: described } : { name, model, action, allOwners };
      })),
    ),
  );

  app.get('/:name/sample', async (c) => {
    const name = c.req.param('name');
    const definition = hooks.events.find((e) => e.name === name);
    if (!definition) throw new NotFoundError(`No event "${name}"; GET /events lists the subscribable ones.`);
    const limit = limitParam(c, 3, 25);
    const recent = await hooks.recentEvents(name, { owner: c.var.owner, limit });
    const samples = recent.length > 0 ? recent.map(sampleOf) : [exampleSample(definition, Object.hasOwn(examples, name) ? examples[name] : undefined)];
    return c.json(samples);
  });

  return app;
}
