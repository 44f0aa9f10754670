/**
 * An app as users write one, installed with the packed package and one version of each peer, built
 * with the app's own TypeScript (strict) and run as ESM or CommonJS (the app's package.json decides).
 * It mounts the API in Express, Fastify and Hono and subscribes through each, sends a test event from
 * the admin page (a form post, same-origin checked) mounted in Fastify, fires one event each from
 * TypeORM, Prisma, Drizzle, MikroORM, Sequelize and Kysely, delivers them through BullMQ from a
 * better-sqlite3 store, traced by the app's OpenTelemetry API, and prints the subscriptions (with their
 * secrets) and the span names once every delivery is recorded as delivered. The test's receiver checks
 * what arrived.
 *
 * Environment: RECEIVER_URL, REDIS_URL, QUEUE_NAME, DATABASE_URL (PostgreSQL, for every ORM but TypeORM).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EntitySchema as MikroEntitySchema } from '@mikro-orm/core';
import { MikroORM } from '@mikro-orm/postgresql';
import { trace } from '@opentelemetry/api';
import { PrismaPg } from '@prisma/adapter-pg';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { Kysely, PostgresDialect, type Generated } from 'kysely';
import pg from 'pg';
import { createHooks, sqliteStore } from 'resthooks';
import { createAdminPage, createApi, type ResthooksApi } from 'resthooks/api';
import { bullmqQueue } from 'resthooks/bullmq';
import { drizzleHooks } from 'resthooks/drizzle';
import { toExpress } from 'resthooks/express';
import { toFastify } from 'resthooks/fastify';
import { kyselyHooks } from 'resthooks/kysely';
import { attachMikroOrm } from 'resthooks/mikro-orm';
import { toNodeHandler } from 'resthooks/node';
import { resthooksAdapter, withResthooks } from 'resthooks/prisma';
import { attachSequelize } from 'resthooks/sequelize';
import { attachTypeorm } from 'resthooks/typeorm';
import { DataTypes, Sequelize } from 'sequelize';
import { DataSource, EntitySchema } from 'typeorm';
import { PrismaClient } from '../generated/prisma/client.js';

interface Book {
  id: number;
  title: string;
  ownerId: string;
}

const books = new EntitySchema<Book>({
  name: 'Book',
  tableName: 'books',
  columns: { id: { type: Number, primary: true, generated: true }, title: { type: String }, ownerId: { type: String } },
});

interface Genre {
  id: number;
  name: string;
  ownerId: string;
}

const genres = new MikroEntitySchema<Genre>({
  name: 'Genre',
  tableName: 'genres',
  properties: { id: { type: 'number', primary: true }, name: { type: 'string' }, ownerId: { type: 'string', fieldName: 'ownerId' } },
});

interface KyselyTables {
  magazines: { id: Generated<number>; title: string; ownerId: string };
}

const shelves = pgTable('shelves', { id: serial('id').primaryKey(), name: text('name').notNull(), ownerId: text('ownerId').notNull() });

interface Subscribed {
  /** The API the subscription was made through, or the ORM whose event it is for (made through Express). */
  via: 'express' | 'fastify' | 'hono' | 'mikro-orm' | 'sequelize' | 'kysely';
  id: string;
  event: string;
  secret: string;
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function origin(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function subscribe(base: string, via: Subscribed['via'], event: string): Promise<Subscribed> {
  const response = await fetch(`${base}/api/hooks`, {
    method: 'POST',
    headers: { authorization: 'Bearer alice-key', 'content-type': 'application/json' },
    body: JSON.stringify({ event, target: `${env('RECEIVER_URL')}/${via}` }),
  });
  const body = (await response.json()) as { id: string; secret: string };
  if (response.status !== 201) throw new Error(`POST /api/hooks through ${via}: ${response.status} ${JSON.stringify(body)}`);
  return { via, id: body.id, event, secret: body.secret };
}

async function main(): Promise<void> {
  // The app's own OpenTelemetry API (no SDK: its tracer records nothing); the span names resthooks starts are kept.
  const tracer = trace.getTracer('peer-app');
  const spans = new Set<string>();
  const startSpan = tracer.startSpan.bind(tracer);
  tracer.startSpan = (name, options, context) => {
    spans.add(name);
    return startSpan(name, options, context);
  };
  const hooks = createHooks({
    events: {
      'book.added': 'Book.created',
      'author.added': 'Author.created',
      'shelf.added': 'Shelf.created',
      'genre.added': 'Genre.created',
      'note.added': 'Note.created',
      'magazine.added': 'Magazine.created',
    },
    store: sqliteStore(new Database('hooks.db')),
    queue: bullmqQueue({ connection: env('REDIS_URL'), queueName: env('QUEUE_NAME') }),
    // The receiver is on loopback.
    allowPrivateTargets: true,
    tracing: { tracer },
  });
  await hooks.start();

  const api: ResthooksApi = createApi(hooks, {
    authenticate: (request) => (request.headers.get('authorization') === 'Bearer alice-key' ? 'alice' : null),
  });
  const expressApp = express();
  expressApp.use('/api', toExpress(api));
  const fastify = Fastify();
  await fastify.register(toFastify(api), { prefix: '/api' });
  await fastify.register(toFastify(createAdminPage(hooks, { authorize: () => true, basePath: '/admin' })), { prefix: '/admin' });
  // The app's own Hono: one copy of it, whose types the API must fit.
  const hono = new Hono();
  hono.route('/api', api);
  const expressServer = createServer(expressApp);
  const honoServer = createServer(toNodeHandler(hono));
  const fastifyOrigin = await fastify.listen({ port: 0, host: '127.0.0.1' });
  const expressOrigin = await origin(expressServer);
  const subscribed = [
    await subscribe(expressOrigin, 'express', 'book.added'),
    await subscribe(fastifyOrigin, 'fastify', 'author.added'),
    await subscribe(await origin(honoServer), 'hono', 'shelf.added'),
    await subscribe(expressOrigin, 'mikro-orm', 'genre.added'),
    await subscribe(expressOrigin, 'sequelize', 'note.added'),
    await subscribe(expressOrigin, 'kysely', 'magazine.added'),
  ];
  // The admin page's forms are refused unless their Origin names the host the request came to.
  const tested = await fetch(`${fastifyOrigin}/admin/subscriptions/${subscribed[1]!.id}/test`, {
    method: 'POST',
    headers: { origin: fastifyOrigin, 'content-type': 'application/x-www-form-urlencoded' },
    body: '',
    redirect: 'manual',
  });
  if (tested.status !== 303) throw new Error(`the admin page's "send test" through Fastify answered ${tested.status}: ${await tested.text()}`);

  const dataSource = new DataSource({ type: 'better-sqlite3', database: 'app.db', entities: [books], synchronize: true });
  await dataSource.initialize();
  const typeorm = await attachTypeorm(dataSource, hooks);
  await dataSource.manager.transaction((manager) => manager.save(books, { title: 'Dune', ownerId: 'alice' }));

  const prisma = await withResthooks(new PrismaClient({ adapter: resthooksAdapter(new PrismaPg({ connectionString: env('DATABASE_URL') })) }), hooks);
  if (!prisma.$resthooks.driverAdapter) throw new Error('withResthooks did not find the driver adapter wrapped by resthooksAdapter()');
  await prisma.$transaction((tx) => tx.author.create({ data: { name: 'Ursula K. Le Guin', ownerId: 'alice' } }));

  const pool = new pg.Pool({ connectionString: env('DATABASE_URL') });
  const db = drizzle(pool);
  const drizzleWrites = await drizzleHooks(db, hooks, { models: { Shelf: shelves } });
  const [shelf] = await drizzleWrites.insert(db, shelves, { name: 'Science fiction', ownerId: 'alice' });
  if (shelf?.name !== 'Science fiction') throw new Error(`drizzle insert returned ${JSON.stringify(shelf)}`);

  const orm = await MikroORM.init({ clientUrl: env('DATABASE_URL'), entities: [genres], debug: false });
  const mikroOrm = await attachMikroOrm(orm, hooks);
  const em = orm.em.fork();
  em.persist(em.create(genres, { name: 'Foundation', ownerId: 'alice' }));
  await em.flush();

  const sequelize = new Sequelize(env('DATABASE_URL'), { logging: false });
  const notes = sequelize.define(
    'Note',
    { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, text: { type: DataTypes.TEXT, allowNull: false }, ownerId: { type: DataTypes.TEXT, allowNull: false } },
    { tableName: 'notes', timestamps: false },
  );
  const sequelizeHooks = await attachSequelize(sequelize, hooks);
  await sequelize.transaction((transaction) => notes.create({ text: 'Read Le Guin', ownerId: 'alice' }, { transaction }));

  const kysely = new Kysely<KyselyTables>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: env('DATABASE_URL') }) }) });
  const kyselyWrites = await kyselyHooks(kysely, hooks, { models: { Magazine: 'magazines' } });
  const [magazine] = await kyselyWrites.transaction(kysely, (trx) => kyselyWrites.execute(trx, trx.insertInto('magazines').values({ title: 'Analog', ownerId: 'alice' }).returningAll()));
  if (magazine?.title !== 'Analog') throw new Error(`kysely insert returned ${JSON.stringify(magazine)}`);

  // Fastify's subscription also has the admin page's test event.
  const expected = [1, 2, 1, 1, 1, 1];
  for (let tries = 0; ; tries++) {
    const statuses = await Promise.all(subscribed.map(async ({ id }) => (await hooks.deliveries.list(id, { owner: 'alice' })).map((delivery) => delivery.status)));
    if (statuses.every((list, at) => list.filter((status) => status === 'delivered').length === expected[at])) break;
    if (tries > 600) throw new Error(`not delivered in time: ${JSON.stringify(statuses)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const modes = { typeorm: typeorm.mode, prisma: prisma.$resthooks.mode, drizzle: drizzleWrites.mode, mikroOrm: mikroOrm.mode, sequelize: sequelizeHooks.mode, kysely: kyselyWrites.mode };
  console.log(`RESULT ${JSON.stringify({ subscribed, modes, spans: [...spans].sort() })}`);

  await pool.end();
  await orm.close();
  await sequelize.close();
  await kysely.destroy();

  await prisma.$disconnect();
  await dataSource.destroy();
  await fastify.close();
  expressServer.close();
  honoServer.close();
  await hooks.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
