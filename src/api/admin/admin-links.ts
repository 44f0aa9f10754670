/**
 * Where the admin page lives and how its pages link to each other. The page may be mounted anywhere
 * (`app.route('/admin', page)`, a `basePath`, a prefix with parameters), so the mount point is worked
 * out from each request: the request path minus the matched route's own segments.
 * @module
 */

/** Filters of the subscriptions list, as they appear in its query string. */
export interface ListQuery {
  owner?: string | undefined;
  event?: string | undefined;
  /** `'true'`, `'false'`, or absent for both. */
  active?: string | undefined;
  cursor?: string | undefined;
}

/**
 * The mount point of a request that matched a route of `depth` segments:
 * `('http://h/admin/subscriptions/sub_1', 2)` → `'/admin'`; mounted at the root → `''`.
 */
export function mountBase(url: string, depth: number): string {
  const parts = new URL(url).pathname.replace(/\/+$/, '').split('/');
  return parts.slice(0, Math.max(parts.length - depth, 1)).join('/');
}

/** Number of path segments of a route pattern (`'/subscriptions/:id'` → 2). */
export function routeDepth(pattern: string): number {
  return pattern.split('/').filter(Boolean).length;
}

/** Every URL the page links to, under one mount point. Path parts are percent-encoded. */
export class AdminLinks {
  readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  list(query: ListQuery & { done?: string } = {}): string {
    return withQuery(this.base || '/', { ...query });
  }
  newSubscription(): string {
    return `${this.base}/subscriptions/new`;
  }
  subscriptions(): string {
    return `${this.base}/subscriptions`;
  }
  subscription(id: string, query: Record<string, string | undefined> = {}): string {
    return withQuery(`${this.base}/subscriptions/${encodeURIComponent(id)}`, query);
  }
  /** An action of one subscription: `edit`, `delete`, `rotate-secret`, `test`, `recover`. */
  action(id: string, action: string): string {
    return `${this.base}/subscriptions/${encodeURIComponent(id)}/${action}`;
  }
  retry(id: string, deliveryId: string): string {
    return `${this.base}/subscriptions/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}/retry`;
  }
  events(): string {
    return `${this.base}/events`;
  }
  /** Events not fanned out; undeliverable ones unless `status` says otherwise. */
  outbox(query: { status?: string; cursor?: string; done?: string } = {}): string {
    return withQuery(`${this.base}/outbox`, { ...query, status: query.status === 'undeliverable' ? undefined : query.status });
  }
  outboxRetry(eventId: string): string {
    return `${this.base}/outbox/${encodeURIComponent(eventId)}/retry`;
  }
}

function withQuery(path: string, query: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') search.set(key, value);
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}
