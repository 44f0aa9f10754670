/**
 * The bookstore demo, over real HTTP: every row of CONTRACT §1 (signup, auth, books, the five events,
 * the env knobs) and §2 (the subscriptions API as mounted at /api), on SQLite and on PostgreSQL,
 * plus `npm start` itself (the tour and a clean Ctrl-C).
 */
import { spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { toNodeHandler } from '../src/adapters/http/node-adapter.js';
import { createBookstore, EVENTS, type Bookstore } from '../examples/bookstore/bookstore.js';
import { bullmqQueue } from '../src/queue/bullmq/index.js';
import { readConfig } from '../examples/bookstore/config.js';
import { eventually, loopbackResolver, tempDir, testHooks } from './support/hooks.js';
import { createTestDatabase } from './support/postgres.js';
import { listen, startReceiver, verify, type Receiver } from './support/receiver.js';

interface Running {
  bookstore: Bookstore;
  url: string;
  call(method: string, path: string, options?: { key?: string | null; body?: unknown; raw?: string }): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

async function runDemo(env: Record<string, string>): Promise<Running> {
  const config = readConfig({ RESTHOOKS_RETRY_SCHEDULE: '0,30ms,60ms', RESTHOOKS_TIMEOUT: '2s', ...env }, ['--no-tour']);
  const bookstore = await createBookstore(config, { resolver: loopbackResolver });
  const server = createServer(toNodeHandler(bookstore.app));
  const url = await listen(server);
  return {
    bookstore,
    url,
    async call(method, path, { key = bookstore.keys.alice, body, raw } = {}) {
      const response = await fetch(url + path, {
        method,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), 'content-type': 'application/json' },
        ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : undefined };
    },
    async close() {
      server.close();
      server.closeAllConnections();
      await bookstore.close();
    },
  };
}

const engines: Array<[string, () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>]> = [
  ['SQLite', async () => {
    const dir = tempDir();
    return { env: { RESTHOOKS_DB: join(dir.path, 'bookstore.db') }, cleanup: async () => dir.cleanup() };
  }],
  ['PostgreSQL', async () => {
    const database = await createTestDatabase(inject('postgresUrl'));
    return { env: { DATABASE_URL: database.url }, cleanup: () => database.drop() };
  }],
];

describe.each(engines)('the bookstore demo on %s', (_, makeEngine) => {
  let demo: Running;
  let receiver: Receiver;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const engine = await makeEngine();
    cleanup = engine.cleanup;
    demo = await runDemo(engine.env);
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await demo.close();
    await receiver.close();
    await cleanup();
  });
  const subscribe = async (event: string, key: string, path: string) => {
    const { status, json } = await demo.call('POST', '/api/hooks', { key, body: { event, target: receiver.url + path } });
    expect(status).toBe(201);
    return json as { id: string; secret: string };
  };
  const arrivals = (path: string) => receiver.received.filter((r) => r.path === path);

  it('signup returns a key (201), a taken name is 409, bad input 400, and signup needs no key', async () => {
    const created = await demo.call('POST', '/api/signup', { key: null, body: { username: 'carol' } });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ username: 'carol', apiKey: expect.stringMatching(/^bk_/) });
    expect((await demo.call('POST', '/api/signup', { key: null, body: { username: 'carol' } })).status).toBe(409);
    expect((await demo.call('POST', '/api/signup', { key: null, body: { username: 'No Spaces!' } })).json.error.code).toBe('invalid_field');
    expect((await demo.call('POST', '/api/signup', { key: null, raw: '{oops' })).status).toBe(400);
    const books = await demo.call('GET', '/api/books', { key: created.json.apiKey });
    expect(books.status).toBe(200);
  });

  it('every other /api route needs the Bearer key: missing or wrong → 401 with the error shape', async () => {
    for (const [method, path] of [['GET', '/api/books'], ['POST', '/api/login'], ['GET', '/api/hooks'], ['GET', '/api/events'], ['POST', '/api/books/1/read']] as const) {
      for (const key of [null, 'bk_wrong']) {
        const response = await demo.call(method, path, { key });
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(response.json).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      }
    }
  });

  it('books: create (owned by the caller), list, get, and only the owner may change or delete (else 404)', async () => {
    const created = await demo.call('POST', '/api/books', { body: { title: 'Dune', pages: 412, fiction: true } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ id: expect.any(Number), title: 'Dune', pages: 412, fiction: true, ownerId: 'alice' });
    expect(Object.keys(created.json).sort()).toEqual(['createdAt', 'fiction', 'id', 'ownerId', 'pages', 'title', 'updatedAt']);
    const id = created.json.id;
    expect((await demo.call('GET', '/api/books')).json.map((b: { id: number }) => b.id)).toContain(id);
    expect((await demo.call('GET', `/api/books/${id}`, { key: demo.bookstore.keys.bob })).json.title).toBe('Dune');
    expect((await demo.call('PATCH', `/api/books/${id}`, { key: demo.bookstore.keys.bob, body: { title: 'Mine now' } })).status).toBe(404);
    expect((await demo.call('DELETE', `/api/books/${id}`, { key: demo.bookstore.keys.bob })).status).toBe(404);
    expect((await demo.call('PATCH', `/api/books/${id}`, { body: { pages: 500 } })).json).toMatchObject({ pages: 500, title: 'Dune' });
    expect((await demo.call('POST', '/api/books', { body: { title: '', pages: -1 } })).status).toBe(400);
    expect((await demo.call('DELETE', `/api/books/${id}`)).status).toBe(204);
    expect((await demo.call('GET', `/api/books/${id}`)).status).toBe(404);
    expect((await demo.call('GET', '/api/books/nope')).status).toBe(404);
  });

  it('the five events fire from the routes: added, changed (to every owner), read, removed, logged_in', async () => {
    const { alice, bob } = demo.bookstore.keys;
    const secrets = new Map<string, string>();
    for (const event of ['book.added', 'book.changed', 'book.read', 'book.removed', 'user.logged_in']) {
      const sub = await subscribe(event, alice, `/alice/${event}`);
      secrets.set(sub.id, sub.secret);
    }
    const bobs = await subscribe('book.changed', bob, '/bob/book.changed');
    secrets.set(bobs.id, bobs.secret);
    const bobAdded = await subscribe('book.added', bob, '/bob/book.added');

    const id = (await demo.call('POST', '/api/books', { body: { title: 'The Two Towers', pages: 327, fiction: true } })).json.id;
    await demo.call('PATCH', `/api/books/${id}`, { body: { title: 'The Two Towers: Deluxe Edition', pages: 352 } });
    await demo.call('POST', `/api/books/${id}/read`);
    await demo.call('DELETE', `/api/books/${id}`);
    await demo.call('POST', '/api/login');

    await eventually(() => {
      for (const event of ['book.added', 'book.changed', 'book.read', 'book.removed', 'user.logged_in']) expect(arrivals(`/alice/${event}`), event).toHaveLength(1);
      expect(arrivals('/bob/book.changed')).toHaveLength(1); // 'Book.updated+': every owner's subscribers
    });
    expect(arrivals('/bob/book.added')).toHaveLength(0); // book.added is alice's book: only her subscribers
    for (const request of receiver.received) verify(secrets.get(request.json.hook.id)!, request);
    expect(arrivals('/alice/book.added')[0]!.json.data).toMatchObject({ id, title: 'The Two Towers', pages: 327, fiction: true, ownerId: 'alice' });
    expect(arrivals('/alice/book.changed')[0]!.json).toMatchObject({ data: { id, title: 'The Two Towers: Deluxe Edition' }, changes: expect.arrayContaining(['title', 'pages']) });
    expect(arrivals('/alice/book.removed')[0]!.json.data).toMatchObject({ id, title: 'The Two Towers: Deluxe Edition' });
    expect(arrivals('/alice/user.logged_in')[0]!.json.data).toMatchObject({ username: 'alice' });
    expect(bobAdded.id).toMatch(/^sub_/);
  });

  it('request bodies are read up to the API\'s limit (64 KiB): a huge one is 413 and is cut off, not buffered', async () => {
    // A 64 MiB body produced on demand: what the server pulls is what it read.
    const hugeBody = () => {
      let pulled = 0;
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (pulled >= 64 * 1024 * 1024) return controller.close();
          pulled += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }, { highWaterMark: 0 });
      return { stream, pulled: () => pulled };
    };
    const { keys } = demo.bookstore;
    const id = (await demo.call('POST', '/api/books', { body: { title: 'Limits', pages: 1, fiction: false } })).json.id;
    for (const [method, path, key] of [['POST', '/api/signup', null], ['POST', '/api/books', keys.alice], ['PATCH', `/api/books/${id}`, keys.alice]] as const) {
      const body = hugeBody();
      const response = await demo.bookstore.app.request(path, {
        method,
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: body.stream,
        duplex: 'half',
      } as RequestInit);
      expect(response.status, `${method} ${path}`).toBe(413);
      expect(await response.json()).toEqual({ error: { code: 'payload_too_large', message: 'The body is larger than the limit of 65536 bytes.' } });
      expect(body.pulled(), `${method} ${path} read`).toBeLessThanOrEqual(3 * 64 * 1024);
    }
    // Over real HTTP: a declared length over the limit, and a chunked upload with none.
    const declared = await demo.call('POST', '/api/books', { raw: JSON.stringify({ title: 'x'.repeat(70_000), pages: 1, fiction: true }) });
    expect(declared.status).toBe(413);
    const chunked = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${demo.url}/api/books`, { method: 'POST', headers: { authorization: `Bearer ${keys.alice}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
        request.destroy();
      });
      request.on('error', (error) => (request.destroyed ? undefined : reject(error)));
      const piece = 'x'.repeat(64 * 1024);
      let sent = 0;
      const write = () => {
        while (!request.destroyed && sent < 32 * 1024 * 1024) {
          sent += piece.length;
          if (!request.write(piece)) return void request.once('drain', write);
        }
        if (!request.destroyed) request.end();
      };
      request.write('{"title":"');
      write();
    });
    expect(chunked).toBe(413);
    expect((await demo.call('GET', `/api/books/${id}`)).json.title).toBe('Limits');
  });

  it('a title no database can store as given (NUL, unpaired surrogate) is 400, not 500 or a changed title', async () => {
    for (const title of ['a\u0000b', 'lone \ud800 half']) {
      const created = await demo.call('POST', '/api/books', { body: { title, pages: 1, fiction: false } });
      expect(created.status, JSON.stringify(title)).toBe(400);
      expect(created.json.error).toEqual({ code: 'invalid_field', message: 'title: must be valid Unicode text without NUL characters' });
    }
    const id = (await demo.call('POST', '/api/books', { body: { title: 'Clean \u{1F4DA}', pages: 1, fiction: false } })).json.id;
    expect((await demo.call('PATCH', `/api/books/${id}`, { body: { title: 'x\u0000' } })).status).toBe(400);
    expect((await demo.call('GET', `/api/books/${id}`)).json.title).toBe('Clean \u{1F4DA}');
  });

  it('an unknown path under /api is the API\'s JSON not_found', async () => {
    const response = await demo.call('GET', '/api/nothing/here');
    expect(response.status).toBe(404);
    expect(response.json).toEqual({ error: { code: 'not_found', message: 'No route GET /api/nothing/here.' } });
  });

  it('the subscriptions API of CONTRACT §2 is mounted at /api and scoped to the caller', async () => {
    const { alice, bob } = demo.bookstore.keys;
    const sub = await subscribe('book.added', alice, '/api-check');
    expect(Object.keys(await (await demo.call('GET', `/api/hooks/${sub.id}`)).json).sort()).toEqual(['active', 'createdAt', 'event', 'id', 'secret', 'target', 'updatedAt']);
    expect((await demo.call('GET', `/api/hooks/${sub.id}`, { key: bob })).status).toBe(404);
    expect((await demo.call('GET', '/api/hooks', { key: bob })).json.map((s: { id: string }) => s.id)).not.toContain(sub.id);
    expect((await demo.call('PATCH', `/api/hooks/${sub.id}`, { body: { active: false } })).json.active).toBe(false);
    expect((await demo.call('PATCH', `/api/hooks/${sub.id}`, { body: { active: true } })).json.active).toBe(true);
    const rotated = await demo.call('POST', `/api/hooks/${sub.id}/rotate-secret`);
    expect(rotated.json.secret).toMatch(/^whsec_/);
    expect((await demo.call('POST', `/api/hooks/${sub.id}/test`)).status).toBe(202);
    await eventually(() => expect(arrivals('/api-check').map((r) => r.json.hook.event)).toContain('hook.test'));
    const deliveries = await eventually(async () => {
      const list = await demo.call('GET', `/api/hooks/${sub.id}/deliveries`);
      expect(list.json[0]).toMatchObject({ status: 'delivered' });
      return list.json;
    });
    expect((await demo.call('POST', `/api/hooks/${sub.id}/deliveries/${deliveries[0].id}/retry`)).status).toBe(202);
    const events = (await demo.call('GET', '/api/events')).json;
    expect(events).toContainEqual({ name: 'book.changed', model: 'Book', action: 'updated', allOwners: true });
    expect(events).toContainEqual({ name: 'user.logged_in', model: null, action: null, allOwners: false });
    expect((await demo.call('GET', '/api/events/book.added/sample')).status).toBe(200);
    expect((await demo.call('POST', '/api/hooks', { body: { event: 'book.burned', target: receiver.url } })).json.error.message).toBe('Unexpected event "book.burned"');
    expect((await demo.call('DELETE', `/api/hooks/${sub.id}`)).status).toBe(204);
    expect((await demo.call('GET', `/api/hooks/${sub.id}`)).status).toBe(404);
  });
});

