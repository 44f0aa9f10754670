/**
 * `resthooks listen` as a real process: signed POSTs from fetch, then real deliveries from
 * `createHooks` to it, checked in what it prints.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret, signatureHeaders } from '../../src/index.js';
import { eventually, testHooks, type TestHooks } from '../support/hooks.js';
import { blocksFor, startCli, type CliProcess } from './cli-process.js';

const started: CliProcess[] = [];
const openHooks: TestHooks<string>[] = [];

afterAll(async () => {
  for (const hooks of openHooks) await hooks.close();
  for (const cli of started) cli.kill();
  await Promise.all(started.map((cli) => cli.exited));
});

/** Starts `listen` with `args` and returns it with the URL it printed. */
async function listen(...args: string[]): Promise<{ cli: CliProcess; url: string }> {
  const cli = startCli(['listen', '--port', '0', ...args]);
  started.push(cli);
  const [, url] = await cli.waitFor(/Listening on (http:\/\/127\.0\.0\.1:\d+\/\S*)/);
  return { cli, url: url! };
}

const now = () => Math.floor(Date.now() / 1000);
const envelope = (event: string, data: unknown) => JSON.stringify({ hook: { id: 'sub_1', event, target: 'http://127.0.0.1/' }, data });

/** Sends `bytes` as they are over one TCP connection and resolves with the whole response. */
function rawRequest(url: URL, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(url.port), url.hostname, () => socket.end(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<Response> {
  const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  await response.arrayBuffer();
  return response;
}

/** Waits until `listen` printed the block of `webhookId` (the `n`th one), and returns it. */
async function printed(cli: CliProcess, webhookId: string, n = 1): Promise<string> {
  return eventually(() => {
    const block = blocksFor(cli.stdout(), webhookId)[n - 1];
    if (!block) throw new Error(`no block ${n} for ${webhookId} in:\n${cli.stdout()}`);
    return block;
  }, 10_000);
}

describe('resthooks listen', () => {
  const secret = generateSecret();
  let receiver: { cli: CliProcess; url: string };

  beforeAll(async () => {
    receiver = await listen('--secret', secret);
  });

  it('prints its URL, on the port the system picked for --port 0', () => {
    expect(receiver.url).toMatch(/^http:\/\/127\.0\.0\.1:(?!0\/)\d+\/$/);
    expect(receiver.cli.stdout()).toContain('Verifying Standard Webhooks signatures with 1 secret');
  });

  it('verifies a signed delivery: ✓, the event, the webhook-id, attempt 1 and the pretty JSON body', async () => {
    const body = envelope('book.added', { id: 1, title: 'The Two Towers' });
    const response = await post(receiver.url, body, signatureHeaders('dlv_valid', now(), body, [secret]));
    expect(response.status).toBe(200);
    const block = await printed(receiver.cli, 'dlv_valid');
    const [headline] = block.split('\n');
    expect(headline).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}book\.added {2}attempt 1 {2}✓ signature {2}→ 200$/);
    expect(block).toContain('  POST /  webhook-id: dlv_valid');
    expect(block).toContain('\n      "title": "The Two Towers"\n');
  });

  it('counts repeats of the same webhook-id as attempts', async () => {
    const body = envelope('book.added', { id: 2 });
    for (let i = 0; i < 2; i++) await post(receiver.url, body, signatureHeaders('dlv_retry', now(), body, [secret]));
    expect(await printed(receiver.cli, 'dlv_retry', 2)).toContain('attempt 2 (repeat)  ✓ signature');
  });

  it('shows ✗ for a bad signature', async () => {
    const body = envelope('book.changed', { id: 3 });
    const response = await post(receiver.url, body, signatureHeaders('dlv_forged', now(), body, [generateSecret()]));
    expect(response.status).toBe(200);
    const block = await printed(receiver.cli, 'dlv_forged');
    expect(block.split('\n')[0]).toContain('book.changed  attempt 1  ✗ signature: signature does not match the secret');
  });

  it('shows ✗ for a tampered body and for a stale timestamp', async () => {
    const body = envelope('book.changed', { id: 4 });
    await post(receiver.url, body.replace('4', '5'), signatureHeaders('dlv_tampered', now(), body, [secret]));
    expect((await printed(receiver.cli, 'dlv_tampered')).split('\n')[0]).toContain('✗ signature');
    await post(receiver.url, body, signatureHeaders('dlv_stale', now() - 600, body, [secret]));
    expect((await printed(receiver.cli, 'dlv_stale')).split('\n')[0]).toMatch(/✗ signature: timestamp too old \(\d+ s ago; tolerance 300 s\)/);
  });

  it('accepts a rotation header when one of the two signatures is made with its secret', async () => {
    const body = envelope('book.added', { id: 6 });
    await post(receiver.url, body, signatureHeaders('dlv_rotated', now(), body, [generateSecret(), secret]));
    expect((await printed(receiver.cli, 'dlv_rotated')).split('\n')[0]).toContain('✓ signature');
  });

  it('prints control characters from bodies and headers escaped, never raw, to the terminal', async () => {
    // Raw HTTP, so the header bytes are exactly these: 0x9b is CSI on terminals that take 8-bit controls.
    const json = '{"hook":{"event":"book.added\\u001b]0;pwned\\u0007"},"data":{"title":"\u009b2J\\u001b[31mred\u202egnp.exe"}}';
    const raw = 'not json \u001b[2J\u001b]52;c;Y2xpcA==\u0007\rfake ✓ signature\u0000';
    for (const [id, body] of [['dlv_esc\u009b31m', json], ['dlv_raw\u009b31m', raw]] as const) {
      const bytes = Buffer.from(body);
      const head = [
        'POST / HTTP/1.1',
        'host: 127.0.0.1',
        `webhook-id: ${id}`,
        `webhook-timestamp: ${now()}\u009b2J`,
        'webhook-signature: v1,AAAA',
        'content-type: application/json',
        `content-length: ${bytes.length}`,
        'connection: close',
      ].join('\r\n');
      expect(await rawRequest(new URL(receiver.url), Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), bytes]))).toMatch(/^HTTP\/1\.1 200 /);
    }
    const escaped = await printed(receiver.cli, 'dlv_esc\\u009b31m');
    expect(escaped.split('\n')[0]).toContain('book.added\\u001b]0;pwned\\u0007  attempt 1  ✗ signature: webhook-timestamp "');
    expect(escaped.split('\n')[0]).toMatch(/\d\\u009b2J" is not Unix seconds/);
    expect(escaped).toContain('"title": "\\u009b2J\\u001b[31mred\\u202egnp.exe"');
    const rawBlock = await printed(receiver.cli, 'dlv_raw\\u009b31m');
    expect(rawBlock).toContain('  (not JSON)\n  not json \\u001b[2J\\u001b]52;c;Y2xpcA==\\u0007\\u000dfake ✓ signature\\u0000');
    // Nothing a terminal would act on reached stdout (not a TTY here, so resthooks itself adds no colors).
    expect(receiver.cli.stdout()).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
  });

  it('answers requests that are not deliveries without printing them as deliveries', async () => {
    const response = await fetch(receiver.url + 'favicon.ico');
    expect(response.status).toBe(405);
    await response.arrayBuffer();
    await eventually(() => expect(receiver.cli.stdout()).toContain('GET /favicon.ico  ignored → 405'));
  });

  it('answers with --status (410) and says when it checks no signature', async () => {
    const { cli, url } = await listen('--status', '410', '--path', '/hooks');
    expect(cli.stdout()).toContain('Not verifying signatures');
    expect(url).toMatch(/\/hooks$/);
    const body = envelope('book.removed', { id: 7 });
    const response = await post(url, body, signatureHeaders('dlv_gone', now(), body, [secret]));
    expect(response.status).toBe(410);
    const block = await printed(cli, 'dlv_gone');
    expect(block.split('\n')[0]).toContain('book.removed  attempt 1  unsigned check: pass --secret  → 410');
    expect(block).toContain('POST /hooks  webhook-id: dlv_gone');
    const elsewhere = await fetch(url.replace(/\/hooks$/, '/other'), { method: 'POST', body });
    expect(elsewhere.status).toBe(404);
  });

  it('exits 1 with a clear message when the port is taken', async () => {
    const port = new URL(receiver.url).port;
    const cli = startCli(['listen', '--port', port]);
    started.push(cli);
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain(`resthooks listen: Port ${port} on 127.0.0.1 is already in use`);
  });

  it('closes cleanly on SIGTERM, even with keep-alive connections open', async () => {
    const { cli, url } = await listen();
    await post(url, '{}', {});
    await cli.waitFor(/\(no hook\.event\)/);
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toContain('Stopped (SIGTERM).');
  });

  it('closes cleanly on SIGINT (Ctrl-C)', async () => {
    const { cli } = await listen();
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toContain('Stopped (SIGINT).');
  });
});

