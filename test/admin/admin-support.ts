import { Hono } from 'hono';
import { basicAuthorization, createAdminPage, type AdminPageOptions } from '../../src/api/admin/admin-page.js';
import type { Hooks, HooksOptions } from '../../src/index.js';
import { testHooks, type TestHooks } from '../support/hooks.js';

export const EVENTS = {
  'book.added': 'Book.created',
  'book.changed': 'Book.updated+',
  'book.read': 'Book.read',
  'user.logged_in': null,
} as const;

/** The operator's credentials in the tests: HTTP Basic `admin:<ADMIN_KEY>`, as in the demo. */
export const ADMIN_KEY = 'test-admin-key-0123456789';
export const BASIC = `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}`;

const basic = basicAuthorization({ password: ADMIN_KEY });
/** True for the right Basic credentials. */
export const basicAuthorize = basic.authorize;
export const CHALLENGE = basic.challenge;

export interface AdminHarness {
  hooks: Hooks<keyof typeof EVENTS>;
  /** A host app with the page mounted at `/admin`. */
  host: Hono;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  /** A same-origin form POST, as the browser sends it. */
  post(path: string, fields?: Record<string, string>, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

/** Options of the hooks under the page: another engine's `store`, delivery settings, the private-target policy. */
export type AdminHooksOptions = Partial<Pick<HooksOptions<keyof typeof EVENTS>, 'allowPrivateTargets' | 'store' | 'delivery'>>;

export async function adminHarness(options: Partial<AdminPageOptions> = {}, hooksOptions: AdminHooksOptions = {}): Promise<AdminHarness> {
  const t: TestHooks<keyof typeof EVENTS> = await testHooks({ events: EVENTS, ...hooksOptions });
  const host = new Hono();
  host.route('/admin', createAdminPage(t.hooks, { authorize: basicAuthorize, challenge: CHALLENGE, ...options }));
  const origin = 'http://admin.test';
  return {
    hooks: t.hooks,
    host,
    get: async (path, headers = {}) => host.request(`${origin}${path}`, { headers: { authorization: BASIC, ...headers } }),
    post: async (path, fields = {}, headers = {}) =>
      host.request(`${origin}${path}`, {
        method: 'POST',
        // An empty value leaves the header out (e.g. `{ origin: '' }`: no Origin at all).
        headers: Object.fromEntries(Object.entries({ authorization: BASIC, origin, 'content-type': 'application/x-www-form-urlencoded', ...headers }).filter(([, v]) => v !== '')),
        body: new URLSearchParams(fields).toString(),
      }),
    close: () => t.close(),
  };
}

/** The text between `<main>` and `</main>`: the page without its stylesheet and navigation. */
export function mainOf(html: string): string {
  return /<main>([\s\S]*)<\/main>/.exec(html)?.[1] ?? '';
}
