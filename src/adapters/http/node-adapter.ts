/**
 * `resthooks/node`: serve the API from `node:http` (or anything taking a `(req, res)` listener:
 * `node:https`, connect, Next.js pages API routes). A conversion only; the app does all routing.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';

/** Anything with a web-standard `fetch`, such as the app `createApi()` returns. */
export interface FetchApp {
  fetch(request: Request): Response | Promise<Response>;
}

/**
 * A `node:http` request listener for `app`. Routes stay relative to the server root; to serve under
 * a prefix, give `createApi` a `basePath`.
 * @example
 * import { createServer } from 'node:http';
 * import { createApi } from 'resthooks/api';
 * import { toNodeHandler } from 'resthooks/node';
 *
 * createServer(toNodeHandler(createApi(hooks, { authenticate }))).listen(3000);
 */
export function toNodeHandler(app: FetchApp): (req: IncomingMessage, res: ServerResponse) => void {
  const listener = fetchListener(app);
  return (req, res) => {
    void listener(req, res);
  };
}

/** node-server's `(req, res)` listener for `app`; the Express adapter builds on it too. */
export function fetchListener(app: FetchApp): ReturnType<typeof getRequestListener> {
  // A library must not swap the process's global Request/Response, which node-server does by default.
  return getRequestListener((request) => app.fetch(request), { overrideGlobalObjects: false });
}
