/**
 * `/hooks`: create, list, read, change and delete the caller's subscriptions; rotate a secret; send a
 * test event. Every call is scoped to the authenticated owner, so another owner's id is a 404.
 * @module
 */
import { Hono } from 'hono';
import { NotFoundError, ValidationError } from '../errors.js';
import type { ApiEnv, RouteDeps } from './api-env.js';
import { readJsonObject } from './body.js';
import { announceNextPage, limitParam } from './paging.js';
import { subscriptionJson } from './responses.js';
import { CreateSubscriptionBody, parseBody, UpdateSubscriptionBody } from './schemas.js';

export function subscriptionsRoutes({ hooks, maxBodyBytes }: RouteDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const subscriptions = hooks.subscriptions;

  app.post('/', async (c) => {
    const body = parseBody(CreateSubscriptionBody, await readJsonObject(c.req.raw, maxBodyBytes));
    const target = body.target ?? body.target_url;
    if (target === undefined) throw new ValidationError('invalid_field', '`target` is required: an absolute http(s) URL.', 'target');
    const created = await subscriptions.create({ owner: c.var.owner, event: body.event, target, active: body.active, maxPerSecond: body.maxPerSecond });
    return c.json(subscriptionJson(created), 201);
  });

  app.get('/', async (c) => {
    const limit = limitParam(c, 50);
    const page = await subscriptions.list({ owner: c.var.owner, limit, cursor: c.req.query('cursor') });
    announceNextPage(c, page.nextCursor, limit);
    return c.json(page.items.map(subscriptionJson));
  });

  app.get('/:id', async (c) => {
    const found = await subscriptions.get(c.req.param('id'), { owner: c.var.owner });
    if (!found) throw new NotFoundError(`No subscription ${c.req.param('id')}.`);
    return c.json(subscriptionJson(found));
  });

  app.patch('/:id', async (c) => {
    const body = parseBody(UpdateSubscriptionBody, await readJsonObject(c.req.raw, maxBodyBytes));
    const patch = { event: body.event, target: body.target ?? body.target_url, active: body.active, maxPerSecond: body.maxPerSecond };
    return c.json(subscriptionJson(await subscriptions.update(c.req.param('id'), patch, { owner: c.var.owner })));
  });

  app.delete('/:id', async (c) => {
    if (!(await subscriptions.delete(c.req.param('id'), { owner: c.var.owner }))) throw new NotFoundError(`No subscription ${c.req.param('id')}.`);
    return c.body(null, 204);
  });

  app.post('/:id/rotate-secret', async (c) => {
    const rotated = await subscriptions.rotateSecret(c.req.param('id'), { owner: c.var.owner });
    return c.json({ secret: rotated.secret });
  });

  app.post('/:id/test', async (c) => {
    const { deliveryId } = await hooks.sendTest(c.req.param('id'), { owner: c.var.owner });
    return c.json({ deliveryId }, 202);
  });

  return app;
}
