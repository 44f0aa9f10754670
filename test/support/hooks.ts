import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHooks, sqliteStore, type Hooks, type HooksOptions, type StoreDialect } from '../../src/index.js';

/**
 * Tests never query a real DNS server (no traffic leaves 127.0.0.1): every host name resolves to
 * loopback, so even an accidental delivery to "example.com" stays on this machine.
 */
export const loopbackResolver = async (): Promise<Array<{ address: string; family: 4 }>> => [{ address: '127.0.0.1', family: 4 }];

/** A temporary directory removed by `cleanup()`. */
export function tempDir(): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), 'resthooks-test-'));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestHooks<E extends string> {
  hooks: Hooks<E>;
  /** The SQLite file under the hooks; '' when they were given a `store`. */
  file: string;
  close(): Promise<void>;
}

/**
 * Hooks delivering to loopback with a millisecond retry schedule, on a real SQLite file (a temp one,
 * or `file`) unless given a `store` (another engine, or a database other hooks share).
 */
export async function testHooks<const E extends string>(
  options: Omit<HooksOptions<E>, 'store'> & { file?: string; store?: StoreDialect },
  { start = true }: { start?: boolean } = {},
): Promise<TestHooks<E>> {
  const dir = options.file || options.store ? undefined : tempDir();
  const file = options.store ? '' : (options.file ?? join(dir!.path, 'hooks.db'));
  const hooks = createHooks<E>({
    allowPrivateTargets: true,
    resolver: loopbackResolver,
    ...options,
    delivery: { retry: { schedule: [0, 20, 40], jitter: 0 }, timeout: '2s', pollInterval: 50, ...options.delivery },
    store: options.store ?? sqliteStore(new Database(file)),
  });
  if (start) await hooks.start();
  return {
    hooks,
    file,
    async close() {
      await hooks.close({ timeout: 1000 });
      dir?.cleanup();
    },
  };
}

/** Polls `check` until it stops throwing (or `timeoutMs` passes, then rethrows its last error). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
