/**
 * The delivery conformance suite: the django-rest-hooks test suite (rest_hooks/tests.py, 14 tests)
 * ported to resthooks, plus the delivery and trust cases upstream never covered, run unchanged on
 * each stack of test/support/stacks.ts (SQLite + in-process, PostgreSQL + in-process, PostgreSQL +
 * BullMQ). Real databases, a real Redis, real HTTP receivers on 127.0.0.1, signatures checked with
 * the `standardwebhooks` reference package.
 */
import Database from 'better-sqlite3';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, createHooks, sqliteStore, ValidationError, type SentInfo } from '../src/index.js';
import type { TestDatabase } from './support/database.js';
import { eventually, testHooks, type TestHooks } from './support/hooks.js';
import { startReceiver, verify, type Receiver } from './support/receiver.js';
import { STACKS } from './support/stacks.js';

const EVENTS = {
  'comment.added': 'Comment.created',
  'comment.changed': 'Comment.updated',
  'comment.removed': 'Comment.deleted',
  'comment.moderated': 'Comment.moderated+',
  'special.thing': null,
} as const;

class Comment {
  constructor(
    public id: number,
    public comment: string,
    public userId: string,
    public submitDate = new Date('2020-01-02T03:04:05.678Z'),
  ) {}
}

// What createHooks checks before any store or queue is touched: the same on every stack, so run once.
describe('configuration', () => {
  it('two events on one Model.action are a ConfigError at createHooks, naming both', () => {
    const make = () => createHooks({ events: { 'a.one': 'Book.created', 'a.two': 'Book.created+' }, store: sqliteStore(new Database(':memory:')) });
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(/"a\.one" and "a\.two"/);
  });

  it('createHooks without a store explains what to pass', () => {
    expect(() => createHooks({ events: {} } as never)).toThrow(/sqliteStore/);
  });

  it('runs on an in-memory SQLite database too', async () => {
    const receiver = await startReceiver();
    const memory = await testHooks({ events: EVENTS, store: sqliteStore(new Database(':memory:')), delivery: { retry: { schedule: [0], jitter: 0 } } });
    try {
      await memory.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + '/memory' });
      await memory.hooks.model('Comment', 'created', new Comment(1, 'in memory', 'bob'));
      expect((await receiver.waitFor(1))[0]!.json.data.comment).toBe('in memory');
    } finally {
      await memory.close();
      await receiver.close();
    }
  });
});