describe('REDIS_URL: delivery through BullMQ', () => {
  it('with the embedded worker, and with RESTHOOKS_EMBEDDED_WORKER=0 only once a worker runs', async () => {
    const redisUrl = inject('redisUrl');
    const dir = tempDir();
    const receiver = await startReceiver();
    const db = join(dir.path, 'bookstore.db');
    try {
      for (const [embedded, path] of [['1', '/embedded'], ['0', '/relay-only']] as const) {
        const demo = await runDemo({ RESTHOOKS_DB: db, REDIS_URL: redisUrl, RESTHOOKS_EMBEDDED_WORKER: embedded });
        let worker: Awaited<ReturnType<typeof testHooks>> | undefined;
        try {
          expect((await demo.call('POST', '/api/hooks', { body: { event: 'book.added', target: receiver.url + path } })).status).toBe(201);
          expect((await demo.call('POST', '/api/books', { body: { title: path, pages: 1, fiction: false } })).status).toBe(201);
          if (embedded === '0') {
            await new Promise((resolve) => setTimeout(resolve, 500));
            expect(receiver.received.filter((r) => r.path === path)).toHaveLength(0); // relayed to Redis, nobody delivers
            worker = await testHooks({ events: EVENTS, file: db, queue: bullmqQueue({ connection: redisUrl, worker: true }) });
          }
          await eventually(() => expect(receiver.received.filter((r) => r.path === path)).toHaveLength(1), 15_000);
          expect(receiver.received.find((r) => r.path === path)!.json.data.title).toBe(path);
        } finally {
          await worker?.close();
          await demo.close();
        }
      }
    } finally {
      await receiver.close();
      dir.cleanup();
    }
  }, 60_000);
});

