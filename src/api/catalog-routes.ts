/**
 * `/events`: the subscribable events, and sample payloads for each (Zapier's `performList`).
 * @module
 */
import { Hono } from 'hono';
import { NotFoundError } from '../errors.js';
import type { ApiEnv, RouteDeps } from './api-env.js';
import { limitParam } from './paging.js';
import { exampleSample, sampleOf } from './samples.js';

export function catalogRoutes({ hooks, examples }: RouteDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get('/', (c) => c.json(hooks.events.map(({ name, model, action, allOwners }) => ({ name, model, action, allOwners }))));

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
