import { defineConfig } from 'tsup';

// One build, every entry point. Splitting puts the shared core in chunks, so `resthooks/api` and
// `resthooks` share one copy of the core (one ResthooksError class for instanceof checks), in ESM and CJS.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    api: 'src/api/index.ts',
    node: 'src/adapters/http/node-adapter.ts',
    express: 'src/adapters/http/express-adapter.ts',
    fastify: 'src/adapters/http/fastify-adapter.ts',
    typeorm: 'src/adapters/orm/typeorm-adapter.ts',
    drizzle: 'src/adapters/orm/drizzle-adapter.ts',
    kysely: 'src/adapters/orm/kysely-adapter.ts',
    bullmq: 'src/queue/bullmq/index.ts',
    'cli/main': 'src/cli/main.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // Dependencies and peer dependencies (the drivers and frameworks) stay external without a list.
  splitting: true,
});
