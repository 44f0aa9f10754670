/**
 * Without `tx`, triggers never throw into the caller (except `raw()` for an undeclared event): every bad
 * instance, payload or owner resolver is a logged `{ status: 'failed' }` whose error has a named code. And
 * the size limit applies to the body that is sent, however it is made. Real SQLite file, real receivers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envelopeOverheadBytes } from '../src/delivery/envelope.js';
import { ResthooksError, type HookInfo, type Logger, type TriggerResult } from '../src/index.js';
import { MAX_TARGET_LENGTH } from '../src/subscriptions.js';
import { testHooks, type TestHooks } from './support/hooks.js';
import { startReceiver, verify, type Receiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created', 'book.read': 'Book.read', 'user.logged_in': null } as const;
const LIMIT = 32 * 1024;

class Book {
  constructor(
    public id: number,
    public title: string,
    public ownerId: unknown = 'alice',
  ) {}
}

let receiver: Receiver;
let t: TestHooks<keyof typeof EVENTS>;
let errors: Array<{ obj: object; msg: string | undefined }>;
const closers: Array<() => Promise<void>> = [];

beforeEach(async () => {
  receiver = await startReceiver();
  errors = [];
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (obj, msg) => void errors.push({ obj, msg }) };
  t = await testHooks({
    events: EVENTS,
    logger,
    delivery: { maxPayloadBytes: LIMIT },
    owner: (instance) => {
      const owner = (instance as Book).ownerId;
      if (owner === 'throws') throw new Error('owner lookup failed');
      return owner as string;
    },
  });
  closers.push(() => t.close(), () => receiver.close());
  await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/a` });
  await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.read', target: `${receiver.url}/b` });
  await t.hooks.subscriptions.create({ owner: 'alice', event: 'user.logged_in', target: `${receiver.url}/c` });
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const circular = () => {
  const value: Record<string, unknown> = { ownerId: 'alice' };
  value.self = value;
  return value;
};
const throwingToJson = () => ({ ownerId: 'alice', toJSON: () => { throw new Error('toJSON broke'); } });

/** The trigger settles (never rejects) to a logged failure with this code; nothing is recorded or sent. */
async function expectFailed(name: string, trigger: () => Promise<TriggerResult>, code: string): Promise<void> {
  const logged = errors.length;
  let result: TriggerResult;
  try {
    result = await trigger();
  } catch (error) {
    throw new Error(`${name}: threw ${String(error)} instead of a failed result`);
  }
  expect(result, name).toMatchObject({ status: 'failed', error: { code } });
  expect((result as { error: Error }).error, name).toBeInstanceOf(ResthooksError);
  expect(errors.length, `${name}: logged`).toBe(logged + 1);
}

type Case = readonly [name: string, trigger: () => Promise<TriggerResult>, code: string];

// Functions of the hooks made in beforeEach: each case runs against fresh hooks.
const BAD_INPUT: readonly Case[] = [
  ['model(undefined)', () => t.hooks.model(undefined as unknown as string, 'created', new Book(1, 'x')), 'invalid_field'],
  ['model({ name: 5 })', () => t.hooks.model({ name: 5 } as unknown as string, 'created', new Book(1, 'x')), 'invalid_field'],
  ['model, instance undefined', () => t.hooks.model('Book', 'created', undefined as unknown as object), 'invalid_field'],
  ['model, instance null', () => t.hooks.model('Book', 'created', null as unknown as object), 'invalid_field'],
  ['model, toJSON throws', () => t.hooks.model('Book', 'created', throwingToJson()), 'serialization_failed'],
  ['model, circular', () => t.hooks.model('Book', 'created', circular()), 'serialization_failed'],
  ['model, owner resolver throws', () => t.hooks.model('Book', 'created', new Book(1, 'x', 'throws')), 'owner_failed'],
  ['action(undefined)', () => t.hooks.action(undefined as unknown as object, 'read'), 'invalid_field'],
  ['action(null) with a model', () => t.hooks.action(null as unknown as object, 'read', { model: 'Book' }), 'invalid_field'],
  ['action, plain object and model undefined', () => t.hooks.action({ ownerId: 'alice' }, 'read', { model: undefined }), 'invalid_field'],
  ['action, toJSON throws', () => t.hooks.action(throwingToJson(), 'read', { model: 'Book' }), 'serialization_failed'],
  ['action, circular', () => t.hooks.action(circular(), 'read', { model: 'Book' }), 'serialization_failed'],
  ['action, owner resolver throws', () => t.hooks.action(new Book(1, 'x', 'throws'), 'read'), 'owner_failed'],
  ['action, serializeHook throws', () => t.hooks.action(Object.assign(new Book(1, 'x'), { serializeHook: () => { throw new Error('no'); } }), 'read'), 'serialization_failed'],
  ['action, payloadOverride throws', () => t.hooks.action(new Book(1, 'x'), 'read', { payloadOverride: () => { throw new Error('no'); } }), 'serialization_failed'],
  ['raw, circular', () => t.hooks.raw('user.logged_in', circular(), { owner: 'alice' }), 'serialization_failed'],
  ['raw, toJSON throws', () => t.hooks.raw('user.logged_in', throwingToJson(), { owner: 'alice' }), 'serialization_failed'],
  ['raw, owner resolver throws', () => t.hooks.raw('user.logged_in', {}, { instance: new Book(1, 'x', 'throws') }), 'owner_failed'],
  ['raw, circular, envelope: false', () => t.hooks.raw('user.logged_in', circular(), { owner: 'alice', envelope: false }), 'serialization_failed'],
];

