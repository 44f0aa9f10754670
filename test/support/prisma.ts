/**
 * Prisma Clients for the tests, generated at run time (nothing generated is committed): `prisma generate`
 * runs offline in a temp directory, whose `node_modules` link points at the project's so the generated
 * client finds `@prisma/client`. The schema engine is never needed (`PRISMA_SCHEMA_ENGINE_BINARY=/bin/false`);
 * tables are created with SQL. The generated client's types do not exist at compile time: tests see it
 * through the small structural types below.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './hooks.js';

export type PrismaProvider = 'sqlite' | 'postgresql';

export interface Row {
  [field: string]: unknown;
}
type Call = (args?: object) => Promise<any>;
/** A model's client property (`prisma.book`), as the tests call it. */
export interface ModelDelegate {
  create: Call;
  update: Call;
  upsert: Call;
  delete: Call;
  findMany: Call;
  findUnique: Call;
  createMany: Call;
  updateMany: Call;
  deleteMany: Call;
  createManyAndReturn: Call;
  updateManyAndReturn: Call;
}
export interface TestPrismaClient {
  book: ModelDelegate;
  shelf: ModelDelegate;
  $transaction<T>(work: (tx: TestPrismaClient) => Promise<T>, options?: object): Promise<T>;
  $transaction(batch: readonly PromiseLike<unknown>[]): Promise<unknown[]>;
  $executeRawUnsafe(sql: string, ...values: unknown[]): Promise<number>;
  $queryRawUnsafe(sql: string, ...values: unknown[]): Promise<Row[]>;
  $extends: unknown;
  $disconnect(): Promise<void>;
}
/** `wrap`: applied to the driver adapter factory before the client gets it (`resthooksAdapter`). */
export type PrismaClientFactory = (url: string, wrap?: <F extends { connect(): Promise<object> }>(adapter: F) => F) => TestPrismaClient;

/** The test schema: `Book` (mapped by the events) and `Shelf` (in no event). */
const MODELS = `
model Book {
  id      Int    @id @default(autoincrement())
  title   String
  pages   Int
  ownerId String
  @@map("books")
}

model Shelf {
  id   Int    @id @default(autoincrement())
  name String @unique
  @@map("shelves")
}
`;

/** The tables of the schema above, for each database. */
export const PRISMA_TABLES: Record<PrismaProvider, string[]> = {
  sqlite: [
    'create table books (id integer primary key autoincrement, title text not null, pages integer not null, "ownerId" text not null)',
    'create table shelves (id integer primary key autoincrement, name text not null unique)',
  ],
  postgresql: [
    'create table books (id serial primary key, title text not null, pages integer not null, "ownerId" text not null)',
    'create table shelves (id serial primary key, name text not null unique)',
  ],
};

const projectModules = fileURLToPath(new URL('../../node_modules', import.meta.url));

/**
 * Generates a client for `provider` (in `dir`/generated, beside a `node_modules` link) and returns a factory of clients on a database URL (a SQLite file
 * path, or a PostgreSQL URL), through Prisma's driver adapters. About a second.
 */
export async function generatePrismaClient(provider: PrismaProvider): Promise<{ create: PrismaClientFactory; dir: string; cleanup(): void }> {
  const dir = tempDir();
  symlinkSync(projectModules, join(dir.path, 'node_modules'), 'dir');
  const schema = join(dir.path, 'schema.prisma');
  const output = join(dir.path, 'generated');
  mkdirSync(output);
  writeFileSync(
    schema,
    `generator client {\n  provider = "prisma-client"\n  output = "${output}"\n  moduleFormat = "esm"\n}\n\ndatasource db {\n  provider = "${provider}"\n}\n${MODELS}`,
  );
  const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
  await promisify(execFile)(process.execPath, [cli, 'generate', '--schema', schema], {
    cwd: dir.path,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    timeout: 120_000,
  });
  const generated = (await import(pathToFileURL(join(output, 'client.ts')).href)) as { PrismaClient: new (options: object) => TestPrismaClient };
  // Prisma's defaults (2 s to start a transaction, 5 s to run it) are too tight for a loaded test machine.
  const transactionOptions = { maxWait: 30_000, timeout: 30_000 };
  if (provider === 'sqlite') {
    const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
    return {
      create: (url, wrap = (adapter) => adapter) => new generated.PrismaClient({ adapter: wrap(new PrismaBetterSqlite3({ url: `file:${url}` })), transactionOptions }),
      dir: dir.path,
      cleanup: dir.cleanup,
    };
  }
  const { PrismaPg } = await import('@prisma/adapter-pg');
  return {
    create: (url, wrap = (adapter) => adapter) => new generated.PrismaClient({ adapter: wrap(new PrismaPg({ connectionString: url, max: 4 })), transactionOptions }),
    dir: dir.path,
    cleanup: dir.cleanup,
  };
}
