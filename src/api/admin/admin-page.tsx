/** @jsxImportSource hono/jsx */
/**
 * `createAdminPage()`: the operator's web page over `hooks` (django-rest-hooks' Django `HookAdmin`, done
 * properly): every owner's subscriptions, their deliveries and attempts, and the actions on them, as
 * server-rendered HTML forms. No client framework, no script, no external asset.
 *
 * Security, in the order a request meets it: every response gets strict headers (a CSP that allows
 * only the page's own stylesheet, no framing, no caching: the page shows secrets); every request must
 * pass `authorize`; every POST must come from the page's own host (see admin-csrf.ts); every value is
 * rendered through hono/jsx, which escapes it. Nothing the page logs contains a request body or a secret.
 * @module
 */
import { Hono, type Context } from 'hono';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Hooks } from '../../hooks.js';
import { stderrLogger, type Logger } from '../../logger.js';
import type { Subscription } from '../../store/records.js';
import { readBodyBytes } from '../body.js';
import { coreErrorStatus } from '../errors.js';
import { nextCursorOf } from '../paging.js';
import { checkUrlText } from '../url-text.js';
import type { OutboxStatus } from '../../store/outbox.js';
import { isSameOriginRequest } from './admin-csrf.js';
import { formProblem, parseActive, parseMetadata, parseSince, subscriptionFormValues, toDateTimeLocal, type FormProblem, type SubscriptionFormValues } from './admin-forms.js';
import { ProblemPage } from './admin-layout.js';
import { AdminLinks, mountBase, routeDepth, type ListQuery } from './admin-links.js';
import { ADMIN_CSS } from './admin-styles.js';
import { EventsCatalog } from './events-catalog.js';
import { DeleteConfirm, editValues, SubscriptionDetail } from './subscription-detail.js';
import { OutboxList } from './outbox-list.js';
import { NewSubscriptionPage } from './subscription-form.js';
import { SubscriptionsList } from './subscriptions-list.js';

export { basicAuthorization, type BasicAuthorizationOptions } from './admin-basic-auth.js';

export interface AdminPageOptions {
  /**
   * Whether `request` may use the admin page. Required, with no default: an operator page must never
   * be open by accident. `false` answers 401 (with `challenge`) or 403.
   */
  authorize(request: Request): boolean | Promise<boolean>;
  /**
   * The path the browser sees the page under, e.g. `/admin`, when it is not mounted with Hono's
   * `app.route()` (which needs none). Requests may arrive with it (node:http, Next.js, Bun, Deno) or
   * without it (Express `use`, Fastify `prefix` strip it): either way the routes match and the links
   * carry it. Default `''`.
   */
  basePath?: string;
  /** Shown in the header and the tab. Default `resthooks admin`. */
  title?: string;
  /**
   * The `WWW-Authenticate` value of the 401 answered when `authorize` says no, e.g.
   * `'Basic realm="resthooks admin", charset="UTF-8"'` to make browsers ask for a password. Without it
   * the answer is 403, since a 401 must name a scheme (RFC 9110 §15.5.2).
   */
  challenge?: string;
  /** Origins besides the request's own host that may post the page's forms (a proxy that rewrites `Host`). */
  trustedOrigins?: readonly string[];
  /** Subscriptions per list page, 1–100. Default 25. */
  pageSize?: number;
  /** Where unexpected errors (answered as 500) are logged; pino-compatible. Default: `console.error`. */
  logger?: Pick<Logger, 'error'>;
}

type AdminEnv = { Variables: { links: AdminLinks } };

/** The Hono app `createAdminPage` returns: mount it with `app.route('/admin', page)`, or call `.fetch(request)`. */
export type AdminPage = Hono<AdminEnv>;

const DELIVERIES_PER_PAGE = 20;
const MAX_FORM_BYTES = 64 * 1024;

/** A whole-page answer other than 200 (a 404, a bad form encoding, …), thrown from a route. */
class PageProblem extends Error {
  constructor(readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500, readonly heading: string, message: string) {
    super(message);
  }
}

