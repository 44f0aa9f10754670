// prelude "app": the host applications a snippet mounts into.
declare const app: import('hono').Hono;
declare const expressApp: import('express').Express;
declare const fastify: import('fastify').FastifyInstance;
