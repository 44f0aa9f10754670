/**
 * The bookstore demo as a value: users, books, the resthooks engine and the HTTP app, built from a
 * config. `main.ts` serves it; the tests drive it through `app.request()`.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Hono, type Context } from 'hono';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { z } from 'zod';
import { createHooks, healthEndpoints, postgresStore, unstorableTextProblem, sqliteStore, type Hooks, type HooksOptions, type Logger, type StoreDialect } from 'resthooks';
import { basicAuthorization, createAdminPage, createApi, DEFAULT_MAX_BODY_BYTES, errorResponse, readJsonObject } from 'resthooks/api';
import { attachTypeorm } from 'resthooks/typeorm';
import type { BookstoreConfig } from './config.js';
import { BookEntity, UserEntity, type Book, type User } from './entities.js';

import { EVENTS, type BookstoreEvent } from './events.js';

export { EVENTS, type BookstoreEvent };

export interface Bookstore {
  readonly app: Hono;
  readonly hooks: Hooks<BookstoreEvent>;
  readonly dataSource: DataSource;
  /** The seeded users' API keys. */
  readonly keys: { alice: string; bob: string };
  /** The admin page's password (HTTP Basic, user `admin`): new at every start, printed by main.ts. */
  readonly adminKey: string;
  close(): Promise<void>;
}

type Variables = { user: User };

// PostgreSQL cannot store NUL, and an unpaired surrogate would come back as U+FFFD: both refused (400).
const storableTitle = z.string().trim().min(1).max(200).refine((text) => unstorableTextProblem(text) === undefined, 'must be valid Unicode text without NUL characters');
const bookInput = z.object({ title: storableTitle, pages: z.number().int().min(0).max(100_000), fiction: z.boolean() });
const usernameInput = z.object({ username: z.string().regex(/^[a-z0-9_-]{2,32}$/, 'username: 2–32 lower-case letters, digits, "_" or "-"') });

const newApiKey = () => `bk_${randomBytes(18).toString('base64url')}`;

