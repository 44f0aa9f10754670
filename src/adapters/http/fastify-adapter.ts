/**
 * `resthooks/fastify`: mount the API in a Fastify app (4.26 and later, 5) as a plugin. A conversion only; the app does
 * all routing.
 * @module
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { FetchApp } from './node-adapter.js';

export type { FetchApp };

/**
 * A Fastify plugin serving `app` under the prefix it is registered with. Inside the plugin's scope
 * the request body is handed to the API unparsed, so the API's own body checks and size limit apply.
 * @example
 * import Fastify from 'fastify';
 * import { createApi } from 'resthooks/api';
 * import { toFastify } from 'resthooks/fastify';
 *
 * const server = Fastify();
 * await server.register(toFastify(createApi(hooks, { authenticate })), { prefix: '/api' });
 */
export function toFastify(app: FetchApp): FastifyPluginAsync {
  return async (fastify) => {
    // Encapsulated: these parsers replace Fastify's only for this plugin's routes.
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    const prefix = fastify.prefix;
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const url = new URL(request.url.slice(prefix.length) || '/', `${request.protocol}://${hostOf(request)}`);
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, one);
      }
      const body = request.body instanceof Readable ? (Readable.toWeb(request.body) as ReadableStream<Uint8Array>) : null;
      const response = await app.fetch(new Request(url, { method: request.method, headers, body, ...(body ? { duplex: 'half' } : {}) }));
      // Fastify (5, and 4 since 4.26) sends a web Response as is: status, headers and streamed body.
      return reply.send(response);
    };
    // '/*' does not match the bare prefix ('/admin'), which the app serves too.
    fastify.all('/', handler);
    fastify.all('/*', handler);
  };
}

/** The request's host and port: `host` in Fastify 5; Fastify 4 has no `host`, and its `hostname` keeps the port. */
function hostOf(request: FastifyRequest): string {
  const host: unknown = (request as { host?: unknown }).host;
  return typeof host === 'string' ? host : request.hostname;
}
