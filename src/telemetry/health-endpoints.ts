/**
 * `/healthz`, `/readyz` and `/metrics` as a web-standard handler (`Request` → `Response`), served by
 * `resthooks worker --port` and mountable in any app (Hono, Node http through a conversion, …).
 * @module
 */
import type { HealthReport } from './observability.js';

/** What the endpoints need of the hooks. */
export interface ObservedHooks {
  health(): Promise<HealthReport>;
  metrics(): Promise<string>;
  /** The dispatcher check alone, without a store read (`hooks.liveness()`); else `/healthz` reads `health()`. */
  liveness?(): HealthReport['checks']['dispatcher'];
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });

/**
 * A handler for the three paths, or `undefined` for any other path (for the app to answer):
 * - `GET /healthz` (liveness): 200 while the dispatcher's loop ticks, else 503. A failing store does
 *   not fail it: restarting the process would not bring the database back.
 * - `GET /readyz` (readiness): 200 when started and the store answers, else 503; the body is the
 *   whole `hooks.health()` report, backlog included (a backlog alone does not make it 503).
 * - `GET /metrics`: `hooks.metrics()` in the Prometheus text format.
 * @example
 * const endpoints = healthEndpoints(hooks);
 * app.use(async (c, next) => (await endpoints(c.req.raw)) ?? next()); // Hono
 */
export function healthEndpoints(hooks: ObservedHooks): (request: Request) => Promise<Response | undefined> {
  return async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname !== '/healthz' && pathname !== '/readyz' && pathname !== '/metrics') return undefined;
    if (request.method !== 'GET' && request.method !== 'HEAD') return new Response(null, { status: 405, headers: { allow: 'GET, HEAD' } });
    if (pathname === '/metrics') return new Response(await hooks.metrics(), { headers: { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' } });
    if (pathname === '/healthz') {
      // Liveness must not wait on the database: a store outage is not fixed by a restart.
      const dispatcher = hooks.liveness ? hooks.liveness() : (await hooks.health()).checks.dispatcher;
      return json(dispatcher.ok ? 200 : 503, { ok: dispatcher.ok, checks: { dispatcher } });
    }
    const report = await hooks.health();
    const ready = report.checks.store.ok && report.checks.dispatcher.started;
    return json(ready ? 200 : 503, { ...report, ready });
  };
}
