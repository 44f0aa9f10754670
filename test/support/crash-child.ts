/**
 * A dispatcher in its own process, for test/crash-safety.test.ts: the test kills it with SIGKILL and
 * starts another one on the same SQLite file.
 *
 *   node --import tsx test/support/crash-child.ts <sqlite file>
 *
 * It only delivers (the test process writes the outbox through its own, never started, hooks
 * instance). It talks to the test over IPC:
 *   → { type: 'started' }                   once the dispatcher runs
 *   ← { type: 'idle' }         → { type: 'idle', now }   after hooks.idle() resolves
 *   ← { type: 'advance', ms }  → { type: 'advanced', now }
 *        moves this process's clock forward, as if the process had been started `ms` later, so
 *        leases left by a killed process lapse without the test waiting a minute for them
 *   ← { type: 'stop' }         closes the hooks (draining) and exits 0
 */
import Database from 'better-sqlite3';
import { pathToFileURL } from 'node:url';
import { createHooks, sqliteStore } from '../../src/index.js';

export const CHILD_EVENTS = { 'thing.happened': null } as const;
/** The child's settings, exported so the test can reason about them (concurrency bounds repeats). */
export const CHILD_DELIVERY = { concurrency: 8, timeout: 2000, pollInterval: 50, retry: { schedule: [0, 50, 100, 200], jitter: 0 } } as const;

let offsetMs = 0;

type Message = { type: 'idle' } | { type: 'advance'; ms: number } | { type: 'stop' };

async function main(): Promise<void> {
  // A clock offset that every Date.now() in this process sees (the dispatcher, the store, the lease
  // arithmetic). Only ever moves forward, and only when the test asks.
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + offsetMs;
  const file = process.argv[2];
  if (!file || !process.send) throw new Error('usage: node --import tsx test/support/crash-child.ts <sqlite file> (spawned with an IPC channel)');
  const send = (message: object) => process.send!(message);
  const hooks = createHooks({
    events: CHILD_EVENTS,
    store: sqliteStore(new Database(file)),
    allowPrivateTargets: true,
    delivery: { ...CHILD_DELIVERY, retry: { ...CHILD_DELIVERY.retry, schedule: [...CHILD_DELIVERY.retry.schedule] } },
    logger: {
      debug() {},
      info() {},
      warn: (obj: object, msg?: string) => console.error('warn', msg, JSON.stringify(obj)),
      error: (obj: object, msg?: string) => console.error('error', msg, JSON.stringify(obj)),
    },
  });
  process.on('message', (message: Message) => {
    void (async () => {
      switch (message.type) {
        case 'idle':
          await hooks.idle({ timeout: '20s' });
          send({ type: 'idle', now: Date.now() });
          break;
        case 'advance':
          offsetMs += message.ms;
          hooks.notify();
          send({ type: 'advanced', now: Date.now() });
          break;
        case 'stop':
          await hooks.close({ timeout: 2000 });
          process.exit(0);
      }
    })().catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
  await hooks.start();
  send({ type: 'started' });
}

// Run only as a process of its own: the test imports the constants above without starting anything.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
