/**
 * The sender's undici parts come from undici's own modules, not its index: they are the very classes undici
 * exports (the file layout still matches the installed undici), and a process that delivers a webhook never
 * loads the index and what it brings (fetch, WebSocket, the cache, the mock agent).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent as IndexAgent, buildConnector as indexBuildConnector } from 'undici';
import { describe, expect, it } from 'vitest';
import { Agent, buildConnector } from './undici-core.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Sends one signed webhook through the engine to a receiver in the same process, then lists the undici modules it loaded. */
const CHILD = `
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import { createHooks, sqliteStore } from './src/index.ts';
const received = [];
const server = createServer((request, response) => { received.push(request.headers['webhook-id']); response.end('ok'); });
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(new Database(':memory:')), allowPrivateTargets: true, secretStorage: 'plaintext' });
await hooks.start();
await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: 'http://127.0.0.1:' + server.address().port + '/hook' });
await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
await hooks.close();
server.close();
const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('/node_modules/undici/')).map((path) => path.slice(path.indexOf('/node_modules/undici/') + 21));
console.log(JSON.stringify({ received, loaded }));
`;

describe('undici parts', () => {
  it('are the Agent and buildConnector undici exports', () => {
    expect(Agent).toBe(IndexAgent);
    expect(buildConnector).toBe(indexBuildConnector);
  });

  it('deliver a webhook without loading undici’s index', async () => {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: ROOT, timeout: 60_000 }, (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))),
    );
    const { received, loaded } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { received: string[]; loaded: string[] };
    expect(received).toHaveLength(1);
    expect(received[0]).toMatch(/^dlv_/);
    expect(loaded).toContain('lib/dispatcher/agent.js');
    expect(loaded).not.toContain('index.js');
    expect(loaded.filter((path) => path.startsWith('lib/web/fetch/'))).toEqual([]);
  });
});
