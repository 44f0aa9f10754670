/**
 * A failing delivery in a process of its own, for test/never-silent.test.ts, which reads its stderr:
 *
 *   node --import tsx test/support/failing-delivery-child.ts <dir> [silent]
 *
 * The receiver (in this process, on 127.0.0.1) answers 500 to every attempt; the schedule allows two, so
 * the first is a failure retried and the second one given up on. Nothing is passed as `logger` (or
 * `false` with `silent`): what reaches stderr is the default logger's. Prints the subscription's secret as
 * the one line of stdout, so the test can check that it never reaches stderr.
 */
import Database from 'better-sqlite3';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHooks, sqliteStore } from '../../src/index.js';
import { closeServer, listen } from './receiver.js';

export const TARGET_TOKEN = 'query-token-do-not-log';
export const TARGET_PASSWORD = 'url-password-do-not-log';

async function main(): Promise<void> {
  const [dir, mode] = process.argv.slice(2);
  if (!dir) throw new Error('usage: failing-delivery-child.ts <dir> [silent]');
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(500).end('receiver down'));
  });
  const url = new URL(await listen(server));
  const hooks = createHooks({
    events: { 'book.added': 'Book.created' },
    store: sqliteStore(new Database(join(dir, 'hooks.db'))),
    allowPrivateTargets: true,
    delivery: { retry: { schedule: [0, 10], jitter: 0 }, pollInterval: 50 },
    ...(mode === 'silent' ? { logger: false as const } : {}),
  });
  await hooks.start();
  const target = `http://hook-user:${TARGET_PASSWORD}@127.0.0.1:${url.port}/hooks?token=${TARGET_TOKEN}`;
  const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target });
  process.stdout.write(`${subscription.secret}\n`);
  await hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' });
  // idle() does not wait for a retry that is not due yet (10 ms here): wait for the delivery to be given up on.
  for (const deadline = Date.now() + 30_000; ; await new Promise((resolve) => setTimeout(resolve, 20))) {
    const [delivery] = await hooks.deliveries.list(subscription.id);
    if (delivery?.status === 'failed') break;
    if (Date.now() > deadline) throw new Error(`the delivery was not given up on in 30 s: ${JSON.stringify(delivery)}`);
  }
  await hooks.idle({ timeout: '30s' });
  await hooks.close();
  await closeServer(server);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stdout.write(`child failed: ${String(error)}\n`);
    process.exit(1);
  });
}
