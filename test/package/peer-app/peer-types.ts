/**
 * resthooks' declarations name types from the app's peers (Express's `RequestHandler`, Fastify's
 * `FastifyPluginAsync`, TypeORM's `DataSource`, Hono, BullMQ's `ConnectionOptions`, Drizzle's `Table`
 * and `SQL`, MikroORM's `MikroORM`, Sequelize's `Sequelize`). Under `skipLibCheck`, a name this app's version of a peer lacks would quietly become `any`
 * and every use of it would compile: each must still be a real type here.
 */
import type { ResthooksApi } from 'resthooks/api';
import type { BullmqQueueOptions } from 'resthooks/bullmq';
import type { DrizzleHooks } from 'resthooks/drizzle';
import type { toExpress } from 'resthooks/express';
import type { toFastify } from 'resthooks/fastify';
import type { attachMikroOrm } from 'resthooks/mikro-orm';
import type { attachSequelize } from 'resthooks/sequelize';
import type { attachTypeorm } from 'resthooks/typeorm';

/**
 * `true` for a real type; `never` (so that `true` does not fit) for `any` and for what an unresolved name
 * leaves (which the usual `0 extends 1 & T` test does not catch): only those are wider than `unknown`.
 */
type Resolved<T> = unknown extends T ? never : true;

export const peerTypesResolved: {
  express: Resolved<ReturnType<typeof toExpress>>;
  fastify: Resolved<ReturnType<typeof toFastify>>;
  typeorm: Resolved<Parameters<typeof attachTypeorm>[0]['subscribers']>;
  hono: Resolved<ResthooksApi>;
  bullmq: Resolved<BullmqQueueOptions['connection']>;
  drizzleTable: Resolved<Parameters<DrizzleHooks['insert']>[1]>;
  drizzleSql: Resolved<Parameters<DrizzleHooks['update']>[3]>;
  mikroOrm: Resolved<Parameters<typeof attachMikroOrm>[0]['em']>;
  sequelize: Resolved<Parameters<typeof attachSequelize>[0]>;
} = { express: true, fastify: true, typeorm: true, hono: true, bullmq: true, drizzleTable: true, drizzleSql: true, mikroOrm: true, sequelize: true };
