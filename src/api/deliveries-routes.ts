/**
 * `/hooks/:id/deliveries`: the delivery log of one of the caller's subscriptions, and manual retry.
 * @module
 */
import { Hono } from 'hono';
import type { ApiEnv, RouteDeps } from './api-env.js';
import { readJsonObject } from './body.js';
import { announceNextPage, limitParam, nextCursorOf } from './paging.js';
import { deliveryJson } from './responses.js';
import { parseBody, RecoverBody } from './schemas.js';

export function deliveriesRoutes({ hooks, maxBodyBytes }: RouteDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get('/:id/deliveries', async (c) => {
    const limit = limitParam(c, 50);
    const deliveries = await hooks.deliveries.list(c.req.param('id'), { owner: c.var.owner, limit, cursor: c.req.query('cursor') });
    announceNextPage(c, nextCursorOf(deliveries, limit), limit);
    return c.json(deliveries.map(deliveryJson));
  });

  app.post('/:id/deliveries/:deliveryId/retry', async (c) => {
    const { id, deliveryId } = c.req.param();
    // The delivery must belong to the subscription in the path, and that to the caller.
    await hooks.deliveries.retry(deliveryId, { owner: c.var.owner, subscriptionId: id });
    return c.json({ deliveryId }, 202);
  });

  // After fixing a receiver that was down: its failed deliveries since a time are attempted again.
  app.post('/:id/recover', async (c) => {
    const { since } = parseBody(RecoverBody, await readJsonObject(c.req.raw, maxBodyBytes));
    const requeued = await hooks.deliveries.recover(c.req.param('id'), { since: new Date(since), owner: c.var.owner });
    return c.json({ requeued }, 202);
  });

  return app;
}
