/**
 * Subscription secrets at rest, on every engine: sealed in the database (read from the raw columns),
 * plaintext to the API and the receiver's signature check, rotated to a new key by `resealSecrets()`
 * and by `resthooks secrets rotate` while rows under the old key keep delivering, plaintext rows of
 * an older database read and then sealed, and a clear start-up error for a key that is missing.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, generateSecretKey, resealSecrets, type HooksOptions, type Subscription } from '../src/index.js';
import { runCli } from './cli/cli-process.js';
import { ENGINES, TestDatabase } from './support/database.js';
import { eventually, testHooks, type TestHooks } from './support/hooks.js';
import { startReceiver, verify, type Receiver } from './support/receiver.js';

const EVENTS = { 'note.posted': null } as const;
type Event = keyof typeof EVENTS;
const K1 = { id: 'k1', key: generateSecretKey() };
const K2 = { id: 'k2', key: generateSecretKey() };
const envOf = (...keys: Array<{ id: string; key: string }>) => keys.map(({ id, key }) => `${id}:${key}`).join(',');

describe.each(ENGINES)('secrets at rest on %s', { timeout: 60_000 }, (engine) => {
  let db: TestDatabase;
  let receiver: Receiver;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
    receiver = await startReceiver();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    vi.unstubAllEnvs();
    await receiver.close();
    await db.close();
  });

  async function hooksWith(options: Partial<HooksOptions<Event>>, start = true): Promise<TestHooks<Event>> {
    const t = await testHooks<Event>({ events: EVENTS, store: db.dialect(), logger: false, ...options }, { start });
    closers.push(() => t.close());
    return t;
  }

  /** The stored columns, as the database holds them. */
  async function rawRow(id: string): Promise<{ secret: string; previous_secrets: string | null }> {
    const store = db.store();
    return store.db.selectFrom('resthooks_subscriptions').select(['secret', 'previous_secrets']).where('id', '=', id).executeTakeFirstOrThrow();
  }

  const subscribe = (t: TestHooks<Event>, owner: string) => t.hooks.subscriptions.create({ owner, event: 'note.posted', target: `${receiver.url}/${owner}` });

  /** Posts one note to `owner` and returns the request their receiver got. */
  async function deliver(t: TestHooks<Event>, owner: string) {
    const before = receiver.received.filter((r) => r.path === `/${owner}`).length;
    await t.hooks.raw('note.posted', { owner }, { owner });
    return eventually(() => {
      const got = receiver.received.filter((r) => r.path === `/${owner}`);
      expect(got.length).toBeGreaterThan(before);
      return got.at(-1)!;
    }, 20_000);
  }

  it('stores no plaintext: the columns are sealed under the first key; the API and the signatures use the secret', async () => {
    const t = await hooksWith({ secretKeys: [K1, K2] });
    const created = await subscribe(t, 'alice');
    expect(created.secret).toMatch(/^whsec_/);
    const raw = await rawRow(created.id);
    expect(raw.secret).toMatch(/^rhenc:v1:k1:/);
    expect(raw.secret).not.toContain(created.secret.slice('whsec_'.length, 16));
    expect((await t.hooks.subscriptions.get(created.id))?.secret).toBe(created.secret);
    expect((await t.hooks.subscriptions.list({ owner: 'alice' })).items[0]?.secret).toBe(created.secret);
    expect(verify(created.secret, await deliver(t, 'alice'))).toMatchObject({ data: { owner: 'alice' } });

    // A rotation seals the new secret and the old ones kept for the grace period; both still sign.
    const rotated = await t.hooks.subscriptions.rotateSecret(created.id);
    const afterRotation = await rawRow(created.id);
    expect(afterRotation.secret).toMatch(/^rhenc:v1:k1:/);
    expect(afterRotation.previous_secrets).toMatch(/^rhenc:v1:k1:/);
    for (const secret of [created.secret, rotated.secret]) {
      expect(afterRotation.secret).not.toContain(secret.slice('whsec_'.length, 16));
      expect(afterRotation.previous_secrets).not.toContain(secret.slice('whsec_'.length, 16));
    }
    const request = await deliver(t, 'alice');
    expect(verify(rotated.secret, request)).toMatchObject({ data: { owner: 'alice' } });
    expect(verify(created.secret, request)).toMatchObject({ data: { owner: 'alice' } });
  });

  it('key rotation: rows under the old key deliver until resealSecrets() moves every row to the new one, once', async () => {
    const old = await hooksWith({ secretKeys: [K1] });
    const subscriptions: Subscription[] = [];
    for (const owner of ['alice', 'bob', 'carol']) subscriptions.push(await subscribe(old, owner));
    const bob = await old.hooks.subscriptions.rotateSecret(subscriptions[1]!.id);
    await old.close();

    // The new key first, the old one still listed: old rows open and deliver.
    const next = await hooksWith({ secretKeys: [K2, K1] });
    expect((await rawRow(subscriptions[0]!.id)).secret).toMatch(/^rhenc:v1:k1:/);
    expect(verify(subscriptions[0]!.secret, await deliver(next, 'alice'))).toMatchObject({ data: { owner: 'alice' } });
    // A subscription made now is sealed under the new key.
    const dave = await subscribe(next, 'dave');
    expect((await rawRow(dave.id)).secret).toMatch(/^rhenc:v1:k2:/);

    const pages: number[] = [];
    const result = await resealSecrets(db.dialect(), { secretKeys: [K2, K1], batchSize: 2, onPage: (p) => pages.push(p.scanned) });
    expect(result).toEqual({ keyId: 'k2', scanned: 4, resealed: 3 });
    expect(pages).toEqual([2, 4, 4]);
    for (const { id } of [...subscriptions, dave]) {
      const raw = await rawRow(id);
      expect(raw.secret).toMatch(/^rhenc:v1:k2:/);
      if (raw.previous_secrets !== null) expect(raw.previous_secrets).toMatch(/^rhenc:v1:k2:/);
    }
    expect((await rawRow(bob.id)).previous_secrets).not.toBeNull();
    // Idempotent: a second run finds nothing to do.
    expect(await resealSecrets(db.dialect(), { secretKeys: [K2, K1] })).toEqual({ keyId: 'k2', scanned: 4, resealed: 0 });
    await next.close();

    // The old key can go: everything opens under the new one alone, old grace-period secrets included.
    const only = await hooksWith({ secretKeys: [K2] });
    const request = await deliver(only, 'bob');
    expect(verify(bob.secret, request)).toMatchObject({ data: { owner: 'bob' } });
    expect(verify(subscriptions[1]!.secret, request)).toMatchObject({ data: { owner: 'bob' } });
    expect((await only.hooks.subscriptions.get(subscriptions[2]!.id))?.secret).toBe(subscriptions[2]!.secret);
  });

  it('a key that rows are sealed under and that is missing stops the start-up, naming it; so does resealSecrets()', async () => {
    const writer = await hooksWith({ secretKeys: [K2] });
    await subscribe(writer, 'alice');
    await writer.close();
    const reader = await hooksWith({ secretKeys: [K1] }, false);
    const error = await reader.hooks.start().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('sealed under key "k2", which is not configured (configured: k1)');
    expect((error as Error).message).toContain('RESTHOOKS_SECRET_KEYS');
    await expect(resealSecrets(db.dialect(), { secretKeys: [K1] })).rejects.toThrow(/sealed under key "k2"/);
    // Plaintext by choice does not make sealed rows readable either.
    vi.stubEnv('RESTHOOKS_SECRET_KEYS', '');
    const plain = await hooksWith({ secretStorage: 'plaintext' }, false);
    await expect(plain.hooks.start()).rejects.toThrow(/sealed under key "k2", which is not configured \(no keys are configured\)/);
  });

  it('a running process that meets a row sealed under a key it lacks logs the error naming it, and loses nothing', async () => {
    const errors: string[] = [];
    const record = (obj: object, msg?: string) => void errors.push(`${msg ?? ''} ${String((obj as { err?: unknown }).err ?? '')}`);
    const logger = { debug() {}, info() {}, warn: record, error: record };
    const running = await hooksWith({ secretKeys: [K1], logger, finderRetry: { delay: 20, maxDelay: 50 } });
    const newer = await hooksWith({ secretKeys: [K2, K1] }, false);
    const created = await subscribe(newer, 'alice');
    await running.hooks.raw('note.posted', { owner: 'alice' }, { owner: 'alice' });
    await eventually(() => expect(errors.join('\n')).toContain('sealed under key "k2", which is not configured (configured: k1)'), 20_000);
    expect(receiver.received).toHaveLength(0);
    // The process that has the key delivers it.
    await newer.hooks.start();
    const [request] = await receiver.waitFor(1, 30_000);
    expect(verify(created.secret, request!)).toMatchObject({ data: { owner: 'alice' } });
  });

  it('in production, no key and no explicit choice is a ConfigError from createHooks that says what to set', async () => {
    vi.stubEnv('RESTHOOKS_SECRET_KEYS', '');
    await expect(hooksWith({ development: false })).rejects.toThrow(/no key is configured: set RESTHOOKS_SECRET_KEYS=.*secretStorage: 'plaintext'/);
    // Development falls back to plaintext, with one warning.
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (_: object, msg?: string) => void warnings.push(msg ?? '') };
    const dev = await hooksWith({ development: true, logger });
    expect(warnings).toEqual([expect.stringContaining('subscription secrets are stored unencrypted')]);
    const created = await subscribe(dev, 'alice');
    expect((await rawRow(created.id)).secret).toBe(created.secret);
  });

  it('plaintext rows of an older database deliver under keys, and `resthooks secrets rotate` seals them', async () => {
    const plain = await hooksWith({ secretStorage: 'plaintext' });
    const created = await subscribe(plain, 'alice');
    expect((await rawRow(created.id)).secret).toBe(created.secret);
    await plain.close();

    const keyed = await hooksWith({ secretKeys: [K1] });
    expect(verify(created.secret, await deliver(keyed, 'alice'))).toMatchObject({ data: { owner: 'alice' } });
    expect((await rawRow(created.id)).secret).toBe(created.secret);

    // The command, as an operator runs it, with the key from the environment.
    const location = db.url;
    const missing = await runCli(['secrets', 'rotate', '--db', location], { RESTHOOKS_SECRET_KEYS: '', NODE_ENV: '' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no key is configured: set RESTHOOKS_SECRET_KEYS=');
    const run = await runCli(['secrets', 'rotate', '--db', location, '--batch-size', '10'], { RESTHOOKS_SECRET_KEYS: envOf(K1) });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/1 of 1 subscriptions re-sealed; every secret is now sealed under key "k1"/);
    expect(run.stdout).not.toContain(K1.key);
    expect((await rawRow(created.id)).secret).toMatch(/^rhenc:v1:k1:/);
    expect(verify(created.secret, await deliver(keyed, 'alice'))).toMatchObject({ data: { owner: 'alice' } });
    const again = await runCli(['secrets', 'rotate', '--db', location], { RESTHOOKS_SECRET_KEYS: envOf(K1) });
    expect(again.stdout).toMatch(/0 of 1 subscriptions re-sealed/);

    // And back to plaintext, by choice, with the key still listed.
    expect(await resealSecrets(db.dialect(), { secretStorage: 'plaintext', secretKeys: [K1] })).toEqual({ keyId: null, scanned: 1, resealed: 1 });
    expect((await rawRow(created.id)).secret).toBe(created.secret);
  });

  it('re-sealing while another process rotates secrets leaves every row under the new key and every secret handed out valid', async () => {
    const app = await hooksWith({ secretKeys: [K2, K1] });
    const old = await hooksWith({ secretKeys: [K1] }, false);
    const subscriptions: Subscription[] = [];
    for (let n = 0; n < 12; n++) subscriptions.push(await subscribe(old, `owner${n}`));
    const rotations = Promise.all(subscriptions.map((s) => app.hooks.subscriptions.rotateSecret(s.id)));
    const [rotated] = await Promise.all([rotations, resealSecrets(db.dialect(), { secretKeys: [K2, K1], batchSize: 5 })]);
    for (const [index, { id }] of subscriptions.entries()) {
      const raw = await rawRow(id);
      expect(raw.secret).toMatch(/^rhenc:v1:k2:/);
      expect(raw.previous_secrets).toMatch(/^rhenc:v1:k2:/);
      expect((await app.hooks.subscriptions.get(id))?.secret).toBe(rotated[index]!.secret);
    }
    const request = await deliver(app, 'owner3');
    expect(verify(rotated[3]!.secret, request)).toMatchObject({ data: { owner: 'owner3' } });
    expect(verify(subscriptions[3]!.secret, request)).toMatchObject({ data: { owner: 'owner3' } });
  });
});

