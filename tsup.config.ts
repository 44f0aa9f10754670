import { rmSync } from 'node:fs';
import { defineConfig, type Options } from 'tsup';

const libraryEntries = {
  index: 'src/index.ts',
  api: 'src/api/index.ts',
  node: 'src/adapters/http/node-adapter.ts',
  express: 'src/adapters/http/express-adapter.ts',
  fastify: 'src/adapters/http/fastify-adapter.ts',
  typeorm: 'src/adapters/orm/typeorm-adapter.ts',
  prisma: 'src/adapters/orm/prisma-adapter.ts',
  drizzle: 'src/adapters/orm/drizzle-adapter.ts',
  kysely: 'src/adapters/orm/kysely-adapter.ts',
  sequelize: 'src/adapters/orm/sequelize-adapter.ts',
  'mikro-orm': 'src/adapters/orm/mikro-orm-adapter.ts',
  bullmq: 'src/queue/bullmq/index.ts',
};

const shared: Options = {
  dts: true,
  sourcemap: true,
  target: 'node20',
  // Dependencies and peer dependencies (the drivers and frameworks) stay external without a list.
  // Splitting puts the shared core in chunks, so `resthooks/api` and `resthooks` share one copy of the
  // core (one ResthooksError class for instanceof checks), in ESM and in CJS.
  splitting: true,
  clean: false,
};

// Two builds: ESM for every entry and the `resthooks` command (package.json `bin`, an ES module: it
// reads its version through import.meta.url), CJS for the library entries only. A CJS copy of the
// command would be shipped without any way to run it. The CLI shares the ESM chunks, so a `--config`
// module that imports `resthooks` meets the same classes as the command itself.
export default defineConfig((overrides) => {
  // tsup cleans per build and runs both builds at once; clean once, before either starts.
  rmSync(overrides.outDir ?? 'dist', { recursive: true, force: true });
  return [
    // The command has no importable API, so no declarations.
    { ...shared, entry: { ...libraryEntries, 'cli/main': 'src/cli/main.ts' }, dts: { entry: libraryEntries }, format: ['esm'] },
    { ...shared, entry: libraryEntries, format: ['cjs'] },
  ];
});