export async function createBookstore(config: BookstoreConfig, extra: Partial<HooksOptions<BookstoreEvent>> & { logger?: Logger } = {}): Promise<Bookstore> {
  const { store, typeorm } = await databases(config);
  const dataSource = new DataSource({ ...typeorm, entities: [UserEntity, BookEntity], synchronize: true, logging: false } as DataSourceOptions);
  await dataSource.initialize();

  const hooks = createHooks({
    events: EVENTS,
    store,
    allowPrivateTargets: config.allowPrivateTargets,
    // Without RESTHOOKS_SECRET_KEYS the demo stores secrets unencrypted, by choice, so that it runs with no setup.
    ...(config.plaintextSecrets ? { secretStorage: 'plaintext' as const } : {}),
    delivery: {
      ...(config.retrySchedule ? { retry: { schedule: config.retrySchedule } } : {}),
      ...(config.timeoutMs !== undefined ? { timeout: config.timeoutMs } : {}),
    },
    // REDIS_URL: deliveries go through BullMQ to `resthooks worker` processes, and to one worker
    // inside this process unless RESTHOOKS_EMBEDDED_WORKER=0. (Loaded only then: bullmq is optional.)
    ...(config.redisUrl
      ? { queue: (await import('resthooks/bullmq')).bullmqQueue({ connection: config.redisUrl, worker: config.embeddedWorker }) }
      : {}),
    ...extra,
  });
  await hooks.start();
  await attachTypeorm(dataSource, hooks);

  const users = dataSource.getRepository(UserEntity);
  const books = dataSource.getRepository(BookEntity);
  const keys = { alice: await seedUser('alice'), bob: await seedUser('bob') };
  async function seedUser(username: string): Promise<string> {
    const existing = await users.findOneBy({ username });
    return existing?.apiKey ?? (await users.save({ username, apiKey: newApiKey() })).apiKey;
  }
  const byKey = async (request: Request): Promise<User | null> => {
    const key = /^Bearer\s+(\S+)$/i.exec(request.headers.get('authorization') ?? '')?.[1];
    return key ? users.findOneBy({ apiKey: key }) : null;
  };

  const app = new Hono<{ Variables: Variables }>();
  // The demo's routes answer errors as the API does: {"error":{"code","message"}}, 413 over the limit, never a stack.
  app.onError((error) => errorResponse(error, extra.logger ?? console));
  const fail = (c: Context, status: 400 | 401 | 404 | 409, code: string, message: string) => c.json({ error: { code, message } }, status);
  const body = async <T>(c: Context, schema: z.ZodType<T>): Promise<T | Response> => {
    // The API's own limit: a huge or endless upload is cut off there, never buffered.
    const json = await readJsonObject(c.req.raw, DEFAULT_MAX_BODY_BYTES);
    const parsed = schema.safeParse(json);
    return parsed.success ? parsed.data : fail(c, 400, 'invalid_field', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  };

  app.post('/api/signup', async (c) => {
    const input = await body(c, usernameInput);
    if (input instanceof Response) return input;
    if (await users.findOneBy({ username: input.username })) return fail(c, 409, 'conflict', `The username "${input.username}" is taken.`);
    const user = await users.save({ username: input.username, apiKey: newApiKey() });
    return c.json({ username: user.username, apiKey: user.apiKey }, 201);
  });

  // Every other /api route needs a key. The subscriptions API authenticates by itself (below).
  const requireUser = async (c: Context<{ Variables: Variables }>, next: () => Promise<void>) => {
    const user = await byKey(c.req.raw);
    if (!user) return fail(c, 401, 'unauthorized', 'Missing or wrong credentials: send `Authorization: Bearer <api key>`.');
    c.set('user', user);
    await next();
  };
  app.use('/api/login', requireUser);
  app.use('/api/books', requireUser);
  app.use('/api/books/*', requireUser);

  app.post('/api/login', async (c) => {
    const user = c.get('user');
    const loggedInAt = new Date();
    await hooks.raw('user.logged_in', { username: user.username, loggedInAt }, { owner: user.username });
    return c.json({ username: user.username, loggedInAt });
  });

  app.post('/api/books', async (c) => {
    const input = await body(c, bookInput);
    if (input instanceof Response) return input;
    return c.json(await books.save({ ...input, ownerId: c.get('user').username }), 201);
  });
  app.get('/api/books', async (c) => c.json(await books.find({ order: { id: 'DESC' } })));
  const findBook = (c: Context) => {
    const id = Number(c.req.param('id'));
    return Number.isInteger(id) && id > 0 ? books.findOneBy({ id }) : Promise.resolve(null);
  };
  app.get('/api/books/:id', async (c) => {
    const book = await findBook(c);
    return book ? c.json(book) : fail(c, 404, 'not_found', 'No such book.');
  });
  // Only the owner may change or delete a book; to anyone else it does not exist.
  const ownBook = async (c: Context<{ Variables: Variables }>): Promise<Book | null> => {
    const book = await findBook(c);
    return book && book.ownerId === c.get('user').username ? book : null;
  };
  app.patch('/api/books/:id', async (c) => {
    const book = await ownBook(c);
    if (!book) return fail(c, 404, 'not_found', 'No such book.');
    const input = await body(c, bookInput.partial());
    if (input instanceof Response) return input;
    return c.json(await books.save({ ...book, ...input }));
  });
  app.delete('/api/books/:id', async (c) => {
    const book = await ownBook(c);
    if (!book) return fail(c, 404, 'not_found', 'No such book.');
    await books.remove(book);
    return c.body(null, 204);
  });
  app.post('/api/books/:id/read', async (c) => {
    const book = await findBook(c);
    if (!book) return fail(c, 404, 'not_found', 'No such book.');
    // A custom action (django-rest-hooks' hook_event): reaches the book owner's `book.read` subscribers.
    await hooks.action(book, 'read', { model: 'Book' });
    return c.json(book);
  });

  app.route('/api', createApi(hooks, { authenticate: async (request) => (await byKey(request))?.username ?? null }));
  // The operator's page over every user's subscriptions. The demo has no staff accounts, so: HTTP Basic
  // with a random password made at start-up (loopback only, so never sent over a network in clear).
  const adminKey = `adm_${randomBytes(18).toString('base64url')}`;
  app.route('/admin', createAdminPage(hooks, { ...basicAuthorization({ password: adminKey, realm: 'bookstore admin' }), title: 'Bookstore · resthooks admin' }));

  // For the operator: liveness, readiness and Prometheus metrics, as `resthooks worker --port` serves them.
  const endpoints = healthEndpoints(hooks);
  app.on(['GET', 'HEAD'], ['/healthz', '/readyz', '/metrics'], async (c) => (await endpoints(c.req.raw))!);

  return {
    app: app as unknown as Hono,
    hooks,
    dataSource,
    keys,
    adminKey,
    async close() {
      await hooks.close({ timeout: '5s' }); // drains in-flight deliveries, then closes the store's connection
      await dataSource.destroy();
    },
  };
}

async function databases(config: BookstoreConfig): Promise<{ store: StoreDialect; typeorm: Partial<DataSourceOptions> }> {
  if (config.databaseUrl) {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: config.databaseUrl });
    return { store: postgresStore(pool), typeorm: { type: 'postgres', url: config.databaseUrl } };
  }
  mkdirSync(dirname(config.db), { recursive: true });
  // The store gets its own connection to the app's SQLite file, so outbox rows can still be
  // written inside TypeORM's transactions (same file) without sharing a connection.
  return { store: sqliteStore(new Database(config.db)), typeorm: { type: 'better-sqlite3', database: config.db } };
}
