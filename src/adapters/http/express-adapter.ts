/**
 * `resthooks/express`: mount the API in an Express 5 app. A conversion only; the app does all routing.
 * @module
 */
import type { RequestHandler } from 'express';
import { getRequestListener } from '@hono/node-server';

/** Anything with a web-standard `fetch`, such as the app `createApi()` returns. */
export interface FetchApp {
  fetch(request: Request): Response | Promise<Response>;
}

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
  // A library must not swap the process's global Request/Response, which node-server does by default.
  const listener = getRequestListener((request) => app.fetch(request), { overrideGlobalObjects: false });
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