describe('resthooks listen receiving real deliveries from createHooks', () => {
  it('shows a hooks.model() delivery verified ✓, and still ✓ during a secret rotation', async () => {
    const test = await testHooks({ events: { 'book.added': 'Book.created' } });
    openHooks.push(test);
    const { hooks } = test;
    // The secret is made at subscribe time: subscribe first, then start the listener with it and point the target at it.
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: 'http://127.0.0.1:9/' });
    const { cli, url } = await listen('--secret', subscription.secret);
    await hooks.subscriptions.update(subscription.id, { target: url });

    const { deliveryIds } = await deliver(() => hooks.model('Book', 'created', { id: 1, title: 'The Hobbit', ownerId: 'alice' }));
    const block = await printed(cli, deliveryIds[0]!);
    expect(block.split('\n')[0]).toContain('book.added  attempt 1  ✓ signature  → 200');
    expect(block).toContain(`"id": "${subscription.id}"`);
    expect(block).toContain('"title": "The Hobbit"');

    // Rotation: deliveries now carry the new and the old signature; the listener knows only the old secret.
    await hooks.subscriptions.rotateSecret(subscription.id);
    const rotated = await deliver(() => hooks.model('Book', 'created', { id: 2, title: 'Unfinished Tales', ownerId: 'alice' }));
    const second = await printed(cli, rotated.deliveryIds[0]!);
    expect(second.split('\n')[0]).toContain('book.added  attempt 1  ✓ signature');
    expect(second).toContain('"title": "Unfinished Tales"');

    /** Triggers, waits until delivered, and returns the delivery ids from the store. */
    async function deliver(trigger: () => Promise<unknown>): Promise<{ deliveryIds: string[] }> {
      const before = new Set((await hooks.deliveries.list(subscription.id)).map((d) => d.id));
      await trigger();
      return eventually(async () => {
        const fresh = (await hooks.deliveries.list(subscription.id)).filter((d) => !before.has(d.id));
        expect(fresh.map((d) => d.status)).toEqual(['delivered']);
        return { deliveryIds: fresh.map((d) => d.id) };
      }, 10_000);
    }
  });

  it('with --status 410 the subscription is deleted, as REST Hooks says', async () => {
    const test = await testHooks({ events: { 'book.added': 'Book.created' } });
    openHooks.push(test);
    const { hooks } = test;
    const { cli, url } = await listen('--status', '410');
    const subscription = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: url });
    await hooks.model('Book', 'created', { id: 3, title: 'Silmarillion', ownerId: 'alice' });
    await cli.waitFor(/book\.added {2}attempt 1 {2}unsigned check: pass --secret {2}→ 410/, 10_000);
    await eventually(async () => expect(await hooks.subscriptions.get(subscription.id)).toBeUndefined(), 10_000);
  });
});
