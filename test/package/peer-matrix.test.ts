/**
 * The packed package installed into scratch apps with the oldest and the newest supported major of each
 * peer, as users install it: plain `npm install`, so a peer range that refuses an app's version fails
 * here with ERESOLVE. In each app, peer-app/main.ts is compiled by the app's own TypeScript (strict,
 * library declarations checked too) against the installed declarations, then run as CommonJS (oldest
 * majors) or ESM (newest): a first delivery through Express, Fastify, Hono, the admin page, TypeORM,
 * Prisma (a client generated in the app), Drizzle, MikroORM, Sequelize, Kysely (the app's own copy, not
 * resthooks'), BullMQ and a better-sqlite3 store, traced with the app's OpenTelemetry API, checked here
 * by a real receiver with the Standard Webhooks reference package. Every ORM but TypeORM writes to
 * PostgreSQL: no native build beyond better-sqlite3's (Sequelize without sqlite3).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../support/postgres.js';
import { startReceiver, verify } from '../support/receiver.js';
import { scratchApp } from '../support/scratch-app.js';

interface MatrixApp {
  readonly name: string;
  readonly type: 'module' | 'commonjs';
  /** Peers and the app's own tools, name → version range (one major, or one minor line). */
  readonly dependencies: Readonly<Record<string, string>>;
  /** The major (or minor line) each peer must resolve to, checked after the install. */
  readonly resolves: Readonly<Record<string, RegExp>>;
}

// Tools every app has: its TypeScript and the type packages of the untyped peers.
const TOOLS = { typescript: '~5.9.0', '@types/node': '^20.0.0', '@types/better-sqlite3': '^7.0.0', '@types/pg': '^8.0.0' };

const APPS: readonly MatrixApp[] = [
  {
    name: 'oldest-majors',
    type: 'commonjs',
    dependencies: {
      ...TOOLS,
      typeorm: '^0.3.20',
      express: '^4.17.0',
      '@types/express': '^4.17.0',
      fastify: '^4.26.0',
      bullmq: '^5.0.0',
      ioredis: '^5.0.0',
      'better-sqlite3': '^11.0.0',
      pg: '^8.0.0',
      '@prisma/client': '~6.19.0',
      prisma: '~6.19.0',
      '@prisma/adapter-pg': '~6.19.0',
      'drizzle-orm': '~0.40.0',
      // An older Hono minor than the one the package is built with.
      hono: '~4.6.0',
      // 6.6.16 is the range's floor (exact: the registry here has no later 6.x postgresql driver).
      '@mikro-orm/core': '6.6.16',
      '@mikro-orm/postgresql': '6.6.16',
      sequelize: '^6.37.8',
      'pg-hstore': '^2.3.0',
      // An older Kysely minor than resthooks' own: the adapter types the app's instance structurally.
      kysely: '~0.27.0',
      '@opentelemetry/api': '^1.9.0',
    },
    resolves: {
      typeorm: /^0\.3\./,
      express: /^4\./,
      fastify: /^4\./,
      bullmq: /^5\./,
      'better-sqlite3': /^11\./,
      '@prisma/client': /^6\.19\./,
      'drizzle-orm': /^0\.40\./,
      hono: /^4\.6\./,
      '@mikro-orm/core': /^6\.6\./,
      sequelize: /^6\./,
      kysely: /^0\.27\./,
      '@opentelemetry/api': /^1\./,
    },
  },
  {
    name: 'newest-majors',
    type: 'module',
    dependencies: {
      ...TOOLS,
      typeorm: '^1.0.0',
      express: '^5.0.0',
      '@types/express': '^5.0.0',
      fastify: '^5.0.0',
      bullmq: '^6.0.0',
      ioredis: '^5.0.0',
      'better-sqlite3': '^12.0.0',
      pg: '^8.0.0',
      '@prisma/client': '^7.0.0',
      prisma: '^7.0.0',
      '@prisma/adapter-pg': '^7.0.0',
      'drizzle-orm': '<1.0.0',
      hono: '^4.0.0',
      // Exact: the registry here has no later @mikro-orm/postgresql 7.x.
      '@mikro-orm/core': '7.2.1',
      '@mikro-orm/postgresql': '7.2.1',
      '@mikro-orm/sql': '7.2.1',
      sequelize: '^6.37.8',
      'pg-hstore': '^2.3.0',
      kysely: '~0.28.0',
      '@opentelemetry/api': '^1.9.0',
    },
    resolves: {
      typeorm: /^1\./,
      express: /^5\./,
      fastify: /^5\./,
      bullmq: /^6\./,
      'better-sqlite3': /^12\./,
      '@prisma/client': /^7\./,
      'drizzle-orm': /^0\.4\d\./,
      hono: /^4\./,
      '@mikro-orm/core': /^7\./,
      sequelize: /^6\./,
      kysely: /^0\.28\./,
      '@opentelemetry/api': /^1\./,
    },
  },
];

