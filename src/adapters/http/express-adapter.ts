/**
 * `resthooks/express`: mount the API in an Express app (4 or 5). A conversion only; the app does all routing.
 * @module
 */
import type { RequestHandler } from 'express';
import { fetchListener, type FetchApp } from './node-adapter.js';

export type { FetchApp };

/**
 * Express middleware serving `app` under the path it is mounted at (Express strips the mount path
 * from `req.url`, and the API's routes are relative). Works behind `express.json()` too.
 * @example
 * import express from 'express';
 * import { createApi } from 'resthooks/api';
 * import { toExpress } from 'resthooks/express';
 *
 * const server = express();
 * server.use('/api', toExpress(createApi(hooks, { authenticate })));
 */
export function toExpress(app: FetchApp): RequestHandler {
  const listener = fetchListener(app);
  return (req, res, next) => {
    // A body parser in front has consumed the stream; node-server reads `rawBody` instead. The parsed
    // value is re-encoded, so the API still applies its own checks (JSON, size, content type).
    if (req.readableEnded && req.body !== undefined) {
      const body: unknown = req.body;
      (req as { rawBody?: Buffer }).rawBody = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    }
    listener(req, res).catch(next);
  };
}
