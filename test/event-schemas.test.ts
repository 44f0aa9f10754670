/**
 * A Standard Schema per event (zod here; any Standard Schema works): validated on every trigger, its
 * output sent; an invalid payload refused in development (`payload_invalid`, with the issues) and sent
 * with a warning in production; published as JSON Schema by GET /events and the OpenAPI document.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApi } from '../src/api/index.js';
import { OutboxWriteError, ValidationError, type HostExecutor, type Logger } from '../src/index.js';
import { ENGINES, TestDatabase, type Engine } from './support/database.js';
import { testHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created', 'book.read': 'Book.read', 'user.logged_in': null } as const;
const BookData = z.object({ id: z.number(), title: z.string(), pages: z.number().default(0) });
const Login = z.object({ username: z.string().min(1) });
const SCHEMAS = { 'book.added': BookData, 'user.logged_in': Login };

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

interface LogLine {
  level: 'warn' | 'error';
  msg: string;
  obj: Record<string, unknown>;
}

async function setUp(engine: Engine, development: boolean): Promise<{ hooks: Awaited<ReturnType<typeof open>>['hooks']; receiver: Receiver; log: LogLine[]; db: TestDatabase }> {
  const db = new TestDatabase(engine);
  await db.init();
  closers.push(() => db.close());
  const receiver = await startReceiver();
  closers.push(() => receiver.close());
  const { hooks, log } = await open(db, development);
  await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
  await hooks.subscriptions.create({ owner: 'alice', event: 'user.logged_in', target: receiver.url });
  return { hooks, receiver, log, db };
}

async function open(db: TestDatabase, development: boolean) {
  const log: LogLine[] = [];
  const line = (level: LogLine['level']) => (obj: object, msg?: string) => void log.push({ level, msg: msg ?? '', obj: obj as Record<string, unknown> });
  const logger: Logger = { debug() {}, info() {}, warn: line('warn'), error: line('error') };
  const t = await testHooks({ events: EVENTS, schemas: SCHEMAS, development, logger, store: db.dialect() });
  closers.push(() => t.close());
  return { hooks: t.hooks, log };
}

/** Runs `work` in a transaction on the app's own connection to the store's database, and rolls back if it throws. */
async function inTransaction(db: TestDatabase, work: (tx: HostExecutor) => Promise<unknown>): Promise<unknown> {
  if (db.engine === 'sqlite') {
    const app = new Database(db.url);
    app.pragma('busy_timeout = 10000');
    closers.push(() => void app.close());
    app.exec('BEGIN IMMEDIATE');
    try {
      const result = await work((sql, params) => app.prepare(sql).run(...params));
      app.exec('COMMIT');
      return result;
    } catch (error) {
      app.exec('ROLLBACK');
      throw error;
    }
  }
  const client = await db.pool().connect();
  try {
    await client.query('BEGIN');
    const result = await work((sql, params) => client.query(sql, [...params]));
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

describe.each(ENGINES)('event schemas (%s)', (engine) => {
  it('a valid payload is sent as the schema outputs it (defaults filled, unknown keys stripped)', async () => {
    const { hooks, receiver } = await setUp(engine, true);
    expect(await hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' })).toMatchObject({ status: 'queued' });
    expect(await hooks.raw('user.logged_in', { username: 'alice' }, { owner: 'alice' })).toMatchObject({ status: 'queued' });
    const received = await receiver.waitFor(2, 10_000);
    const data = received.map((r) => JSON.parse(r.body) as { hook: { event: string }; data: unknown });
    expect(data.find((d) => d.hook.event === 'book.added')?.data).toEqual({ id: 1, title: 'Dune', pages: 0 });
    expect(data.find((d) => d.hook.event === 'user.logged_in')?.data).toEqual({ username: 'alice' });
  });

  it('development: an invalid payload is not recorded; the result carries a ValidationError payload_invalid with the issues', async () => {
    const { hooks, receiver, log } = await setUp(engine, true);
    const result = await hooks.model('Book', 'created', { id: 'one', ownerId: 'alice' });
    if (result.status !== 'failed') throw new Error(`expected a failed result, got ${result.status}`);
    const error = result.error as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'payload_invalid', message: expect.stringMatching(/^The payload of book\.added does not match its schema: id: .+; title: /) });
    expect(error.issues?.map((issue) => issue.path)).toEqual([['id'], ['title']]);
    const raw = await hooks.raw('user.logged_in', { username: '' }, { owner: 'alice' });
    expect(raw).toMatchObject({ status: 'failed', error: { code: 'payload_invalid' } });
    expect(log.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual(['resthooks: could not record book.added', 'resthooks: could not record user.logged_in']);
    await hooks.idle();
    expect(await hooks.recentEvents('book.added', { owner: 'alice' })).toEqual([]);
    expect(receiver.received).toHaveLength(0);
  });

  it('development, in the caller\'s transaction: OutboxWriteError whose cause is the payload_invalid error, so the transaction rolls back', async () => {
    const { hooks, db } = await setUp(engine, true);
    const thrown = await inTransaction(db, (tx) => hooks.model('Book', 'created', { id: 2, title: 3, ownerId: 'alice' }, { tx })).catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(OutboxWriteError);
    expect((thrown as OutboxWriteError).cause).toMatchObject({ code: 'payload_invalid', issues: [{ path: ['title'] }] });
  });

  it('production: an invalid payload is sent as it is, with a warning naming the issues', async () => {
    const { hooks, receiver, log } = await setUp(engine, false);
    expect(await hooks.raw('user.logged_in', { username: '' }, { owner: 'alice' })).toMatchObject({ status: 'queued' });
    const [request] = await receiver.waitFor(1, 10_000);
    expect(JSON.parse(request!.body).data).toEqual({ username: '' });
    const warning = log.find((l) => l.level === 'warn' && l.msg.includes('does not match its schema'));
    expect(warning?.msg).toBe('resthooks: the payload of user.logged_in does not match its schema; sent anyway (production mode)');
    expect(warning?.obj).toMatchObject({ event: 'user.logged_in', issues: [{ path: ['username'] }], err: { code: 'payload_invalid' } });
  });
});

describe('schemas published as JSON Schema', () => {
  it('GET /events gives each schema of an event; the OpenAPI document describes every webhook with it', async () => {
    const db = new TestDatabase('sqlite');
    await db.init();
    closers.push(() => db.close());
    const { hooks } = await open(db, true);
    const api = createApi(hooks, { authenticate: () => 'alice' });
    const events = (await (await api.request('/events')).json()) as Array<{ name: string; schema?: Record<string, unknown> }>;
    const bookSchema = { type: 'object', properties: { id: { type: 'number' }, title: { type: 'string' }, pages: { type: 'number', default: 0 } }, required: ['id', 'title', 'pages'], additionalProperties: false };
    expect(events.find((e) => e.name === 'book.added')?.schema).toEqual(bookSchema);
    expect(events.find((e) => e.name === 'book.read')).toEqual({ name: 'book.read', model: 'Book', action: 'read', allOwners: false });
    const openapi = (await (await api.request('/openapi.json')).json()) as { webhooks: Record<string, { post: { requestBody: { content: { 'application/json': { schema: { properties: { data: unknown } } } } } } }> };
    const dataOf = (name: string) => openapi.webhooks[name]?.post.requestBody.content['application/json'].schema.properties.data;
    expect(dataOf('book.added')).toEqual(bookSchema);
    expect(dataOf('user.logged_in')).toMatchObject({ type: 'object', properties: { username: { type: 'string', minLength: 1 } } });
    expect(dataOf('book.read')).toEqual({});
  });
});
