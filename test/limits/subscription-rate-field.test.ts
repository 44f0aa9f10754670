/**
 * A subscription's own `maxPerSecond`: stored on both engines, settable and clearable through
 * `hooks.subscriptions` and the REST API, read back with every claim an attempt is made from.
 */
import { afterEach, beforeEach, describe, expect, it, test } from 'vitest';
import { ValidationError } from '../../src/index.js';
import { newId } from '../../src/ids.js';
import { KyselyStore } from '../../src/store/kysely-store.js';
import { newDeliveryRow } from '../../src/store/rows.js';
import { resolveSecretStorage } from '../../src/store/secret-keys.js';
import { apiHarness, TARGET, type ApiHarness } from '../api/api-support.js';
import { ENGINES, TestDatabase, type Engine } from '../support/database.js';
import { testHooks, type TestHooks } from '../support/hooks.js';

describe.each(ENGINES)('maxPerSecond stored (%s)', (engine: Engine) => {
  let db: TestDatabase;
  let setup: TestHooks<'book.added'>;
  beforeEach(async () => {
    db = new TestDatabase(engine);
    await db.init();
    setup = await testHooks({ events: { 'book.added': 'Book.created' }, store: db.dialect() }, { start: false });
    await setup.hooks.migrate();
  });
  afterEach(async () => {
    await setup.close();
    await db.close();
  });

  it('is null by default, keeps fractions, changes and clears with update', async () => {
    const { subscriptions } = setup.hooks;
    const plain = await subscriptions.create({ owner: 'alice', event: 'book.added', target: 'http://127.0.0.1:9/a' });
    expect(plain.maxPerSecond).toBeNull();
    const limited = await subscriptions.create({ owner: 'alice', event: 'book.added', target: 'http://127.0.0.1:9/b', maxPerSecond: 0.5 });
    expect(limited.maxPerSecond).toBe(0.5);
    expect((await subscriptions.get(limited.id))?.maxPerSecond).toBe(0.5);
    expect((await subscriptions.update(limited.id, { maxPerSecond: 12 })).maxPerSecond).toBe(12);
    expect((await subscriptions.update(limited.id, { active: false })).maxPerSecond).toBe(12);
    expect((await subscriptions.update(limited.id, { maxPerSecond: null })).maxPerSecond).toBeNull();
    expect((await subscriptions.get(limited.id))?.maxPerSecond).toBeNull();
  });

  it('reaches the claim an attempt is made from', async () => {
    // The store the hooks use, with the keys that sealed the subscription's secret.
    const store = new KyselyStore(db.dialect(), resolveSecretStorage({}, process.env, true).box);
    const sub = await setup.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: 'http://127.0.0.1:9/a', maxPerSecond: 2.5 });
    const event = { id: newId('evt'), name: 'book.added', model: 'Book', action: 'created', owner: 'alice', all_owners: 0, data: '{}', body: null, status: 'done' as const, error: null, created_at: 1 };
    const delivery = newDeliveryRow(event.id, sub.id, 1);
    await store.append(event, [delivery]);
    const [claimed] = await store.claimDue(10, 2, 60_000);
    expect(claimed?.subscription?.maxPerSecond).toBe(2.5);
    const [loaded] = await store.loadClaims([delivery.id]);
    expect(loaded?.subscription?.maxPerSecond).toBe(2.5);
  });

  it('refuses what is not a positive number, storing nothing', async () => {
    const { subscriptions } = setup.hooks;
    for (const maxPerSecond of [0, -1, Number.NaN, Infinity, 2_000_000, '5' as unknown as number]) {
      await expect(subscriptions.create({ owner: 'alice', event: 'book.added', target: 'http://127.0.0.1:9/a', maxPerSecond })).rejects.toThrow(ValidationError);
    }
    expect((await subscriptions.list()).items).toHaveLength(0);
  });
});

describe('maxPerSecond in the REST API', () => {
  let h: ApiHarness;
  beforeEach(async () => {
    h = await apiHarness();
  });
  afterEach(() => h.close());

  test('absent unless set; POST sets it, PATCH changes it, null clears it', async () => {
    const plain = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET } })).json()) as Record<string, unknown>;
    expect(plain).not.toHaveProperty('maxPerSecond');
    const response = await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET, maxPerSecond: 3 } });
    expect(response.status).toBe(201);
    const created = (await response.json()) as { id: string; maxPerSecond?: number };
    expect(created.maxPerSecond).toBe(3);
    expect(await (await h.call('GET', `/hooks/${created.id}`)).json()).toMatchObject({ maxPerSecond: 3 });
    const patched = await h.call('PATCH', `/hooks/${created.id}`, { body: { maxPerSecond: 0.25 } });
    expect(await patched.json()).toMatchObject({ maxPerSecond: 0.25 });
    const cleared = (await (await h.call('PATCH', `/hooks/${created.id}`, { body: { maxPerSecond: null } })).json()) as Record<string, unknown>;
    expect(cleared).not.toHaveProperty('maxPerSecond');
    expect((await h.hooks.subscriptions.get(created.id))?.maxPerSecond).toBeNull();
  });

  test('400 invalid_field naming maxPerSecond, nothing stored', async () => {
    const before = h.snapshot();
    for (const maxPerSecond of [0, -3, 'fast', true, 5_000_000]) {
      const response = await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET, maxPerSecond } });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('invalid_field');
      expect(body.error.message).toContain('maxPerSecond');
    }
    expect(h.snapshot()).toBe(before);
  });

  test('documented in the OpenAPI schemas', async () => {
    const doc = (await (await h.call('GET', '/openapi.json')).json()) as { components: { schemas: Record<string, { properties: Record<string, unknown> }> } };
    for (const name of ['CreateSubscription', 'UpdateSubscription', 'Subscription']) expect(doc.components.schemas[name]!.properties).toHaveProperty('maxPerSecond');
  });
});
