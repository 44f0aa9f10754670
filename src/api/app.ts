/**
 * `createApi()`: the subscriptions REST API (docs/api.md) as one Hono app, built on web-standard
 * `fetch(Request) → Response`, with routes relative to where it is mounted.
 * @module
 */
import { Hono, type Context } from 'hono';
import type { Hooks } from '../hooks.js';
import { stderrLogger, type Logger } from '../logger.js';
import type { JsonValue } from '../store/records.js';
import type { ApiEnv, RouteDeps } from './api-env.js';
import { DEFAULT_MAX_BODY_BYTES } from './body.js';
import { catalogRoutes } from './catalog-routes.js';
import { deliveriesRoutes } from './deliveries-routes.js';
import { ApiError, errorResponse } from './errors.js';
import { openApiDocument, type OpenApiInfo } from './openapi.js';
import { outboxRoutes } from './outbox-routes.js';
import { subscriptionsRoutes } from './subscriptions-routes.js';
import { checkUrlText } from './url-text.js';

export interface ApiOptions {
  /** Who is calling: the owner whose subscriptions the request may see, or null (→ 401). */
  authenticate(request: Request): Promise<string | null> | string | null;
  /** Largest accepted request body, in bytes (→ 413 above). Default 64 KiB. */
  maxBodyBytes?: number;
  /** The path the app is served under when it sees full URLs (Next.js, Bun, Deno), e.g. `/api`. */
  basePath?: string;
  /** Per event name, the `data` shown by `GET /events/:name/sample` before any real event exists. */
  examples?: Readonly<Record<string, JsonValue>>;
  /** `info` of the OpenAPI document. */
  openapi?: OpenApiInfo;
  /** Where unexpected errors (answered as 500) are logged; pino-compatible. Default: `console.error`. */
  logger?: Pick<Logger, 'error'>;
}

/** The Hono app `createApi` returns: call `.fetch(request)`, or mount it with `app.route('/api', api)`. */
export type ResthooksApi = Hono<ApiEnv>;


/**
 * The subscriptions REST API over `hooks`: `/hooks` (CRUD, rotate-secret, test, deliveries, retry),
 * `/events` (catalog and samples), `/outbox` (events not fanned out, and fanning one out again) and
 * `/openapi.json`. Every route is authenticated and scoped to the
 * owner `authenticate` returns. Errors are always `{"error":{"code","message"}}`.
 * @example
 * import { createApi } from 'resthooks/api';
 *
 * const api = createApi(hooks, {
 *   authenticate: async (request) => users.ownerOfApiKey(request.headers.get('authorization')?.replace(/^Bearer /, '')),
 * });
 * app.route('/api', api);                        // in a Hono app
 * export default { fetch: api.fetch };           // or on its own (Bun, Deno, workers)
 */
export function createApi(hooks: Hooks, options: ApiOptions): ResthooksApi {
  if (typeof options?.authenticate !== 'function') throw new TypeError('createApi(hooks, { authenticate }): `authenticate(request)` must return the caller\'s owner id, or null.');
  const logger = options.logger ?? stderrLogger;
  const deps: RouteDeps = { hooks, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, examples: options.examples ?? {} };
  let openapi: object | undefined;

  const app = new Hono<ApiEnv>();
  const api = options.basePath ? app.basePath(options.basePath) : app;
  const noRoute = (c: Context) => errorResponse(new ApiError(404, 'not_found', `No route ${c.req.method} ${c.req.path}.`), logger);
  api.onError((error) => errorResponse(error, logger));
  api.notFound(noRoute);
  api.use(async (c, next) => {
    const owner = await options.authenticate(c.req.raw);
    if (typeof owner !== 'string' || owner === '') throw new ApiError(401, 'unauthorized', 'Missing or wrong credentials: send `Authorization: Bearer <api key>`.');
    c.set('owner', owner);
    checkUrlText(c.req.url);
    await next();
    // Responses carry signing secrets and owner data: no shared or browser cache may keep them (RFC 9111 §5.2.2.5).
    c.header('cache-control', 'no-store');
  });
  api.route('/hooks', subscriptionsRoutes(deps));
  api.route('/hooks', deliveriesRoutes(deps));
  api.route('/events', catalogRoutes(deps));
  api.route('/outbox', outboxRoutes(deps));
  api.get('/openapi.json', (c) => c.json((openapi ??= openApiDocument(hooks.events, options.openapi, options.basePath))));
  // Mounted with a host's `app.route()`, the host's not-found handler answers, not `noRoute`: this
  // last route keeps unknown paths under the mount point on the documented JSON 404.
  api.all('*', noRoute);
  return api;
}