/**
 * The admin web page over `hooks`: subscriptions of every owner (list, filters, detail, create, edit,
 * delete, rotate secret, send test), their deliveries with every attempt (retry, recover), the
 * event catalog, and the outbox's events that were not fanned out (retry). Every page and action is
 * behind `authorize`.
 * @example
 * import { createAdminPage } from 'resthooks/api';
 *
 * app.route('/admin', createAdminPage(hooks, {
 *   authorize: async (request) => (await sessions.user(request))?.isStaff === true,
 * }));
 */
export function createAdminPage(hooks: Hooks, options: AdminPageOptions): AdminPage {
  if (typeof options?.authorize !== 'function') {
    throw new TypeError('createAdminPage(hooks, { authorize }): `authorize(request)` is required and must return true only for operators; the admin page is never open by default.');
  }
  const pageSize = options.pageSize ?? 25;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) throw new TypeError('createAdminPage: `pageSize` must be an integer from 1 to 100.');
  const title = options.title ?? 'resthooks admin';
  const logger = options.logger ?? stderrLogger;
  const securityHeaders = contentSecurityPolicy().then((csp) => ({
    'content-security-policy': csp,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    // Same-origin only: our POSTs carry a Referer for the CSRF check, and ids never leak to other sites.
    'referrer-policy': 'same-origin',
    'cache-control': 'no-store',
  }));

  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  if (basePath !== '' && !/^\/[^?#]*$/.test(basePath)) throw new TypeError('createAdminPage: `basePath` must be a path such as "/admin".');
  const app = new Hono<AdminEnv>();
  const page = basePath ? app.basePath(basePath) : app;
  if (basePath) {
    const dispatch = page.fetch;
    page.fetch = (request, ...rest) => dispatch(withBasePath(request, basePath), ...rest);
  }
  const render = async (c: Context, node: HtmlEscapedString | Promise<HtmlEscapedString>, status: 200 | 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500 = 200) =>
    c.html(`<!doctype html>${(await node).toString()}`, status);
  const problem = async (c: Context<AdminEnv>, p: PageProblem) => {
    // No navigation for someone who may not see the page.
    const links = p.status === 401 || p.status === 403 ? null : (c.get('links') ?? null);
    const response = await render(c, <ProblemPage title={title} links={links} heading={p.heading} message={p.message} />, p.status);
    if (p.status === 401 && options.challenge) response.headers.set('www-authenticate', options.challenge);
    return response;
  };

  page.use('*', async (c, next) => {
    await next();
    redirectTrailingSlash(c);
    for (const [name, value] of Object.entries(await securityHeaders)) c.res.headers.set(name, value);
  });
  page.use('*', async (c, next) => {
    if (!(await options.authorize(c.req.raw))) {
      return options.challenge
        ? problem(c, new PageProblem(401, 'Sign in required', 'This page is for operators. Sign in to continue.'))
        : problem(c, new PageProblem(403, 'Not authorized', 'This page is for operators. Sign in to your application as one, then come back.'));
    }
    if (c.req.method === 'POST' && !isSameOriginRequest(c.req.raw, options.trustedOrigins)) {
      return problem(c, new PageProblem(403, 'Request refused', 'This form was not sent from the admin page itself (its Origin or Referer names another site), so nothing was changed.'));
    }
    checkUrlText(c.req.url);
    await next();
  });
  page.onError((error, c) => {
    if (error instanceof PageProblem) return problem(c, error);
    if (coreErrorStatus(error) === 404) return problem(c, new PageProblem(404, 'Not found', error.message));
    const input = formProblem(error);
    if (input) return problem(c, new PageProblem(400, 'Invalid request', input.message));
    logger.error({ err: { message: error.message, stack: error.stack } }, 'resthooks admin: unexpected error');
    return problem(c, new PageProblem(500, 'Something went wrong', 'The server could not complete this request; the error is in its log.'));
  });
  const noPage = (c: Context<AdminEnv>) => problem(c, new PageProblem(404, 'Not found', `There is no admin page at ${new URL(c.req.url).pathname}.`));
  page.notFound(noPage);

  /** Registers a route whose handler gets the links of the page's mount point. */
  type Handler = (c: Context<AdminEnv>, links: AdminLinks) => Promise<Response>;
  const route = (method: 'get' | 'post', pattern: string, handler: Handler) =>
    page[method](pattern, (c) => {
      const links = new AdminLinks(mountBase(c.req.url, routeDepth(pattern)));
      c.set('links', links);
      return handler(c, links);
    });
  const noSubscription = (id: string) => new PageProblem(404, 'Not found', `There is no subscription ${id}; it may have been deleted.`);
  const requireSubscription = async (id: string): Promise<Subscription> => {
    const subscription = await hooks.subscriptions.get(id);
    if (!subscription) throw noSubscription(id);
    return subscription;
  };
  /** `action` on subscription `id`, which looks the subscription up itself: its not_found becomes the page's 404. */
  const onSubscription = <T,>(id: string, action: Promise<T>): Promise<T> =>
    action.catch((error: unknown) => {
      throw coreErrorStatus(error) === 404 ? noSubscription(id) : error;
    });
  type Rejected = { edit?: { values: SubscriptionFormValues; problems: FormProblem[] }; since?: string; sinceProblem?: string; conflict?: string };
  const detail = async (c: Context<AdminEnv>, links: AdminLinks, s: Subscription, rejected: Rejected = {}) => {
    const cursor = c.req.query('cursor') || undefined;
    const deliveries = await hooks.deliveries.list(s.id, { limit: DELIVERIES_PER_PAGE, cursor });
    const nextCursor = nextCursorOf(deliveries, DELIVERIES_PER_PAGE);
    const edit = rejected.edit ?? { values: editValues(s), problems: [] };
    const recover = { since: rejected.since ?? toDateTimeLocal(new Date(Date.now() - 86_400_000)), problem: rejected.sinceProblem };
    const props = { title, links, events: hooks.events, subscription: s, deliveries, cursor, nextCursor, notice: noticeOf(c), alert: rejected.conflict, edit, recover };
    return render(c, <SubscriptionDetail {...props} />, rejected.conflict ? 409 : rejected.edit || rejected.sinceProblem ? 400 : 200);
  };

  route('get', '/', async (c, links) => {
    const query: ListQuery = { owner: c.req.query('owner')?.trim() || undefined, event: c.req.query('event') || undefined, active: c.req.query('active') || undefined, cursor: c.req.query('cursor') || undefined };
    const active = query.active === 'true' ? true : query.active === 'false' ? false : undefined;
    const result = await hooks.subscriptions.list({ limit: pageSize, owner: query.owner, event: query.event, active, cursor: query.cursor });
    return render(c, <SubscriptionsList title={title} links={links} events={hooks.events} page={result} query={query} notice={noticeOf(c)} />);
  });

  route('get', '/subscriptions/new', async (c, links) => render(c, <NewSubscriptionPage title={title} links={links} events={hooks.events} />));

  route('post', '/subscriptions', async (c, links) => {
    const values = subscriptionFormValues(await readForm(c));
    try {
      const metadata = parseMetadata(values.metadata);
      const created = await hooks.subscriptions.create({ owner: values.owner, event: values.event, target: values.target, metadata });
      return c.redirect(links.subscription(created.id, { done: 'created' }), 303);
    } catch (error) {
      const input = formProblem(error);
      if (!input) throw error;
      return render(c, <NewSubscriptionPage title={title} links={links} events={hooks.events} values={values} problems={[input]} />, 400);
    }
  });

  route('get', '/subscriptions/:id', async (c, links) => detail(c, links, await requireSubscription(param(c, 'id'))));

  route('post', '/subscriptions/:id/edit', async (c, links) => {
    const current = await requireSubscription(param(c, 'id'));
    const values = { ...subscriptionFormValues(await readForm(c)), owner: current.owner };
    try {
      // Only what changed is sent, so an unchanged target is not checked (and resolved) again.
      const active = parseActive(values.active);
      const metadata = parseMetadata(values.metadata);
      await hooks.subscriptions.update(current.id, {
        ...(values.event !== current.event ? { event: values.event } : {}),
        ...(values.target !== current.target ? { target: values.target } : {}),
        ...(active !== current.active ? { active } : {}),
        ...(JSON.stringify(metadata) !== JSON.stringify(current.metadata) ? { metadata } : {}),
      });
      return c.redirect(links.subscription(current.id, { done: 'updated' }), 303);
    } catch (error) {
      const input = formProblem(error);
      if (!input) throw error;
      return detail(c, links, current, { edit: { values, problems: [input] } });
    }
  });

  route('get', '/subscriptions/:id/delete', async (c, links) => render(c, <DeleteConfirm title={title} links={links} subscription={await requireSubscription(param(c, 'id'))} />));

  route('post', '/subscriptions/:id/delete', async (c, links) => {
    const id = param(c, 'id');
    if (!(await hooks.subscriptions.delete(id))) throw noSubscription(id);
    return c.redirect(links.list({ done: 'deleted' }), 303);
  });

  route('post', '/subscriptions/:id/rotate-secret', async (c, links) => {
    const id = param(c, 'id');
    await onSubscription(id, hooks.subscriptions.rotateSecret(id));
    return c.redirect(links.subscription(id, { done: 'rotated' }), 303);
  });

  route('post', '/subscriptions/:id/test', async (c, links) => {
    const id = param(c, 'id');
    await onSubscription(id, hooks.sendTest(id));
    return c.redirect(links.subscription(id, { done: 'tested' }), 303);
  });

  route('post', '/subscriptions/:id/deliveries/:deliveryId/retry', async (c, links) => {
    const current = await requireSubscription(param(c, 'id'));
    try {
      // The delivery must belong to the subscription in the path.
      await hooks.deliveries.retry(param(c, 'deliveryId'), { subscriptionId: current.id });
    } catch (error) {
      if (coreErrorStatus(error) === 404) throw new PageProblem(404, 'Not found', `Subscription ${current.id} has no delivery ${param(c, 'deliveryId')}.`);
      // In flight: the page says so beside the delivery log, instead of claiming it was queued.
      if (coreErrorStatus(error) === 409) return detail(c, links, current, { conflict: (error as Error).message });
      throw error;
    }
    return c.redirect(links.subscription(current.id, { done: 'retried' }), 303);
  });

  route('post', '/subscriptions/:id/recover', async (c, links) => {
    const id = param(c, 'id');
    const since = (await readForm(c)).get('since') ?? '';
    let date: Date;
    try {
      date = parseSince(since);
    } catch (error) {
      // Only the re-rendered detail page needs the subscription itself.
      return detail(c, links, await requireSubscription(id), { since, sinceProblem: (error as Error).message });
    }
    const count = await onSubscription(id, hooks.deliveries.recover(id, { since: date }));
    return c.redirect(links.subscription(id, { done: 'recovered', count: String(count) }), 303);
  });

  route('get', '/events', async (c, links) => render(c, <EventsCatalog title={title} links={links} events={hooks.events} />));

  route('get', '/outbox', async (c, links) => {
    const status: OutboxStatus = c.req.query('status') === 'pending' ? 'pending' : 'undeliverable';
    const cursor = c.req.query('cursor') || undefined;
    const events = await hooks.outbox.list({ status, limit: pageSize, cursor });
    const props = { title, links, status, events, cursor, nextCursor: nextCursorOf(events, pageSize), notice: noticeOf(c) };
    return render(c, <OutboxList {...props} />);
  });

  route('post', '/outbox/:eventId/retry', async (c, links) => {
    const eventId = param(c, 'eventId');
    await hooks.outbox.retry(eventId).catch((error: unknown) => {
      const status = coreErrorStatus(error);
      if (status === 404) throw new PageProblem(404, 'Not found', `There is no event ${eventId}; it may have been purged.`);
      if (status === 409) throw new PageProblem(409, 'Nothing to retry', (error as Error).message);
      throw error;
    });
    return c.redirect(links.outbox({ done: 'refanned' }), 303);
  });

  // Mounted with a host's `app.route()`, the host's not-found handler answers, not `noPage`: this last
  // route keeps unknown paths under the mount point on the page's own 404.
  page.all('*', noPage);

  return page;
}

/** `request` with `basePath` put back in front of its path when a host stripped it (Express, Fastify). */
function withBasePath(request: Request, basePath: string): Request {
  const url = new URL(request.url);
  if (url.pathname === basePath || url.pathname.startsWith(`${basePath}/`)) return request;
  // The mount root arrives as "/" whether the browser asked for "/admin" or "/admin/": both are the list.
  url.pathname = url.pathname === '/' ? basePath : `${basePath}${url.pathname}`;
  return new Request(url, request);
}

/** A path parameter of the matched route (always there: the route pattern names it). */
function param(c: Context, name: string): string {
  return c.req.param(name) ?? '';
}

/** The form fields of a POST (URL-encoded or multipart, as browsers send forms). */
async function readForm(c: Context): Promise<URLSearchParams> {
  const type = c.req.header('content-type') ?? '';
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) {
    throw new PageProblem(415, 'Unsupported form encoding', 'Send the form as application/x-www-form-urlencoded or multipart/form-data.');
  }
  // The bounded reader, not Hono's bodyLimit: for a body without Content-Length (chunked) that copies
  // the request with `new Request(request, …)`, which node-server's request objects do not support.
  const bytes = await readBodyBytes(c.req.raw, MAX_FORM_BYTES, () => new PageProblem(413, 'Form too large', `A form may be at most ${MAX_FORM_BYTES / 1024} KiB.`));
  let form: FormData;
  try {
    form = await new Response(bytes, { headers: { 'content-type': type } }).formData();
  } catch {
    throw new PageProblem(400, 'Malformed form', 'The form data could not be read; send it again from the page.');
  }
  const fields = new URLSearchParams();
  form.forEach((value, name) => {
    if (typeof value === 'string') fields.append(name, value);
  });
  return fields;
}