const SOURCES = ['main.ts', 'peer-types.ts'].map((file) => [file, readFileSync(new URL(`peer-app/${file}`, import.meta.url), 'utf8')] as const);

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    esModuleInterop: true,
    // As most apps have it (and drizzle-orm asks for it): declarations are not checked themselves, so
    // peer-app/peer-types.ts checks that each peer type ours name is found in this app's peers.
    skipLibCheck: true,
    outDir: 'dist',
    rootDir: '.',
    types: ['node'],
  },
  include: ['src', 'generated'],
};

/** Prisma 6 generates a driver-adapter client only with `engineType = "client"`; 7 has no other engine. */
function prismaSchema(major: number, type: MatrixApp['type']): string {
  return `generator client {
  provider            = "prisma-client"
  output              = "../generated/prisma"
  moduleFormat        = "${type === 'module' ? 'esm' : 'cjs'}"
  importFileExtension = "js"${major === 6 ? '\n  engineType          = "client"' : ''}
}

datasource db {
  provider = "postgresql"${major === 6 ? '\n  url      = env("DATABASE_URL")' : ''}
}

model Author {
  id      Int    @id @default(autoincrement())
  name    String
  ownerId String
  @@map("authors")
}
`;
}

interface Subscribed {
  via: string;
  id: string;
  event: string;
  secret: string;
}

/**
 * ioredis 6 needs an app of its own: TypeORM (0.3 and 1) asks for ioredis ^5 as a peer. BullMQ 6 accepts
 * both; the app hands resthooks an ioredis 6 instance of its own, and a delivery goes through a worker.
 */
const IOREDIS_6_APP = `import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { createHooks, sqliteStore } from 'resthooks';
import { bullmqQueue } from 'resthooks/bullmq';

const connection = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const hooks = createHooks({
  events: { 'book.added': 'Book.created' },
  store: sqliteStore(new Database('hooks.db')),
  queue: bullmqQueue({ connection, queueName: process.env.QUEUE_NAME }),
  allowPrivateTargets: true,
  logger: false,
});
await hooks.start();
const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: process.env.RECEIVER_URL + '/bullmq' });
await hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' });
for (let tries = 0; ; tries++) {
  const [delivery] = await hooks.deliveries.list(subscription.id);
  if (delivery?.status === 'delivered') break;
  if (tries > 600) throw new Error('not delivered in time: ' + JSON.stringify(delivery));
  await new Promise((resolve) => setTimeout(resolve, 100));
}
console.log('RESULT ' + JSON.stringify({ id: subscription.id, secret: subscription.secret }));
await hooks.close();
await connection.quit();
`;