describe('the env knobs', () => {
  it('RESTHOOKS_ALLOW_PRIVATE_TARGETS=0 restores the library default: loopback targets refused', async () => {
    const dir = tempDir();
    const demo = await runDemo({ RESTHOOKS_DB: join(dir.path, 'b.db'), RESTHOOKS_ALLOW_PRIVATE_TARGETS: '0' });
    try {
      const refused = await demo.call('POST', '/api/hooks', { body: { event: 'book.added', target: 'http://127.0.0.1:9/x' } });
      expect(refused.status).toBe(400);
      expect(refused.json.error.code).toBe('target_refused');
    } finally {
      await demo.close();
      dir.cleanup();
    }
  });

  it('reads PORT, RESTHOOKS_HOST, RESTHOOKS_DB, RESTHOOKS_RETRY_SCHEDULE, RESTHOOKS_TIMEOUT, DATABASE_URL, REDIS_URL and --no-tour', () => {
    expect(readConfig({}, [])).toMatchObject({ port: 3000, host: '127.0.0.1', db: './.data/bookstore.db', allowPrivateTargets: true, tour: true, databaseUrl: undefined, embeddedWorker: true });
    expect(
      readConfig({ PORT: '8080', RESTHOOKS_HOST: '0.0.0.0', RESTHOOKS_DB: '/x.db', RESTHOOKS_RETRY_SCHEDULE: '0,200ms,1s', RESTHOOKS_TIMEOUT: '2s', DATABASE_URL: 'postgres://h/d', REDIS_URL: 'redis://r', RESTHOOKS_EMBEDDED_WORKER: '0' }, ['--no-tour']),
    ).toMatchObject({ port: 8080, host: '0.0.0.0', db: '/x.db', retrySchedule: [0, 200, 1000], timeoutMs: 2000, databaseUrl: 'postgres://h/d', redisUrl: 'redis://r', embeddedWorker: false, tour: false });
  });

  it('stores subscription secrets unencrypted, by choice, only without RESTHOOKS_SECRET_KEYS', () => {
    expect(readConfig({}, []).plaintextSecrets).toBe(true);
    expect(readConfig({ RESTHOOKS_SECRET_KEYS: 'k1:…' }, []).plaintextSecrets).toBe(false);
    expect(readConfig({ RESTHOOKS_SECRET_STORAGE: 'encrypted' }, []).plaintextSecrets).toBe(false);
  });
});

describe('npm start', () => {
  it('serves, runs the tour with verified deliveries, and drains on Ctrl-C', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/bookstore/main.ts'], {
      env: { ...process.env, PORT: '0', RESTHOOKS_DB: join(dir.path, 'demo.db') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    try {
      await eventually(() => expect(output).toContain('The demo keeps serving'), 30_000);
      expect(output).toMatch(/users:\s+alice\s+bk_/);
      expect(output).toContain('admin page: http://127.0.0.1:');
      // The suite's RESTHOOKS_SECRET_KEYS reaches the demo: its secrets are sealed.
      expect(output).toContain('secrets:    encrypted at rest (RESTHOOKS_SECRET_KEYS)');
      expect(output).toContain('Tour done: 4 deliveries, all signed.');
      expect(output.match(/✓ signature verified/g)).toHaveLength(4);
      const url = /resthooks bookstore demo — (\S+)/.exec(output)![1]!;
      expect((await fetch(`${url}/api/books`)).status).toBe(401);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(output).toContain('Bye.');
    } finally {
      child.kill('SIGKILL');
      dir.cleanup();
    }
  }, 60_000);
});