// What a finished action says on the page it redirects to (a fixed text per action: no echoed input).
const NOTICES: Record<string, string> = {
  created: 'Subscription created.',
  updated: 'Changes saved.',
  rotated: 'New secret generated. The previous one keeps signing alongside it for the grace period (24 hours by default).',
  tested: 'Test delivery queued. Reload to see its outcome below.',
  retried: 'Delivery queued for another attempt. Reload to see its outcome.',
  deleted: 'Subscription deleted; its undelivered deliveries were cancelled.',
  refanned: 'Event queued for fan-out again. Reload to see it leave this list; its deliveries appear on its subscriptions.',
};

function noticeOf(c: Context): string | undefined {
  const done = c.req.query('done');
  if (done === 'recovered') {
    const count = Number.parseInt(c.req.query('count') ?? '', 10);
    return Number.isFinite(count) ? `${count} failed ${count === 1 ? 'delivery' : 'deliveries'} re-queued.` : 'Failed deliveries re-queued.';
  }
  return done !== undefined && Object.hasOwn(NOTICES, done) ? NOTICES[done] : undefined;
}

/**
 * `/admin/` → `/admin` (308) for GET paths that matched nothing only because of a trailing slash.
 * Never to a path starting with `//`, which a browser would read as another host.
 */
function redirectTrailingSlash(c: Context): void {
  if (c.res.status !== 404 || c.req.method !== 'GET') return;
  const url = new URL(c.req.url);
  const trimmed = url.pathname.replace(/\/+$/, '');
  if (trimmed === url.pathname || trimmed === '' || trimmed.startsWith('//')) return;
  c.res = c.redirect(trimmed + url.search, 308);
}

/** Only the page's own stylesheet (by hash) may apply; nothing may run, frame the page, or be posted elsewhere. */
async function contentSecurityPolicy(): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(ADMIN_CSS));
  const hash = btoa(String.fromCharCode(...new Uint8Array(digest)));
  return `default-src 'none'; style-src 'sha256-${hash}'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;
}
