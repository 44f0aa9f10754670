/**
 * The app process of test/scale-out.test.ts: it writes events through hooks on PostgreSQL + BullMQ and
 * only relays (`worker: false`); `resthooks worker` processes deliver. Started by the test, never by hand.
 *
 *   node --import tsx test/support/scale-out-app.ts <postgres url> <redis url> <queue name> <events> <ms between events>
 *
 * Event i is `Book.created` with `{ id: i, ownerId: 'alice' }`, one every few ms. A write that fails
 * (the database is down) is tried again, as an app would. Over IPC:
 *   → { type: 'started' }                      once the hooks run
 *   → { type: 'written', count, failures }     every 20 events, and { type: 'done', … } after the last
 *   ← { type: 'stop' }                         closes the hooks and exits 0
 */
import pg from 'pg';
import { pathToFileURL } from 'node:url';
import { createHooks, postgresStore, type Logger } from '../../src/index.js';
import { bullmqQueue } from '../../src/queue/bullmq/index.js';

export const SCALE_OUT_EVENTS = { 'book.added': 'Book.created' } as const;
export const SCALE_OUT_OWNER = 'alice';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const stderrLogger: Logger = {
  debug() {},
  info() {},
  warn: (obj: object, msg?: string) => console.error('warn', msg, JSON.stringify(obj)),
  error: (obj: object, msg?: string) => console.error('error', msg, JSON.stringify(obj)),
};

async function main(): Promise<void> {
  const [databaseUrl, redisUrl, queueName, events, everyMs] = process.argv.slice(2);
  if (!databaseUrl || !redisUrl || !queueName || !events || !everyMs || !process.send) {
    throw new Error('usage: node --import tsx test/support/scale-out-app.ts <postgres url> <redis url> <queue> <events> <ms> (spawned with an IPC channel)');
  }
  const send = (message: object) => process.send!(message);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });
  // pg-pool drops its own listener while a client is checked out; an idle client cut by a restart must not crash the app.
  pool.on('error', () => {});
  const hooks = createHooks({
    events: SCALE_OUT_EVENTS,
    store: postgresStore(pool),
    queue: bullmqQueue({ connection: redisUrl, queueName, worker: false }),
    logger: stderrLogger,
  });
  process.on('message', (message: { type: string }) => {
    if (message.type !== 'stop') return;
    void hooks.close({ timeout: 2000 }).finally(() => process.exit(0));
  });
  await hooks.start();
  send({ type: 'started' });

  let failures = 0;
  const total = Number(events);
  for (let id = 1; id <= total; id++) {
    while ((await hooks.model('Book', 'created', { id, ownerId: SCALE_OUT_OWNER })).status !== 'queued') {
      failures++;
      await sleep(100);
    }
    if (id % 20 === 0 || id === total) send({ type: id === total ? 'done' : 'written', count: id, failures });
    await sleep(Number(everyMs));
  }
}

// Run only as a process of its own: the test imports the constants above without starting anything.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
