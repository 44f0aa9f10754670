/**
 * The bookstore demo serves the operator's endpoints beside its API: /healthz, /readyz and /metrics,
 * and its metrics follow a book added through the API to a real receiver.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createBookstore } from '../examples/bookstore/bookstore.js';
import { readConfig } from '../examples/bookstore/config.js';
import { ENGINES } from './support/database.js';
import { eventually, loopbackResolver, tempDir } from './support/hooks.js';
import { createTestDatabase } from './support/postgres.js';
import { parseExposition } from './support/prometheus.js';
import { startReceiver } from './support/receiver.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function engineEnv(engine: string): Promise<Record<string, string>> {
  if (engine === 'postgres') {
    const database = await createTestDatabase(inject('postgresUrl'));
    cleanups.push(() => database.drop());
    return { DATABASE_URL: database.url };
  }
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  return { RESTHOOKS_DB: join(dir.path, 'bookstore.db') };
}

describe.each(ENGINES)('the demo operations endpoints (%s)', (engine) => {
  it('answers /healthz, /readyz and /metrics, and its counters follow a delivery', async () => {
    const config = readConfig({ RESTHOOKS_RETRY_SCHEDULE: '0,30ms', RESTHOOKS_TIMEOUT: '2s', ...(await engineEnv(engine)) }, ['--no-tour']);
    const bookstore = await createBookstore(config, { resolver: loopbackResolver });
    cleanups.unshift(() => bookstore.close());
    const receiver = await startReceiver();
    cleanups.unshift(() => receiver.close());
    const { app, keys } = bookstore;
    const auth = { authorization: `Bearer ${keys.alice}`, 'content-type': 'application/json' };

    expect((await app.request('/healthz')).status).toBe(200);
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { store: { ok: true } } });
    expect((await app.request('/metrics', { method: 'POST' })).status).toBe(404);

    const subscribed = await app.request('/api/hooks', { method: 'POST', headers: auth, body: JSON.stringify({ event: 'book.added', target: receiver.url }) });
    expect(subscribed.status).toBe(201);
    const added = await app.request('/api/books', { method: 'POST', headers: auth, body: JSON.stringify({ title: 'Dune', pages: 412, fiction: true }) });
    expect(added.status).toBe(201);
    await receiver.waitFor(1, 20_000);
    await eventually(async () => {
      const metrics = await app.request('/metrics');
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const exposition = parseExposition(await metrics.text());
      expect(exposition.value('resthooks_triggers_total', { status: 'queued' })).toBeGreaterThanOrEqual(1);
      expect(exposition.value('resthooks_attempts_total', { outcome: 'delivered' })).toBe(1);
    }, 20_000);
  }, 60_000);
});
