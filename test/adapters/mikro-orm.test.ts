/**
 * resthooks/mikro-orm with MikroORM 6: the shared MikroORM suites (test/support/mikro-orm-suite.ts), an
 * ORM the adapter does not know refused at attach time, and a minified bundle.
 */
import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EntitySchema, MikroORM } from '@mikro-orm/core';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { describe, expect, it } from 'vitest';
import { attachMikroOrm, type MikroOrmLike } from '../../src/adapters/orm/mikro-orm-adapter.js';
import { tempDir, testHooks } from '../support/hooks.js';
import { mikroOrmSuites } from '../support/mikro-orm-suite.js';

mikroOrmSuites({ version: 6, EntitySchema, MikroORM, SqliteDriver: BetterSqliteDriver, PostgreSqlDriver });

describe('resthooks/mikro-orm and an ORM it does not know', () => {
  it('refuses at attach time a connection that is neither MikroORM 6 (Knex) nor 7 (Kysely), such as MongoDB\'s', async () => {
    const { hooks, close } = await testHooks({ events: { 'book.added': 'Book.created' } });
    try {
      // What a MongoDB connection offers: a client with no SQL transactions.
      const mongoLike = { em: { getConnection: () => ({ getClient: () => ({ db: () => ({}) }) }) } } as unknown as MikroOrmLike;
      await expect(attachMikroOrm(mongoLike, hooks)).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/MikroORM 6 \(Knex\) and 7 \(Kysely\)/) });
    } finally {
      await close();
    }
  });
});

describe('resthooks/mikro-orm 6 on better-sqlite3: the outbox statement on the transaction\'s own connection', () => {
  it('runs prepared on the connection, not through MikroORM and Knex; a rollback still drops it', async () => {
    const dir = tempDir();
    const file = join(dir.path, 'app.db');
    const { hooks, close } = await testHooks({ events: { 'book.added': 'Book.created' }, file });
    const queries: string[] = [];
    const Book = new EntitySchema<{ id: number; title: string; ownerId: string }>({
      name: 'Book',
      tableName: 'books',
      properties: { id: { type: 'number', primary: true, autoincrement: true }, title: { type: 'string' }, ownerId: { type: 'string', fieldName: 'owner_id' } },
    });
    const orm = await MikroORM.init({ driver: BetterSqliteDriver, dbName: file, entities: [Book], debug: ['query'], logger: (line: string) => void queries.push(line) });
    try {
      await orm.schema.createSchema();
      expect((await attachMikroOrm(orm, hooks)).mode).toBe('transaction');
      queries.length = 0;
      const em = orm.em.fork();
      await em.persistAndFlush(em.create(Book, { title: 'Kept', ownerId: 'alice' }));
      await expect(
        orm.em.fork().transactional(async (tx) => {
          await tx.persistAndFlush(tx.create(Book, { title: 'Rolled back', ownerId: 'alice' }));
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      expect(queries.filter((line) => line.includes('resthooks_events'))).toEqual([]);
      expect(queries.some((line) => /insert into `books`/i.test(line))).toBe(true);
      const titles = (await hooks.recentEvents('book.added', { owner: 'alice' })).map((event) => (event.data as { title: string }).title);
      expect(titles).toEqual(['Kept']);
    } finally {
      await orm.close(true);
      await close();
      dir.cleanup();
    }
  });
});

describe('resthooks/mikro-orm in a minified bundle', () => {
  it("fires for an EntitySchema named without a class, and by table name for one with a class (whose name MikroORM takes from the mangled class)", async () => {
    // A Next.js server build or esbuild --minify renames every class: the app, resthooks' core and the
    // adapter are bundled and minified together here, the packages left to node_modules.
    const dir = tempDir();
    try {
      const project = fileURLToPath(new URL('../../', import.meta.url));
      symlinkSync(join(project, 'node_modules'), join(dir.path, 'node_modules'), 'dir');
      const app = join(dir.path, 'minified-app.ts');
      writeFileSync(
        app,
        `import Database from 'better-sqlite3';
import { EntitySchema, MikroORM } from '@mikro-orm/core';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { createHooks, sqliteStore } from ${JSON.stringify(join(project, 'src/index.ts'))};
import { attachMikroOrm } from ${JSON.stringify(join(project, 'src/adapters/orm/mikro-orm-adapter.ts'))};
class Magazine { id; title; ownerId; }
const props = { id: { type: 'number', primary: true }, title: { type: 'string' }, ownerId: { type: 'string' } };
// No class: the schema's name is the model name, untouched by the minifier.
const BookSchema = new EntitySchema({ name: 'Book', tableName: 'books', properties: props });
// With a class, MikroORM takes the (mangled) class name and ignores \`name\`: only the table name survives.
const MagazineSchema = new EntitySchema({ class: Magazine, name: 'Magazine', tableName: 'magazines', properties: props });
const file = process.argv[2];
const orm = await MikroORM.init({ driver: BetterSqliteDriver, dbName: file, entities: [BookSchema, MagazineSchema] });
await orm.schema.createSchema();
const hooks = createHooks({ events: { 'book.added': 'Book.created', 'magazine.added': 'magazines.created' }, store: sqliteStore(new Database(file)) });
await hooks.migrate();
const mikro = await attachMikroOrm(orm, hooks);
await orm.em.fork().transactional(async (em) => {
  em.persist(em.create(BookSchema, { title: 'Minified book', ownerId: 'alice' }));
  em.persist(em.create(Magazine, { title: 'Minified magazine', ownerId: 'alice' }));
});
const titles = [];
for (const event of ['book.added', 'magazine.added']) for (const row of await hooks.recentEvents(event, { owner: 'alice' })) titles.push(row.data.title);
console.log(JSON.stringify({ mode: mikro.mode, magazineModel: MagazineSchema.meta.className, titles: titles.sort() }));
await orm.close(true);
await hooks.close();
`,
      );
      const bundle = join(dir.path, 'minified-app.mjs');
      await build({ entryPoints: [app], outfile: bundle, bundle: true, minify: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
      expect(readFileSync(bundle, 'utf8')).not.toContain('ResthooksSubscriber'); // the adapter's own class was renamed too
      const { stdout } = await promisify(execFile)(process.execPath, [bundle, join(dir.path, 'app.db')], { cwd: dir.path, timeout: 60_000 });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { mode: string; magazineModel: string; titles: string[] };
      expect(result.magazineModel).not.toBe('Magazine');
      expect(result).toMatchObject({ mode: 'transaction', titles: ['Minified book', 'Minified magazine'] });
    } finally {
      dir.cleanup();
    }
  });
});
