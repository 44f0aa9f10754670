/**
 * A tiny app for test/minified-models.test.ts, bundled with esbuild `--minify` (which renames its
 * classes) and run as its own process:
 *
 *   NODE_PATH=<repo>/node_modules node app.cjs <sqlite file> <receiver url>
 *
 * It triggers events through classes, then waits until they are delivered and prints one JSON line:
 * the class names as the bundle sees them, each trigger's result, and the warnings logged.
 */
import Database from 'better-sqlite3';
import { createHooks, resthooksModel, sqliteStore, type Logger } from '../../src/index.js';

class Book {
  static [resthooksModel] = 'Book';
  constructor(
    readonly id: number,
    readonly title: string,
    readonly ownerId: string,
  ) {}
}

class Author {
  static resthooksModel = 'Author';
  constructor(
    readonly id: number,
    readonly ownerId: string,
  ) {}
}

/** Names no model: only its (renamed) class name is left. */
class Review {
  constructor(
    readonly id: number,
    readonly ownerId: string,
  ) {}
}

async function main(): Promise<void> {
  const [file, target] = process.argv.slice(2) as [string, string];
  const warnings: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (_obj, msg) => warnings.push(msg ?? ''), error: (obj, msg) => console.error(msg, obj) };
  const hooks = createHooks({
    events: { 'book.added': 'Book.created', 'book.read': 'Book.read', 'author.added': 'Author.created', 'review.added': 'Review.created' },
    store: sqliteStore(new Database(file)),
    logger,
    allowPrivateTargets: true,
    resolver: async () => [{ address: '127.0.0.1', family: 4 }],
    delivery: { pollInterval: 50 },
  });
  await hooks.start();
  for (const event of ['book.added', 'book.read', 'author.added', 'review.added'] as const) await hooks.subscriptions.create({ owner: 'alice', event, target });
  const book = new Book(1, 'Dune', 'alice');
  const review = new Review(3, 'alice');
  const results = {
    classNames: [Book.name, Author.name, Review.name],
    bookCreated: await hooks.model(Book, 'created', book),
    bookRead: await hooks.action(book, 'read'),
    authorCreated: await hooks.action(new Author(2, 'alice'), 'created'),
    reviewCreated: await hooks.action(review, 'created'),
    reviewCreatedAgain: await hooks.action(review, 'created'),
    reviewNamed: await hooks.action(review, 'created', { model: 'Review' }),
  };
  await hooks.idle({ timeout: '30s' });
  await hooks.close();
  process.stdout.write(`${JSON.stringify({ ...results, warnings })}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