describe.each(STACKS)('on $name', (stack) => {
  let receiver: Receiver;
  let t: TestHooks<keyof typeof EVENTS>;
  let database: TestDatabase;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    receiver = await startReceiver();
    database = await stack.database();
    t = await stack.hooks({ events: EVENTS }, { database });
    closers.push(() => database.close(), () => t.close(), () => receiver.close());
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const subscribe = (event: keyof typeof EVENTS, owner = 'bob', path = '/hook') =>
    t.hooks.subscriptions.create({ owner, event, target: receiver.url + path });

  describe('upstream django-rest-hooks tests', () => {
    it('1 test_get_event_actions_config: the (model, action) table, + flagged, raw events excluded', () => {
      expect(t.hooks.eventActions()).toEqual({
        Comment: {
          created: ['comment.added', false],
          updated: ['comment.changed', false],
          deleted: ['comment.removed', false],
          moderated: ['comment.moderated', true],
        },
      });
    });

    it('2 test_no_user_property_fail: an unknown event raises; a valid raw event with no owner is a no-op', async () => {
      await subscribe('special.thing');
      // @ts-expect-error an undeclared event fails to compile, and is refused at run time too
      await expect(t.hooks.raw('some.fake.event', {})).rejects.toThrow(ValidationError);
      // @ts-expect-error an undeclared event fails to compile, and is refused at run time too
      await expect(t.hooks.raw('some.fake.event', {})).rejects.toThrow('Unexpected event "some.fake.event"');
      const result = await t.hooks.raw('special.thing', { hello: 'world' });
      expect(result.status).toBe('undeliverable');
      await t.hooks.idle();
      expect(receiver.received).toHaveLength(0);
    });

    it('3 test_no_hook: a model save with no subscriptions succeeds and sends nothing', async () => {
      const result = await t.hooks.model('Comment', 'created', new Comment(1, 'Hello world!', 'bob'));
      expect(result.status).toBe('queued');
      await t.hooks.idle();
      expect(receiver.received).toHaveLength(0);
    });

    it('4 test_simple_comment_hook: the default payload carries the hook and the instance, owner as its id', async () => {
      const hook = await subscribe('comment.added');
      await t.hooks.model(Comment, 'created', new Comment(1, 'Hello world!', 'bob'));
      const [request] = await receiver.waitFor(1);
      expect(request!.json).toEqual({
        hook: { id: hook.id, event: 'comment.added', target: hook.target },
        data: { id: 1, comment: 'Hello world!', userId: 'bob', submitDate: '2020-01-02T03:04:05.678Z' },
      });
      expect(Object.keys(request!.json)).toEqual(['hook', 'data']);
      expect(Object.keys(request!.json.hook)).toEqual(['id', 'event', 'target']);
    });

    it('5 test_comment_hook_serializer_method: a model serializeHook(hook) replaces the whole payload', async () => {
      class SelfSerializing extends Comment {
        serializeHook(hook: { id: string }) {
          return { hook, data: { id: this.id, comment: this.comment, user: { username: this.userId } } };
        }
      }
      const hook = await subscribe('comment.added');
      await t.hooks.model('Comment', 'created', new SelfSerializing(1, 'Hello world!', 'bob'));
      const [request] = await receiver.waitFor(1);
      expect(request!.json).toEqual({
        hook: { id: hook.id, event: 'comment.added', target: hook.target },
        data: { id: 1, comment: 'Hello world!', user: { username: 'bob' } },
      });
    });

    it('6 test_full_cycle_comment_hook: create, update, delete post added, changed, removed in order', async () => {
      for (const event of ['comment.added', 'comment.changed', 'comment.removed'] as const) await subscribe(event);
      const comment = new Comment(7, 'Hello world!', 'bob');
      await t.hooks.model('Comment', 'created', comment);
      await receiver.waitFor(1);
      comment.comment = 'Goodbye world...';
      await t.hooks.model('Comment', 'updated', comment);
      await receiver.waitFor(2);
      await t.hooks.model('Comment', 'deleted', comment);
      const requests = await receiver.waitFor(3);
      expect(requests.map((r) => r.json.hook.event)).toEqual(['comment.added', 'comment.changed', 'comment.removed']);
      expect(requests.map((r) => r.json.data.comment)).toEqual(['Hello world!', 'Goodbye world...', 'Goodbye world...']);
      expect(requests[2]!.json.data.id).toBe(7); // the delete payload keeps the last state and the id
    });

    it('7 test_custom_instance_hook: a custom action (moderated) with the default serialization', async () => {
      await subscribe('comment.moderated');
      const comment = new Comment(3, 'Hello world!', 'bob');
      expect((await t.hooks.action(comment, 'moderated')).status).toBe('queued');
      const [request] = await receiver.waitFor(1);
      expect(request!.json.hook.event).toBe('comment.moderated');
      expect(request!.json.data).toEqual({ id: 3, comment: 'Hello world!', userId: 'bob', submitDate: '2020-01-02T03:04:05.678Z' });
    });

    it('8 test_raw_custom_event: a raw payload arrives as data', async () => {
      const hook = await subscribe('special.thing');
      await t.hooks.raw('special.thing', { hello: 'world!' }, { owner: 'bob' });
      const [request] = await receiver.waitFor(1);
      expect(request!.json).toEqual({ hook: { id: hook.id, event: 'special.thing', target: hook.target }, data: { hello: 'world!' } });
    });

    it('9 test_timed_cycle (disabled upstream; here: a burst of events all arrives)', async () => {
      await subscribe('comment.added');
      await Promise.all(Array.from({ length: 50 }, (_, i) => t.hooks.model('Comment', 'created', new Comment(i, `c${i}`, 'bob'))));
      const requests = await receiver.waitFor(50);
      expect(new Set(requests.map((r) => r.json.data.id)).size).toBe(50);
    });

    it('10 test_signal_emitted_upon_success: onSent fires with the hook, the payload and the instance', async () => {
      const sent: SentInfo[] = [];
      const own = await stack.hooks({ events: EVENTS, onSent: (info) => void sent.push(info) });
      closers.push(() => own.close());
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url });
      await own.hooks.model('Comment', 'created', new Comment(1, 'Hello world!', 'bob'));
      await receiver.waitFor(1);
      await own.hooks.idle();
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({
        hook: { id: hook.id, event: 'comment.added', target: receiver.url },
        payload: { hook: { id: hook.id }, data: { comment: 'Hello world!' } },
        event: { id: expect.stringMatching(/^evt_/), name: 'comment.added', model: 'Comment', action: 'created', owner: 'bob', allOwners: false, data: { id: 1, comment: 'Hello world!', userId: 'bob' }, createdAt: expect.any(Date) },
        outcome: 'delivered',
        statusCode: 200,
        attempt: 1,
      });
    });

    it('11 test_valid_form: a good subscription validates', async () => {
      const hook = await t.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: 'http://example.com' });
      expect(hook).toMatchObject({ owner: 'bob', event: 'comment.added', target: 'http://example.com', active: true });
    });

    it('12 test_form_save: a saved subscription is stored and returned', async () => {
      const hook = await subscribe('comment.added');
      expect(hook.id).toMatch(/^sub_/);
      expect(hook.secret).toMatch(/^whsec_/);
      expect(await t.hooks.subscriptions.get(hook.id)).toEqual(hook);
    });

    it('13 test_invalid_form: an empty subscription is rejected and nothing is stored', async () => {
      await expect(t.hooks.subscriptions.create({} as never)).rejects.toThrow(ValidationError);
      // @ts-expect-error an undeclared event fails to compile, and is refused at run time too
      await expect(t.hooks.subscriptions.create({ owner: 'bob', event: 'nope', target: 'http://example.com' })).rejects.toThrow('Unexpected event "nope"');
      for (const target of ['not a url', '/relative', 'ftp://example.com/x', 'javascript:alert(1)', 'http://example.com/' + 'a'.repeat(2048)]) {
        await expect(t.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target })).rejects.toThrow(ValidationError);
      }
      expect((await t.hooks.subscriptions.list()).items).toHaveLength(0);
    });

    it('14 test_get_custom_hook_model: extra fields (metadata) and a custom finder', async () => {
      const own = await testHooks({
        events: EVENTS,
        finder: async (name, event, { defaultFind }) => {
          expect(name).toBe('comment.added');
          expect(event.data).toMatchObject({ comment: 'Hello world!' });
          return (await defaultFind()).filter((s) => s.metadata?.isActive === true);
        },
      });
      closers.push(() => own.close());
      await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + '/on', metadata: { isActive: true } });
      await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + '/off', metadata: { isActive: false } });
      await own.hooks.model('Comment', 'created', new Comment(1, 'Hello world!', 'bob'));
      await receiver.waitFor(1);
      await own.hooks.idle();
      expect(receiver.received.map((r) => r.path)).toEqual(['/on']);
    });
  });

  describe('owners', () => {
    it("'+' events reach every owner's subscriptions; plain events only the instance owner's", async () => {
      await subscribe('comment.moderated', 'bob', '/bob');
      await subscribe('comment.moderated', 'alice', '/alice');
      await subscribe('comment.added', 'alice', '/alice-added');
      await t.hooks.action(new Comment(1, 'x', 'bob'), 'moderated');
      await t.hooks.model('Comment', 'created', new Comment(2, 'y', 'bob'));
      await receiver.waitFor(2);
      await t.hooks.idle();
      expect(receiver.received.map((r) => r.path).sort()).toEqual(['/alice', '/bob']);
    });

    it('an explicit owner overrides the instance owner; owner: false reaches everyone', async () => {
      await subscribe('comment.added', 'bob', '/bob');
      await subscribe('comment.added', 'alice', '/alice');
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'), { owner: 'alice' });
      await receiver.waitFor(1);
      await t.hooks.idle();
      expect(receiver.received.map((r) => r.path)).toEqual(['/alice']);
      await t.hooks.raw('comment.added', { any: 1 }, { owner: false });
      await receiver.waitFor(3);
      expect(receiver.received.slice(1).map((r) => r.path).sort()).toEqual(['/alice', '/bob']);
    });

    it('a model event without an owner is recorded as undeliverable and logged at error level, never thrown', async () => {
      const errors: string[] = [];
      const logger = { debug() {}, info() {}, warn() {}, error: (_: object, msg?: string) => void errors.push(msg ?? '') };
      const own = await stack.hooks({ events: EVENTS, logger });
      closers.push(() => own.close());
      const result = await own.hooks.model('Comment', 'created', { id: 1, comment: 'orphan' });
      expect(result).toMatchObject({ status: 'undeliverable' });
      expect(errors.join()).toMatch(/no owner/);
    });

    it('a custom owner resolver', async () => {
      const own = await stack.hooks({ events: EVENTS, owner: (c: { authorId?: string }) => c.authorId });
      closers.push(() => own.close());
      await own.hooks.subscriptions.create({ owner: 'carol', event: 'comment.added', target: receiver.url });
      await own.hooks.model('Comment', 'created', { id: 1, authorId: 'carol' });
      expect((await receiver.waitFor(1))[0]!.json.data.authorId).toBe('carol');
    });
  });

  describe('configuration', () => {
    it('an unmapped (model, action) is ignored without writing anything', async () => {
      expect(await t.hooks.model('Comment', 'archived', new Comment(1, 'x', 'bob'))).toEqual({ status: 'ignored' });
      expect(await t.hooks.model('Gadget', 'created', { ownerId: 'bob' })).toEqual({ status: 'ignored' });
    });
  });

  describe('raw events', () => {
    it('an undeclared event is rejected unless trusted', async () => {
      // @ts-expect-error an undeclared event fails to compile, and is refused at run time too
      await expect(t.hooks.raw('not.declared', {}, { owner: 'bob' })).rejects.toThrow(ValidationError);
      await t.hooks.subscriptions.create({ owner: 'bob', event: 'special.thing', target: receiver.url });
      const trusted = await t.hooks.raw('not.declared', { a: 1 }, { owner: 'bob', trust: true });
      expect(trusted.status).toBe('queued');
    });

    it("an instance of another model than the event's mapping is dropped, unless trusted", async () => {
      class Gadget {
        ownerId = 'bob';
      }
      await subscribe('comment.added');
      expect(await t.hooks.raw('comment.added', { a: 1 }, { instance: new Gadget() })).toMatchObject({ status: 'dropped' });
      expect(await t.hooks.raw('comment.added', { a: 2 }, { instance: new Gadget(), trust: true })).toMatchObject({ status: 'queued' });
      expect(await t.hooks.raw('comment.added', { a: 3 }, { instance: new Comment(1, 'x', 'bob') })).toMatchObject({ status: 'queued' });
      await receiver.waitFor(2);
      await t.hooks.idle();
      expect(receiver.received.map((r) => r.json.data.a).sort()).toEqual([2, 3]);
    });

    it('envelope: false sends the payload as the whole body; a list payload works', async () => {
      await subscribe('special.thing');
      await t.hooks.raw('special.thing', [1, 2, 3], { owner: 'bob', envelope: false });
      expect((await receiver.waitFor(1))[0]!.json).toEqual([1, 2, 3]);
    });
  });

  describe('payloads', () => {
    it('per-model serializers shape the data, once per event', async () => {
      let calls = 0;
      const own = await stack.hooks({ events: EVENTS, serializers: { Comment: (c: Comment) => (calls++, { id: c.id, text: c.comment }) } });
      closers.push(() => own.close());
      for (const path of ['/a', '/b', '/c']) await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + path });
      await own.hooks.model('Comment', 'created', new Comment(5, 'hi', 'bob'));
      const requests = await receiver.waitFor(3);
      expect(requests.map((r) => r.json.data)).toEqual([{ id: 5, text: 'hi' }, { id: 5, text: 'hi' }, { id: 5, text: 'hi' }]);
      expect(calls).toBe(1);
    });

    it('payloadOverride: a value for everyone, or a function of the hook', async () => {
      const hook = await subscribe('comment.added');
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'), { payloadOverride: { custom: true } });
      expect((await receiver.waitFor(1))[0]!.json).toEqual({ custom: true });
      await t.hooks.model('Comment', 'created', new Comment(2, 'y', 'bob'), { payloadOverride: (h, c) => ({ to: h.id, comment: (c as Comment).comment }) });
      expect((await receiver.waitFor(2))[1]!.json).toEqual({ to: hook.id, comment: 'y' });
    });

    it('a payload over the size limit is refused at the trigger with a clear error', async () => {
      const own = await stack.hooks({ events: EVENTS, delivery: { maxPayloadBytes: 16 * 1024 } });
      closers.push(() => own.close());
      const tooLarge = { status: 'failed', error: { code: 'payload_too_large', message: expect.stringMatching(/over the 16384-byte limit/) } };
      expect(await own.hooks.raw('special.thing', { blob: 'x'.repeat(17_000) }, { owner: 'bob' })).toMatchObject(tooLarge);
      expect(await own.hooks.model('Comment', 'created', new Comment(1, 'x'.repeat(17_000), 'bob'))).toMatchObject(tooLarge);
    });

    it('a custom deliverer replaces the HTTP POST and still gets signed headers and retries', async () => {
      const calls: Array<{ target: string; payload: unknown; attempt: number; headers: Record<string, string>; body: string }> = [];
      const own = await testHooks({
        events: EVENTS,
        deliverer: async (target, payload, context) => {
          calls.push({ target, payload, attempt: context.attempt, headers: { ...context.headers }, body: context.body });
          if (context.attempt === 1) throw new Error('queue unavailable');
        },
      });
      closers.push(() => own.close());
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: 'https://example.com/never-called' });
      await own.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await eventually(() => expect(calls.map((c) => c.attempt)).toEqual([1, 2]));
      await own.hooks.idle();
      expect(calls[1]!.target).toBe('https://example.com/never-called');
      expect(calls[1]!.payload).toMatchObject({ hook: { id: hook.id }, data: { id: 1 } });
      new Webhook(hook.secret).verify(calls[1]!.body, calls[1]!.headers);
      expect(receiver.received).toHaveLength(0);
      const [delivery] = await own.hooks.deliveries.list(hook.id);
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 2 });
      expect(delivery!.attemptLog.map((a) => a.outcome)).toEqual(['retry', 'delivered']);
    });
  });

  describe('transactions', () => {
    it('an outbox row written in a rolled-back host transaction is never delivered; a committed one is', async () => {
      await subscribe('comment.added');
      const rolledBack = await stack.begin(database); // the app's own connection to the same database
      expect((await t.hooks.model('Comment', 'created', new Comment(1, 'rolled back', 'bob'), { tx: rolledBack.tx })).status).toBe('queued');
      await rolledBack.rollback();
      const committed = await stack.begin(database);
      await t.hooks.model('Comment', 'created', new Comment(2, 'committed', 'bob'), { tx: committed.tx });
      await committed.commit();
      t.hooks.notify();
      const [request] = await receiver.waitFor(1);
      await sleep(150);
      await t.hooks.idle();
      expect(receiver.received).toHaveLength(1);
      expect(request!.json.data.comment).toBe('committed');
    });
  });

  describe('delivery', () => {
    it('sends Standard Webhooks headers that verify with the reference package', async () => {
      const hook = await subscribe('comment.added');
      await t.hooks.model('Comment', 'created', new Comment(1, 'é ü 🙂', 'bob'));
      const [request] = await receiver.waitFor(1);
      expect(request!.headers['content-type']).toBe('application/json');
      expect(request!.headers['webhook-id']).toMatch(/^dlv_/);
      expect(Math.abs(Number(request!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      expect(verify(hook.secret, request!)).toMatchObject({ data: { comment: 'é ü 🙂' } });
    });

    it('410 Gone deletes the subscription at once', async () => {
      receiver.respond = () => 410;
      const hook = await subscribe('comment.added');
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await receiver.waitFor(1);
      await t.hooks.idle();
      expect(await t.hooks.subscriptions.get(hook.id)).toBeUndefined();
      await t.hooks.model('Comment', 'created', new Comment(2, 'y', 'bob'));
      await t.hooks.idle();
      expect(receiver.received).toHaveLength(1);
    });

    it('500 then 200: delivered on the second attempt with the same webhook-id', async () => {
      receiver.respond = (_, index) => (index === 0 ? { status: 500, body: 'boom' } : 200);
      const hook = await subscribe('comment.added');
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      const [first, second] = await receiver.waitFor(2);
      expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
      expect(second!.body).toBe(first!.body);
      await t.hooks.idle();
      const [delivery] = await t.hooks.deliveries.list(hook.id);
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 2, lastStatusCode: 200 });
      expect(delivery!.attemptLog.map((a) => [a.number, a.statusCode, a.outcome])).toEqual([
        [1, 500, 'retry'],
        [2, 200, 'delivered'],
      ]);
      expect(delivery!.attemptLog[0]!.responseExcerpt).toBe('boom');
    });

    it('always failing: failed after the last scheduled attempt', async () => {
      receiver.respond = () => 503;
      const hook = await subscribe('comment.added');
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await receiver.waitFor(3);
      await t.hooks.idle();
      const [delivery] = await t.hooks.deliveries.list(hook.id);
      expect(delivery).toMatchObject({ status: 'failed', attempts: 3 });
      await sleep(100);
      expect(receiver.received).toHaveLength(3);
    });

    it('a receiver that never answers is cut off by the timeout and retried', async () => {
      const own = await stack.hooks({ events: EVENTS, delivery: { timeout: 200, retry: { schedule: [0, 10], jitter: 0 } } });
      closers.push(() => own.close());
      receiver.respond = (_, index) => (index === 0 ? 'hang' : 200);
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url });
      await own.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await receiver.waitFor(2);
      await own.hooks.idle();
      const [delivery] = await own.hooks.deliveries.list(hook.id);
      expect(delivery!.attemptLog.map((a) => a.outcome)).toEqual(['retry', 'delivered']);
      expect(delivery!.attemptLog[0]!.error).toMatch(/timed out after 200 ms/);
      expect(delivery!.attemptLog[0]!.durationMs).toBeGreaterThanOrEqual(150);
    });

    it('redirects are never followed', async () => {
      receiver.respond = (request) => (request.path === '/moved' ? { status: 301, headers: { location: '/elsewhere' } } : 200);
      const own = await stack.hooks({ events: EVENTS, delivery: { retry: { schedule: [0], jitter: 0 } } });
      closers.push(() => own.close());
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + '/moved' });
      await own.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await receiver.waitFor(1);
      await own.hooks.idle();
      expect(receiver.received.map((r) => r.path)).toEqual(['/moved']);
      expect((await own.hooks.deliveries.list(hook.id))[0]).toMatchObject({ status: 'failed', lastStatusCode: 301 });
    });

    it('stop() then start() on the same database resumes pending deliveries', async () => {
      const shared = await stack.database();
      closers.push(() => shared.close());
      const first = await stack.hooks({ events: EVENTS }, { start: false, database: shared });
      await first.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url });
      for (let i = 0; i < 5; i++) await first.hooks.model('Comment', 'created', new Comment(i, 'x', 'bob'));
      await first.close(); // never started: everything is still in the outbox
      expect(receiver.received).toHaveLength(0);
      const second = await stack.hooks({ events: EVENTS }, { database: shared });
      closers.push(() => second.close());
      const requests = await receiver.waitFor(5);
      expect(requests.map((r) => r.json.data.id).sort()).toEqual([0, 1, 2, 3, 4]);
    });

    it('a deleted subscription receives nothing more, even for events already fanned out', async () => {
      receiver.respond = () => 500;
      // The retry waits longer than the delete takes: sent before it, a retry would be no case of this test.
      const own = await stack.hooks({ events: EVENTS, delivery: { retry: { schedule: [0, 300, 300], jitter: 0 } } });
      closers.push(() => own.close());
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + '/hook' });
      await own.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await receiver.waitFor(1);
      await own.hooks.subscriptions.delete(hook.id);
      await sleep(400);
      await own.hooks.idle();
      expect(receiver.received).toHaveLength(1);
    });

    it('an inactive subscription is skipped at fan-out', async () => {
      const hook = await subscribe('comment.added');
      await t.hooks.subscriptions.update(hook.id, { active: false });
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await t.hooks.idle();
      expect(receiver.received).toHaveLength(0);
    });
  });

  describe('safety', () => {
    it('private targets are refused by default, at subscribe time', async () => {
      const own = await stack.hooks({ events: EVENTS, allowPrivateTargets: false });
      closers.push(() => own.close());
      await expect(own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url })).rejects.toMatchObject({ code: 'target_refused' });
      await expect(own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: 'http://169.254.169.254/latest' })).rejects.toMatchObject({ code: 'target_refused' });
    });

    it('one owner never sees, changes or deletes another owner\'s subscriptions', async () => {
      const hook = await subscribe('comment.added', 'alice');
      expect(await t.hooks.subscriptions.get(hook.id, { owner: 'bob' })).toBeUndefined();
      await expect(t.hooks.subscriptions.update(hook.id, { active: false }, { owner: 'bob' })).rejects.toMatchObject({ code: 'not_found' });
      expect(await t.hooks.subscriptions.delete(hook.id, { owner: 'bob' })).toBe(false);
      expect((await t.hooks.subscriptions.list({ owner: 'bob' })).items).toEqual([]);
      expect(await t.hooks.subscriptions.get(hook.id, { owner: 'alice' })).toMatchObject({ active: true });
    });
  });

  describe('fan-out timing', () => {
    it('an event reaches the subscriptions that existed when it happened, not ones made before its fan-out', async () => {
      const own = await stack.hooks({ events: EVENTS }, { start: false });
      closers.push(() => own.close());
      await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + '/early' });
      await own.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await sleep(5);
      await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url + '/late' });
      await own.hooks.start(); // the fan-out runs only now, after the second subscription exists
      await receiver.waitFor(1);
      await own.hooks.idle();
      expect(receiver.received.map((r) => r.path)).toEqual(['/early']);
    });
  });

  describe('retries, 410 and the failure lifecycle', () => {
    it('410 Gone also cancels the subscription\'s other pending deliveries; another subscription carries on', async () => {
      // A long second delay keeps the first delivery pending (waiting for its retry) when the 410 lands.
      const own = await stack.hooks({ events: EVENTS, delivery: { retry: { schedule: [0, 60_000], jitter: 0 } } });
      closers.push(() => own.close());
      receiver.respond = (request) => (request.path === '/gone' ? (request.json.data.n === 2 ? 410 : 500) : 200);
      const gone = await own.hooks.subscriptions.create({ owner: 'bob', event: 'special.thing', target: receiver.url + '/gone' });
      const other = await own.hooks.subscriptions.create({ owner: 'bob', event: 'special.thing', target: receiver.url + '/other' });
      await own.hooks.raw('special.thing', { n: 1 }, { owner: 'bob' });
      await eventually(async () => expect((await own.hooks.deliveries.list(gone.id)).map((d) => [d.status, d.attempts])).toEqual([['pending', 1]]));
      const [pending] = await own.hooks.deliveries.list(gone.id);
      await own.hooks.raw('special.thing', { n: 2 }, { owner: 'bob' });
      await eventually(async () => expect(await own.hooks.subscriptions.get(gone.id)).toBeUndefined());
      await eventually(async () => expect(await own.hooks.deliveries.get(pending!.id)).toMatchObject({ status: 'cancelled', nextAttemptAt: null }));
      await eventually(async () => expect((await own.hooks.deliveries.list(other.id)).map((d) => d.status)).toEqual(['delivered', 'delivered']));
      await own.hooks.raw('special.thing', { n: 3 }, { owner: 'bob' });
      await eventually(() => expect(receiver.received.filter((r) => r.path === '/other')).toHaveLength(3));
      await own.hooks.idle();
      expect(receiver.received.filter((r) => r.path === '/gone').map((r) => r.json.data.n)).toEqual([1, 2]);
    });

    it('429 with Retry-After: the next attempt waits for it (capped at twice the scheduled delay), same webhook-id', async () => {
      const own = await stack.hooks({ events: EVENTS, delivery: { retry: { schedule: [0, 300], jitter: 0 }, minDelayAfter429: 50 } });
      closers.push(() => own.close());
      receiver.respond = (_, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '1' } } : 200);
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'special.thing', target: receiver.url });
      await own.hooks.raw('special.thing', { n: 1 }, { owner: 'bob' });
      const [first, second] = await receiver.waitFor(2);
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(590);
      expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
      await own.hooks.idle();
      const [delivery] = await own.hooks.deliveries.list(hook.id);
      expect(delivery!.attemptLog.map((a) => [a.statusCode, a.outcome])).toEqual([
        [429, 'retry'],
        [200, 'delivered'],
      ]);
    });

    it('connection refused (nothing listening): recorded and retried until the schedule runs out', async () => {
      const closed = await startReceiver();
      const target = closed.url + '/nobody';
      await closed.close();
      const hook = await t.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target });
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      const delivery = await eventually(async () => {
        const [found] = await t.hooks.deliveries.list(hook.id);
        expect(found).toMatchObject({ status: 'failed', attempts: 3, lastStatusCode: null });
        return found!;
      });
      expect(delivery.attemptLog.map((a) => a.outcome)).toEqual(['retry', 'retry', 'failed']);
      expect(delivery.attemptLog[0]!.error).toMatch(/connection refused/);
    });

    it('a subscription failing past the disable window is disabled, the app told, its retries cancelled; re-enabled, it receives again', async () => {
      const disabled: string[] = [];
      const own = await stack.hooks({
        events: EVENTS,
        delivery: { retry: { schedule: [0, 30, 30, 30, 30, 30], jitter: 0 }, disableAfter: 60 },
        onSubscriptionDisabled: (subscription, reason) => void disabled.push(`${subscription.id}: ${reason}`),
      });
      closers.push(() => own.close());
      receiver.respond = () => 500;
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: receiver.url });
      await own.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      await eventually(() => expect(disabled).toEqual([expect.stringMatching(new RegExp(`^${hook.id}: every delivery failed for`))]));
      expect(await own.hooks.subscriptions.get(hook.id)).toMatchObject({ active: false, disabledReason: expect.stringMatching(/failed/) });
      await own.hooks.idle();
      const sent = receiver.received.length;
      await own.hooks.model('Comment', 'created', new Comment(2, 'y', 'bob'));
      await sleep(150);
      await own.hooks.idle();
      expect(receiver.received).toHaveLength(sent);
      receiver.respond = () => 200;
      await own.hooks.subscriptions.update(hook.id, { active: true });
      await own.hooks.model('Comment', 'created', new Comment(3, 'z', 'bob'));
      await eventually(() => expect(receiver.received.at(-1)!.json.data.id).toBe(3));
    });

    it('a manual retry sends a delivered delivery again with the same webhook-id and body', async () => {
      const hook = await subscribe('comment.added');
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      const [first] = await receiver.waitFor(1);
      await t.hooks.idle();
      const [delivery] = await t.hooks.deliveries.list(hook.id);
      await t.hooks.deliveries.retry(delivery!.id, { owner: 'bob' });
      const [, second] = await receiver.waitFor(2);
      expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
      expect(second!.body).toBe(first!.body);
      verify(hook.secret, second!);
      await t.hooks.idle();
      expect((await t.hooks.deliveries.get(delivery!.id))!.attemptLog).toHaveLength(2);
    });
  });

  describe('trust', () => {
    it('after a secret rotation, a delivery carries both signatures: each secret verifies it on its own', async () => {
      const hook = await subscribe('comment.added');
      const rotated = await t.hooks.subscriptions.rotateSecret(hook.id, { gracePeriod: '1h' });
      await t.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      const [request] = await receiver.waitFor(1);
      expect(String(request!.headers['webhook-signature']).split(' ')).toHaveLength(2);
      expect(verify(rotated.secret, request!)).toMatchObject({ data: { id: 1 } });
      expect(verify(hook.secret, request!)).toMatchObject({ data: { id: 1 } });
      expect(() => verify('whsec_' + Buffer.from('not the secret').toString('base64'), request!)).toThrow();
    });

    it('a target that resolved to a public address at subscribe time and to loopback at send time is refused at connect', async () => {
      let rebound = false;
      // No traffic leaves 127.0.0.1: the public answer is only given to the subscribe-time check, which does not connect.
      const resolver = async () => [{ address: rebound ? '127.0.0.1' : '93.184.216.34', family: 4 as const }];
      const own = await stack.hooks({ events: EVENTS, allowPrivateTargets: false, resolver, delivery: { retry: { schedule: [0], jitter: 0 } } });
      closers.push(() => own.close());
      const port = new URL(receiver.url).port;
      const hook = await own.hooks.subscriptions.create({ owner: 'bob', event: 'comment.added', target: `http://rebind.example:${port}/hook` });
      rebound = true;
      await own.hooks.model('Comment', 'created', new Comment(1, 'x', 'bob'));
      const delivery = await eventually(async () => {
        const [found] = await own.hooks.deliveries.list(hook.id);
        expect(found).toMatchObject({ status: 'failed', attempts: 1 });
        return found!;
      });
      expect(delivery.attemptLog[0]!.error).toMatch(/refused/);
      expect(receiver.received).toHaveLength(0);
    });

    it('one delivery per (event, subscription): a burst to two subscriptions sends each event once to each', async () => {
      await subscribe('comment.added', 'bob', '/one');
      await subscribe('comment.added', 'bob', '/two');
      await Promise.all(Array.from({ length: 20 }, (_, i) => t.hooks.model('Comment', 'created', new Comment(i, `c${i}`, 'bob'))));
      await receiver.waitFor(40);
      await t.hooks.idle();
      await sleep(150); // a second send of anything would arrive now
      expect(receiver.received).toHaveLength(40);
      for (const path of ['/one', '/two']) {
        const ids = receiver.received.filter((r) => r.path === path).map((r) => r.json.data.id as number);
        expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      }
      expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(40);
    });
  });
});
