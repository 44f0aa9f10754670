/**
 * Model names that survive minification: a minifier renames classes (esbuild `--minify` turns `Book`
 * into `o`), so classes that declare their model name still fire their events, and a class known only
 * by a name that matches no mapped model is warned about, once.
 */
import { execFile } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resthooksModel, type Logger } from '../src/index.js';
import { tempDir, testHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, warn: (_obj, msg) => warnings.push(msg ?? ''), error() {} };
}

describe('model names that survive minification', () => {
  let receiver: Receiver;
  const dir = tempDir();
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    dir.cleanup();
  });

  it('an app bundled with esbuild --minify gets the events of classes that declare their model, and a warning for one that does not', async () => {
    const bundle = join(dir.path, 'app.cjs');
    await build({
      entryPoints: [join(ROOT, 'test/support/minified-app.ts')],
      outfile: bundle,
      bundle: true,
      minify: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      logLevel: 'silent',
      // Native and optional drivers stay outside the bundle; NODE_PATH finds them.
      external: ['better-sqlite3', 'pg', 'bullmq', 'ioredis'],
    });
    const { stdout } = await promisify(execFile)(process.execPath, [bundle, join(dir.path, 'hooks.db'), receiver.url], {
      env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
      timeout: 60_000,
    });
    const report = JSON.parse(stdout) as {
      classNames: string[];
      warnings: string[];
      [trigger: string]: unknown;
    };

    // The bundle really renamed the classes.
    expect(report.classNames).not.toContain('Book');
    expect(report.classNames).not.toContain('Author');
    expect(report.classNames).not.toContain('Review');
    const minifiedReview = report.classNames[2];

    expect(report.bookCreated).toMatchObject({ status: 'queued' });
    expect(report.bookRead).toMatchObject({ status: 'queued' });
    expect(report.authorCreated).toMatchObject({ status: 'queued' });
    expect(report.reviewCreated).toEqual({ status: 'ignored' });
    expect(report.reviewCreatedAgain).toEqual({ status: 'ignored' });
    expect(report.reviewNamed).toMatchObject({ status: 'queued' });
    // Once, however often the class is triggered; naming what was seen and what is mapped.
    expect(report.warnings).toEqual([expect.stringContaining(`class "${minifiedReview}" matches no mapped model (mapped: Book, Author, Review)`)]);
    expect(report.warnings[0]).toContain("static resthooksModel = 'Book'");
    expect(report.warnings[0]).toContain("{ model: 'Book' }");

    const events = receiver.received.map((request) => `${request.json.hook.event}:${request.json.data.id}`).sort();
    expect(events).toEqual(['author.added:2', 'book.added:1', 'book.read:1', 'review.added:3']);
    expect(receiver.received.find((request) => request.json.hook.event === 'book.added')!.json.data).toEqual({ id: 1, title: 'Dune', ownerId: 'alice' });
  }, 120_000);

  it('TypeORM decorated entities in a minified bundle fire by their declared model name or their table name', async () => {
    // Decorated entities need TypeScript's legacy decorators, so the app is compiled by esbuild alone (the
    // project's tsconfig has standard decorators); the app, resthooks' core and the adapter are bundled and
    // minified together, the packages left to node_modules.
    const app = tempDir();
    try {
      symlinkSync(join(ROOT, 'node_modules'), join(app.path, 'node_modules'), 'dir');
      const source = join(app.path, 'typeorm-app.ts');
      writeFileSync(
        source,
        `import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { createHooks, resthooksModel, sqliteStore } from ${JSON.stringify(join(ROOT, 'src/index.ts'))};
import { attachTypeorm } from ${JSON.stringify(join(ROOT, 'src/adapters/orm/typeorm-adapter.ts'))};
import Database from 'better-sqlite3';

// esbuild emits no decorator metadata: every column names its type.
@Entity('books')
class Book {
  static [resthooksModel] = 'Book';
  @PrimaryColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) title!: string;
  @Column({ type: 'varchar' }) ownerId!: string;
}

/** No declared name: the events map names its table. */
@Entity('magazines')
class Magazine {
  @PrimaryColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) title!: string;
  @Column({ type: 'varchar' }) ownerId!: string;
}

/** Named by neither: its class name is all it has, and the minifier changed it. */
@Entity()
class Review {
  @PrimaryColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) ownerId!: string;
}

const file = process.argv[2]!;
const dataSource = new DataSource({ type: 'better-sqlite3', database: file, entities: [Book, Magazine, Review], synchronize: true });
await dataSource.initialize();
const hooks = createHooks({
  events: { 'book.added': 'Book.created', 'magazine.added': 'magazines.created', 'review.added': 'Review.created' },
  store: sqliteStore(new Database(file)),
});
await hooks.migrate();
const typeorm = await attachTypeorm(dataSource, hooks);
await dataSource.transaction(async (manager) => {
  await manager.save(Book, { id: 1, title: 'Minified book', ownerId: 'alice' });
  await manager.save(Magazine, { id: 2, title: 'Minified magazine', ownerId: 'alice' });
  await manager.save(Review, { id: 3, ownerId: 'alice' });
});
const events: string[] = [];
for (const event of ['book.added', 'magazine.added', 'review.added']) for (const row of await hooks.recentEvents(event, { owner: 'alice' })) events.push(event + ':' + (row.data as { id: number }).id);
const metadata = (type: Function) => dataSource.getMetadata(type);
console.log(JSON.stringify({ mode: typeorm.mode, names: [Book, Magazine, Review].map((type) => metadata(type).name), reviewTable: metadata(Review).tableName, events: events.sort() }));
await dataSource.destroy();
await hooks.close();
`,
      );
      const bundle = join(app.path, 'typeorm-app.mjs');
      await build({
        entryPoints: [source],
        outfile: bundle,
        bundle: true,
        minify: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
        logLevel: 'error',
        tsconfigRaw: { compilerOptions: { experimentalDecorators: true } },
      });
      const { stdout } = await promisify(execFile)(process.execPath, [bundle, join(app.path, 'app.db')], { cwd: app.path, timeout: 60_000 });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { mode: string; names: string[]; reviewTable: string; events: string[] };
      // The bundle renamed the entity classes, and with them TypeORM's metadata names.
      expect(result.names).not.toContain('Book');
      expect(result.names).not.toContain('Magazine');
      expect(result.names).not.toContain('Review');
      expect(result.reviewTable).not.toBe('review');
      expect(result).toMatchObject({ mode: 'transaction', events: ['book.added:1', 'magazine.added:2'] });
    } finally {
      app.cleanup();
    }
  }, 120_000);

  it('a declared model name wins over the class name, for model(), action() and raw(); a subclass is its own model', async () => {
    class Renamed {
      static [resthooksModel] = 'Book';
      constructor(readonly ownerId = 'alice') {}
    }
    class Plain {
      static resthooksModel = 'Book';
      constructor(readonly ownerId = 'alice') {}
    }
    class Subclass extends Renamed {}
    const logger = recordingLogger();
    const { hooks, close } = await testHooks({ events: { 'book.added': 'Book.created', 'book.read': 'Book.read' }, logger });
    try {
      expect(await hooks.model(Renamed, 'created', new Renamed())).toMatchObject({ status: 'queued' });
      expect(await hooks.model(Plain, 'created', new Plain())).toMatchObject({ status: 'queued' });
      expect(await hooks.action(new Renamed(), 'read')).toMatchObject({ status: 'queued' });
      expect(await hooks.action(new Plain(), 'read')).toMatchObject({ status: 'queued' });
      expect(await hooks.raw('book.read', {}, { instance: new Renamed(), owner: 'alice' })).toMatchObject({ status: 'queued' });
      expect(await hooks.action(new Subclass(), 'read')).toEqual({ status: 'ignored' });
      expect(logger.warnings).toEqual([expect.stringContaining('class "Subclass" matches no mapped model (mapped: Book)')]);
    } finally {
      await close();
    }
  });

  it('warns once per class whose name matches no mapped model, also for raw() and a class passed to model(); never for names given', async () => {
    class Review {
      ownerId = 'alice';
    }
    class Comment {
      ownerId = 'alice';
    }
    const logger = recordingLogger();
    const { hooks, close } = await testHooks({ events: { 'book.added': 'Book.created', 'book.read': 'Book.read' }, logger });
    try {
      expect(await hooks.action(new Review(), 'created')).toEqual({ status: 'ignored' });
      expect(await hooks.action(new Review(), 'created')).toEqual({ status: 'ignored' });
      expect(await hooks.model(Review, 'created', new Review())).toEqual({ status: 'ignored' });
      expect(await hooks.raw('book.read', {}, { instance: new Comment(), owner: 'alice' })).toMatchObject({ status: 'dropped' });
      expect(await hooks.model('Review', 'created', new Review())).toEqual({ status: 'ignored' });
      expect(await hooks.action({ ownerId: 'alice' }, 'created', { model: 'Review' })).toEqual({ status: 'ignored' });
      expect(logger.warnings).toHaveLength(2);
      expect(logger.warnings[0]).toBe(
        'resthooks: class "Review" matches no mapped model (mapped: Book); its events are ignored. ' +
          "If it is one of them and a minifier renamed it, name its model: pass { model: 'Book' }, or declare static resthooksModel = 'Book' " +
          "(or static [resthooksModel] = 'Book') on the class.",
      );
      expect(logger.warnings[1]).toContain('class "Comment" matches no mapped model');
    } finally {
      await close();
    }
  });
});