describe('the packed package in apps on the oldest and the newest supported majors of its peers', () => {
  for (const matrix of APPS) {
    it.concurrent(
      `${matrix.name} (${matrix.type === 'module' ? 'ESM' : 'CommonJS'}): installs without conflicts, type-checks strictly, delivers through every adapter`,
      async () => {
        const app = await scratchApp({ name: matrix.name, type: matrix.type, dependencies: matrix.dependencies });
        for (const [name, line] of Object.entries(matrix.resolves)) expect(app.version(name), name).toMatch(line);
        // The app's Hono and no other: `app.route('/api', api)` then type-checks and routes with one copy.
        expect(app.copies('hono')).toEqual([`${app.dir}/node_modules/hono`]);
        // Sequelize runs on pg here: no sqlite3 (another native build) is pulled in by any peer.
        expect(app.copies('sqlite3')).toEqual([]);

        const database = await createTestDatabase(inject('postgresUrl'));
        const receiver = await startReceiver();
        try {
          const client = new pg.Client({ connectionString: database.url });
          await client.connect();
          await client.query('create table authors (id serial primary key, name text not null, "ownerId" text not null)');
          await client.query('create table shelves (id serial primary key, name text not null, "ownerId" text not null)');
          await client.query('create table genres (id serial primary key, name text not null, "ownerId" text not null)');
          await client.query('create table notes (id serial primary key, text text not null, "ownerId" text not null)');
          await client.query('create table magazines (id serial primary key, title text not null, "ownerId" text not null)');
          await client.end();

          app.write('tsconfig.json', JSON.stringify(TSCONFIG, null, 2));
          for (const [file, text] of SOURCES) app.write(`src/${file}`, text);
          app.write('prisma/schema.prisma', prismaSchema(Number(app.version('@prisma/client').split('.')[0]), matrix.type));
          // Offline: no engine is downloaded (the schema engine is never run; tables are made with SQL above).
          const prismaEnv = { PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1', DATABASE_URL: database.url };
          const generated = await app.run(process.execPath, ['node_modules/prisma/build/index.js', 'generate', '--schema', 'prisma/schema.prisma'], { env: prismaEnv });
          expect(generated.code, generated.output).toBe(0);

          const compiled = await app.run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.']);
          expect(compiled.output).toBe('');
          expect(compiled.code).toBe(0);

          const ran = await app.run(process.execPath, ['dist/src/main.js'], {
            env: { RECEIVER_URL: receiver.url, REDIS_URL: inject('redisUrl'), QUEUE_NAME: basename(app.dir), DATABASE_URL: database.url },
            timeoutMs: 3 * 60_000,
          });
          expect(ran.code, ran.output).toBe(0);
          const result = JSON.parse(ran.stdout.split('\n').find((line) => line.startsWith('RESULT '))!.slice('RESULT '.length)) as { subscribed: Subscribed[]; spans: string[] };
          // The app's tracer got resthooks' spans, down to each delivery attempt.
          expect(result.spans).toEqual(expect.arrayContaining(['resthooks trigger', 'resthooks attempt']));

          const expected: Record<string, Array<{ event: string; data: object }>> = {
            express: [{ event: 'book.added', data: { title: 'Dune', ownerId: 'alice' } }],
            hono: [{ event: 'shelf.added', data: { name: 'Science fiction', ownerId: 'alice' } }],
            fastify: [
              { event: 'author.added', data: { name: 'Ursula K. Le Guin', ownerId: 'alice' } },
              { event: 'hook.test', data: {} },
            ],
            'mikro-orm': [{ event: 'genre.added', data: { name: 'Foundation', ownerId: 'alice' } }],
            sequelize: [{ event: 'note.added', data: { text: 'Read Le Guin', ownerId: 'alice' } }],
            kysely: [{ event: 'magazine.added', data: { title: 'Analog', ownerId: 'alice' } }],
          };
          expect(result.subscribed.map(({ via }) => via).sort()).toEqual(Object.keys(expected).sort());
          for (const { via, id, secret } of result.subscribed) {
            // At least once: a retried delivery may arrive twice, with the same webhook-id.
            const requests = receiver.received.filter((request) => request.path === `/${via}`);
            const payloads = requests.map((request) => verify(secret, request) as { hook: { id: string; event: string }; data: object });
            const events = [...new Set(payloads.map((payload) => payload.hook.event))].sort();
            expect(events, via).toEqual(expected[via]!.map(({ event }) => event).sort());
            for (const payload of payloads) {
              expect(payload.hook.id).toBe(id);
              expect(payload.data).toMatchObject(expected[via]!.find(({ event }) => event === payload.hook.event)!.data);
            }
          }
        } finally {
          await receiver.close();
          await database.drop();
        }
      },
      20 * 60_000,
    );
  }

  it.concurrent('ioredis 6 (ESM, bullmq 6): installs without conflicts and delivers through a worker on the app\'s own ioredis instance', async () => {
    const app = await scratchApp({ name: 'ioredis-6', type: 'module', dependencies: { bullmq: '^6.0.0', ioredis: '^6.0.0', 'better-sqlite3': '^12.0.0' } });
    expect(app.version('ioredis')).toMatch(/^6\./);
    expect(app.copies('ioredis')).toEqual([`${app.dir}/node_modules/ioredis`]);
    const receiver = await startReceiver();
    try {
      app.write('main.mjs', IOREDIS_6_APP);
      const ran = await app.run(process.execPath, ['main.mjs'], { env: { RECEIVER_URL: receiver.url, REDIS_URL: inject('redisUrl'), QUEUE_NAME: basename(app.dir) }, timeoutMs: 2 * 60_000 });
      expect(ran.code, ran.output).toBe(0);
      const { id, secret } = JSON.parse(ran.stdout.split('\n').find((line) => line.startsWith('RESULT '))!.slice('RESULT '.length)) as { id: string; secret: string };
      const requests = receiver.received.filter((request) => request.path === '/bullmq');
      expect(requests.length).toBeGreaterThanOrEqual(1);
      for (const request of requests) {
        const payload = verify(secret, request) as { hook: { id: string; event: string }; data: object };
        expect(payload.hook).toMatchObject({ id, event: 'book.added' });
        expect(payload.data).toMatchObject({ title: 'Dune', ownerId: 'alice' });
      }
    } finally {
      await receiver.close();
    }
  }, 10 * 60_000);
});
