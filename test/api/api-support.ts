import Database from 'better-sqlite3';
import { createApi, type ApiOptions, type ResthooksApi } from '../../src/api/index.js';
import type { HooksOptions } from '../../src/index.js';
import { EVENTS, type BookstoreEvent } from '../../examples/bookstore/events.js';
import { testHooks, type TestHooks } from '../support/hooks.js';

// The API is tested on the demo's events map.
export { EVENTS };
export type EventName = BookstoreEvent;

/** No DNS leaves the machine: names resolve from this table (public, private, or not at all). */
export const resolver: NonNullable<HooksOptions<EventName>['resolver']> = async (name) => {
  const table: Record<string, string> = { 'hooks.example.com': '93.184.215.14', 'other.example.com': '93.184.215.15', 'intranet.example.com': '10.1.2.3' };
  const address = table[name];
  if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return [{ address, family: 4 }];
};

export const TARGET = 'https://hooks.example.com/receive';

export const KEYS = { alice: 'key-alice', bob: 'key-bob' } as const;
const OWNERS: Record<string, string> = { [KEYS.alice]: 'alice', [KEYS.bob]: 'bob' };

export const authenticate: ApiOptions['authenticate'] = (request) => {
  const key = /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1];
  return (key && OWNERS[key]) || null;
};

export interface ApiHarness extends TestHooks<EventName> {
  api: ResthooksApi;
  /** `api.request` as alice (or `as`), JSON bodies serialised, `content-type` set unless given. */
  call(method: string, path: string, init?: { body?: unknown; raw?: RequestInit['body']; headers?: Record<string, string>; as?: keyof typeof KEYS | null }): Promise<Response>;
  /** Every row of every resthooks table, read through a separate connection. */
  snapshot(): string;
}

export async function apiHarness(
  options: Partial<ApiOptions> = {},
  { start = false, hooks = {} }: { start?: boolean; hooks?: Partial<HooksOptions<EventName>> } = {},
): Promise<ApiHarness> {
  const base = await testHooks({ events: EVENTS, resolver, ...hooks }, { start });
  if (!start) await base.hooks.migrate(); // so snapshot() has tables to read before the first call
  const api = createApi(base.hooks, { authenticate, logger: { error: () => {} }, ...options });
  return {
    ...base,
    api,
    call(method, path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      const as = init.as === undefined ? 'alice' : init.as;
      if (as) headers.authorization ??= `Bearer ${KEYS[as]}`;
      let body: RequestInit['body'] = init.raw;
      if (init.body !== undefined) {
        body = JSON.stringify(init.body);
        headers['content-type'] ??= 'application/json';
      }
      // A streamed body has no length; undici needs `duplex` to send one.
      const stream = body instanceof ReadableStream ? { duplex: 'half' as const } : {};
      return Promise.resolve(api.request(path, { method, headers, ...(body !== undefined ? { body } : {}), ...stream }));
    },
    snapshot() {
      const db = new Database(base.file, { readonly: true });
      try {
        const tables = ['resthooks_subscriptions', 'resthooks_outbox', 'resthooks_events', 'resthooks_deliveries', 'resthooks_attempts'];
        return JSON.stringify(tables.map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY id`).all()));
      } finally {
        db.close();
      }
    },
  };
}
