// prelude "functions": the package's functions, for fragments that do not repeat their imports.
declare const createHooks: typeof import('resthooks').createHooks;
declare const sqliteStore: typeof import('resthooks').sqliteStore;
declare const postgresStore: typeof import('resthooks').postgresStore;
declare const bullmqQueue: typeof import('resthooks/bullmq').bullmqQueue;
declare const createApi: typeof import('resthooks/api').createApi;
declare const createAdminPage: typeof import('resthooks/api').createAdminPage;
declare const toExpress: typeof import('resthooks/express').toExpress;
declare const toFastify: typeof import('resthooks/fastify').toFastify;
declare const toNodeHandler: typeof import('resthooks/node').toNodeHandler;
declare const createServer: typeof import('node:http').createServer;
