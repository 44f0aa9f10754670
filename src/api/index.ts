/**
 * `resthooks/api`: the subscriptions REST API as a Hono app (its own entry, so `import 'resthooks'`
 * never loads Hono). Mount it in Hono, or through `resthooks/node`, `resthooks/express`, `resthooks/fastify`.
 * @module
 */
export { createApi, type ApiOptions, type ResthooksApi } from './app.js';
export { ApiError, errorResponse, type ApiErrorCode, type ErrorBody } from './errors.js';
// For an app's own routes beside the API: the same body limits and the same error shape.
export { DEFAULT_MAX_BODY_BYTES, readJsonObject } from './body.js';
export type { OpenApiInfo } from './openapi.js';
export type { SubscriptionJson, DeliveryJson, AttemptJson } from './schemas.js';
export type { Sample } from './samples.js';
export {
  createAdminPage,
  basicAuthorization,
  type AdminPageOptions,
  type AdminPage,
  type BasicAuthorizationOptions,
} from './admin/admin-page.js';