const big = () => 'x'.repeat(LIMIT);
const OVER_THE_LIMIT: readonly Case[] = [
  ['payloadOverride value', () => t.hooks.model('Book', 'created', new Book(1, 'x'), { payloadOverride: { blob: big() } }), 'payload_too_large'],
  ['payloadOverride function', () => t.hooks.model('Book', 'created', new Book(2, 'x'), { payloadOverride: (hook) => ({ to: hook.id, blob: big() }) }), 'payload_too_large'],
  ['serializeHook', () => t.hooks.model('Book', 'created', Object.assign(new Book(3, 'x'), { serializeHook: (hook: HookInfo) => ({ to: hook.id, blob: big() }) })), 'payload_too_large'],
  ['extra members', () => t.hooks.model('Book', 'created', new Book(4, 'x'), { extra: { changes: [big()] } }), 'payload_too_large'],
  ['raw', () => t.hooks.raw('user.logged_in', big(), { owner: 'alice' }), 'payload_too_large'],
  ['raw, envelope: false', () => t.hooks.raw('user.logged_in', big(), { owner: 'alice', envelope: false }), 'payload_too_large'],
];

/** Nothing was recorded: no event, and nothing reaches a receiver. */
async function expectNothingSent(): Promise<void> {
  await t.hooks.idle();
  expect(receiver.received).toHaveLength(0);
  for (const event of ['book.added', 'book.read', 'user.logged_in'] as const) expect(await t.hooks.recentEvents(event, { owner: 'alice' })).toEqual([]);
}

describe('bad input gives a coded failed result, never a throw', () => {
  it.each(BAD_INPUT)('%s', async (name, trigger, code) => {
    await expectFailed(name, trigger, code);
    expect((errors[0]!.obj as { err?: { code?: unknown } }).err?.code).toBe(code);
    await expectNothingSent();
  });

  it('a throwing per-model serializer is serialization_failed', async () => {
    const own = await testHooks({ events: { 'shelf.added': 'Shelf.created' }, serializers: { Shelf: () => { throw new Error('serializer broke'); } } });
    closers.push(() => own.close());
    expect(await own.hooks.model('Shelf', 'created', { ownerId: 'alice' })).toMatchObject({ status: 'failed', error: { code: 'serialization_failed', cause: { message: 'serializer broke' } } });
  });

  it('bigint anywhere (data, raw payload, owner) is sent as a string', async () => {
    expect(await t.hooks.model('Book', 'created', { id: 10n, ownerId: 'alice', pages: 2n ** 70n })).toMatchObject({ status: 'queued' });
    expect(await t.hooks.raw('user.logged_in', 7n, { owner: 'alice' })).toMatchObject({ status: 'queued' });
    const bigOwner = await t.hooks.subscriptions.create({ owner: 42n, event: 'book.read', target: `${receiver.url}/d` });
    expect(await t.hooks.action({ id: 1n, ownerId: 42n }, 'read', { model: 'Book' })).toMatchObject({ status: 'queued' });
    const requests = await receiver.waitFor(3);
    const byPath = Object.fromEntries(requests.map((r) => [r.path, r.json]));
    expect(byPath['/a'].data).toEqual({ id: '10', ownerId: 'alice', pages: String(2n ** 70n) });
    expect(byPath['/c'].data).toBe('7');
    expect(verify(bigOwner.secret, requests.find((r) => r.path === '/d')!)).toMatchObject({ data: { id: '1', ownerId: '42' } });
  });

  it('raw() still throws ValidationError for an undeclared event', async () => {
    // @ts-expect-error an undeclared event fails to compile, and is refused at run time too
    await expect(t.hooks.raw('no.such.event', {})).rejects.toMatchObject({ name: 'ValidationError', code: 'unknown_event' });
  });
});

describe('the size limit applies to the body that is sent', () => {
  it.each(OVER_THE_LIMIT)('%s over the limit is refused at the trigger', async (name, trigger, code) => {
    await expectFailed(name, trigger, code);
    await expectNothingSent();
  });

  it('the envelope is counted with the longest target a subscription can have: data that fits is sent within the limit, data that does not is refused', async () => {
    const longTarget = `${receiver.url}/${'t'.repeat(MAX_TARGET_LENGTH - receiver.url.length - 1)}`;
    expect(longTarget).toHaveLength(MAX_TARGET_LENGTH);
    const long = await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: longTarget });
    // The data (a JSON string) is `room` bytes: exactly what the envelope leaves.
    const room = LIMIT - envelopeOverheadBytes('book.added');
    const fits = { title: 'x'.repeat(room - '{"title":""}'.length) };
    expect(await t.hooks.model('Book', 'created', fits, { owner: 'alice' })).toMatchObject({ status: 'queued' });
    const tooBig = { title: `${fits.title}x` };
    const refused = await t.hooks.model('Book', 'created', tooBig, { owner: 'alice' });
    expect(refused).toMatchObject({ status: 'failed', error: { code: 'payload_too_large', message: expect.stringMatching(/counted at its largest/) } });
    const requests = await receiver.waitFor(2);
    await t.hooks.idle();
    expect(receiver.received).toHaveLength(2);
    for (const request of requests) expect(Buffer.byteLength(request.body)).toBeLessThanOrEqual(LIMIT);
    expect(verify(long.secret, requests.find((r) => r.path !== '/a')!)).toMatchObject({ hook: { target: longTarget }, data: fits });
  });
});
