/**
 * CSRF defence for the admin page's forms: a POST must come from a page of the same host.
 *
 * Why the Origin header and not a token: the page keeps no session of its own (authorization belongs
 * to the host app, through `authorize`), works without JavaScript, and must keep working when mounted
 * anywhere. Browsers send `Origin` with every POST (Fetch standard, "append a request `Origin`
 * header"), and a cross-site page cannot forge or remove it; `Referer` is the fallback for the rare
 * client that omits it. A POST with neither is refused: a form posted by a real browser always has one.
 * @module
 */

/**
 * Whether a state-changing request comes from the admin page's own site: its `Origin` (else its
 * `Referer`) names the same host as the request URL, or one of `trustedOrigins` (for proxies that
 * rewrite `Host`). The scheme is not compared, so TLS ended at a proxy still matches.
 */
export function isSameOriginRequest(request: Request, trustedOrigins: readonly string[] = []): boolean {
  const source = sourceOrigin(request);
  if (source === null) return false;
  if (trustedOrigins.includes(source.origin)) return true;
  return source.host === new URL(request.url).host;
}

function sourceOrigin(request: Request): URL | null {
  // An `Origin` present decides alone: "null" (sandboxed frames, cross-origin redirects) is refused.
  const value = request.headers.get('origin') ?? request.headers.get('referer');
  if (!value || value === 'null') return null;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}