describe('resthooks worker and secrets', { timeout: 60_000 }, () => {
  it('in production without a key, or missing a key rows need, exits 1 with one line that says what to set', async () => {
    const db = new TestDatabase('sqlite');
    await db.init();
    try {
      const sealed = await testHooks<Event>({ events: EVENTS, store: db.dialect(), logger: false, secretKeys: [K2] }, { start: true });
      await sealed.hooks.subscriptions.create({ owner: 'alice', event: 'note.posted', target: 'http://127.0.0.1:9/x' });
      await sealed.close();
      // Redis is never reached: both stop before the queue connects.
      const args = ['worker', '--db', db.url, '--redis', 'redis://127.0.0.1:9'];
      const [noKey, wrongKey] = await Promise.all([
        runCli(args, { NODE_ENV: 'production', RESTHOOKS_SECRET_KEYS: '' }),
        runCli(args, { NODE_ENV: 'production', RESTHOOKS_SECRET_KEYS: envOf(K1) }),
      ]);
      expect(noKey.code).toBe(1);
      expect(noKey.stderr).toMatch(/^resthooks worker: Subscription secrets are encrypted at rest and no key is configured: set RESTHOOKS_SECRET_KEYS=/);
      expect(noKey.stderr.trim().split('\n')).toHaveLength(1);
      expect(wrongKey.code).toBe(1);
      expect(wrongKey.stderr).toMatch(/^resthooks worker: Cannot start on SQLite .*: Subscription secrets in the store are sealed under key "k2", which is not configured \(configured: k1\)/);
      expect(wrongKey.stderr).not.toContain(K1.key);
    } finally {
      await db.close();
    }
  });
});
