/** Failure lifecycle: streaks, automatic disabling, re-enabling, recovery, rate limits, legacy signatures. */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { inProcessQueue } from '../src/queue/in-process-queue.js';
import type { QueueFactory, Subscription } from '../src/index.js';
import { eventually, testHooks } from './support/hooks.js';
import { startReceiver, verify, type Receiver } from './support/receiver.js';

const EVENTS = { 'book.added': 'Book.created' } as const;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function setup(delivery: Parameters<typeof testHooks>[0]['delivery'], extra: Partial<Parameters<typeof testHooks>[0]> = {}) {
  const receiver: Receiver = await startReceiver();
  const t = await testHooks({ events: EVENTS, delivery, ...extra });
  closers.push(() => t.close(), () => receiver.close());
  return { receiver, hooks: t.hooks };
}

describe('failure lifecycle', () => {
  it('disables a subscription failing continuously past the window, tells the app, and re-enabling clears it', async () => {
    const disabled: Array<[Subscription, string]> = [];
    const { receiver, hooks } = await setup(
      { retry: { schedule: [0, 30, 30, 30, 30, 30], jitter: 0 }, disableAfter: 60 },
      { onSubscriptionDisabled: (s, reason) => void disabled.push([s, reason]) },
    );
    receiver.respond = () => 500;
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await eventually(() => expect(disabled).toHaveLength(1));
    expect(disabled[0]![0]).toMatchObject({ id: hook.id, active: false });
    expect(disabled[0]![1]).toMatch(/every delivery failed for/);
    const stored = await hooks.subscriptions.get(hook.id);
    expect(stored).toMatchObject({ active: false, disabledReason: expect.stringMatching(/failed/) });

    // Nothing more is sent while disabled; the pending retry is cancelled.
    const count = receiver.received.length;
    await hooks.model('Book', 'created', { id: 2, ownerId: 'alice' });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(receiver.received).toHaveLength(count);

    // Re-enable: the reason is cleared and deliveries flow again.
    receiver.respond = () => 200;
    expect(await hooks.subscriptions.update(hook.id, { active: true })).toMatchObject({ active: true, disabledReason: null });
    await hooks.model('Book', 'created', { id: 3, ownerId: 'alice' });
    await eventually(() => expect(receiver.received.at(-1)!.json.data.id).toBe(3));
  });

  it('a success resets the streak, so intermittent failures never disable', async () => {
    const disabled: string[] = [];
    const { receiver, hooks } = await setup({ retry: { schedule: [0, 40], jitter: 0 }, disableAfter: 100 }, { onSubscriptionDisabled: (s) => void disabled.push(s.id) });
    receiver.respond = (_, index) => (index % 2 === 0 ? 500 : 200);
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    for (let id = 0; id < 4; id++) {
      await hooks.model('Book', 'created', { id, ownerId: 'alice' });
      await receiver.waitFor(2 * (id + 1));
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    await hooks.idle();
    expect(disabled).toEqual([]);
  });

  it('recover() re-queues failed deliveries since a time; they arrive with their original webhook-id', async () => {
    const { receiver, hooks } = await setup({ retry: { schedule: [0], jitter: 0 }, disableAfter: false });
    receiver.respond = () => 503;
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    const since = Date.now();
    for (let id = 0; id < 3; id++) await hooks.model('Book', 'created', { id, ownerId: 'alice' });
    await receiver.waitFor(3);
    await hooks.idle();
    expect((await hooks.deliveries.list(hook.id)).map((d) => d.status)).toEqual(['failed', 'failed', 'failed']);
    const firstIds = receiver.received.map((r) => r.headers['webhook-id']).sort();

    receiver.respond = () => 200;
    expect(await hooks.deliveries.recover(hook.id, { since: new Date(since), owner: 'alice' })).toBe(3);
    await receiver.waitFor(6);
    await hooks.idle();
    expect(receiver.received.slice(3).map((r) => r.headers['webhook-id']).sort()).toEqual(firstIds);
    expect((await hooks.deliveries.list(hook.id)).map((d) => d.status)).toEqual(['delivered', 'delivered', 'delivered']);
    await expect(hooks.deliveries.recover(hook.id, { since, owner: 'mallory' })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('manual retry sends a delivered delivery again with the same webhook-id', async () => {
    const { receiver, hooks } = await setup({});
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const [first] = await receiver.waitFor(1);
    await hooks.idle();
    const [delivery] = await hooks.deliveries.list(hook.id);
    await hooks.deliveries.retry(delivery!.id, { owner: 'alice' });
    const [, second] = await receiver.waitFor(2);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    await hooks.idle();
    expect((await hooks.deliveries.get(delivery!.id))!.attemptLog).toHaveLength(2);
  });
});

describe('subscription edits and pending deliveries', () => {
  it('a retry after the subscription\'s event was edited is sent with the event it was made for; a target edit moves it', async () => {
    const receiver = await startReceiver();
    const moved = await startReceiver();
    const t = await testHooks({ events: { 'book.added': 'Book.created', 'book.changed': 'Book.updated' }, delivery: { retry: { schedule: [0, 20, 20], jitter: 0 } } });
    closers.push(() => t.close(), () => receiver.close(), () => moved.close());
    const hook = await t.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: `${receiver.url}/old` });
    // The edit is made while the first attempt waits for its answer, so the retry is claimed after it.
    receiver.respond = (_request, index, response) => {
      if (index > 0) return 200;
      void t.hooks.subscriptions.update(hook.id, { event: 'book.changed' }).then(() => response.writeHead(500).end());
      return 'handled';
    };
    await t.hooks.model('Book', 'created', { id: 1, title: 'Dune', ownerId: 'alice' });
    const [first, retry] = await receiver.waitFor(2);
    expect(retry!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(verify(hook.secret, retry!)).toEqual({ hook: { id: hook.id, event: 'book.added', target: `${receiver.url}/old` }, data: { id: 1, title: 'Dune', ownerId: 'alice' } });

    // A target edit still moves a pending delivery: it is sent to the new target, named in its envelope.
    await t.hooks.subscriptions.update(hook.id, { event: 'book.added' });
    receiver.respond = (_request, _index, response) => {
      void t.hooks.subscriptions.update(hook.id, { target: `${moved.url}/new`, event: 'book.changed' }).then(() => response.writeHead(500).end());
      return 'handled';
    };
    await t.hooks.model('Book', 'created', { id: 2, title: 'Emma', ownerId: 'alice' });
    const [arrived] = await moved.waitFor(1);
    expect(receiver.received).toHaveLength(3);
    expect(verify(hook.secret, arrived!)).toMatchObject({ hook: { event: 'book.added', target: `${moved.url}/new` }, data: { id: 2 } });
    await t.hooks.idle();
  });
});

describe('limits and legacy receivers', () => {
  it('maxPerSecondPerSubscription spaces deliveries to one subscription, not to others', async () => {
    const { receiver, hooks } = await setup({ maxPerSecondPerSubscription: 10 });
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url + '/slow' });
    await hooks.subscriptions.create({ owner: 'bob', event: 'book.added', target: receiver.url + '/bob' });
    for (let id = 0; id < 15; id++) await hooks.model('Book', 'created', { id, ownerId: 'alice' });
    await hooks.model('Book', 'created', { id: 99, ownerId: 'bob' });
    const requests = await receiver.waitFor(16, 10_000);
    const alice = requests.filter((r) => r.path === '/slow');
    expect(alice).toHaveLength(15);
    // Never more than 10 in any one second: the 11th waits a second after the first of the 10 was answered.
    expect(alice[10]!.at - alice[0]!.at).toBeGreaterThanOrEqual(1000);
    // Bob's subscription has its own bucket: it is not queued behind Alice's.
    expect(requests.findIndex((r) => r.path === '/bob')).toBeLessThan(requests.indexOf(alice.at(-1)!));
  });

  it('connectionsPerOrigin caps the attempts in flight to one receiver, while another receiver is not held up', async () => {
    const { receiver, hooks } = await setup({ connectionsPerOrigin: 2, concurrency: 16 });
    const other = await startReceiver();
    closers.push(() => other.close());
    let open = 0;
    let most = 0;
    receiver.respond = (_, __, response) => {
      most = Math.max(most, ++open);
      setTimeout(() => (open--, response.writeHead(200).end()), 40);
      return 'handled';
    };
    await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.subscriptions.create({ owner: 'bob', event: 'book.added', target: other.url });
    for (let id = 0; id < 8; id++) await hooks.model('Book', 'created', { id, ownerId: 'alice' });
    await hooks.model('Book', 'created', { id: 99, ownerId: 'bob' });
    await receiver.waitFor(8, 10_000);
    await other.waitFor(1);
    await hooks.idle();
    expect(most).toBe(2);
    // Bob's receiver got its delivery before Alice's slow receiver had worked through her eight.
    expect(other.received[0]!.at).toBeLessThan(receiver.received.at(-1)!.at);
  });

  it('legacySignatureHeader adds x-hook-signature, the hex HMAC of the body with the secret', async () => {
    const { receiver, hooks } = await setup({ legacySignatureHeader: true });
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const [request] = await receiver.waitFor(1);
    expect(request!.headers['x-hook-signature']).toBe(createHmac('sha256', hook.secret).update(request!.body).digest('hex'));
  });
});

describe('shutdown', () => {
  it('stop() waits for a dispatcher pass in flight: what it claimed reaches the queue before the queue closes', async () => {
    // The pass's hand-over of its claims to the queue is held, so the pass is in flight when stop() begins.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    const holdFirst: QueueFactory = (context) => {
      const queue = inProcessQueue(context);
      return {
        leaseMs: queue.leaseMs,
        capacity: () => queue.capacity(),
        enqueue: async (claims) => {
          if (claims.length === 0) return;
          if (order.length === 0) {
            order.push('pass holds its claims');
            await held;
          }
          order.push('claims handed to the queue');
          return queue.enqueue(claims);
        },
        onCapacity: (listener) => queue.onCapacity(listener),
        settled: () => queue.settled(),
        close: async (timeoutMs) => {
          await queue.close(timeoutMs);
          order.push('queue closed');
        },
      };
    };
    const { receiver, hooks } = await setup({}, { queue: holdFirst });
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await eventually(() => expect(order).toEqual(['pass holds its claims']));

    const stopping = hooks.stop({ timeout: '5s' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    await stopping;
    // A closed queue would still start what it is handed: an attempt after stop(), on a closed sender
    // ("sender closed", a failed attempt that uses up a retry and counts towards disabling).
    expect(order).toEqual(['pass holds its claims', 'claims handed to the queue', 'queue closed']);
    const [delivery] = await hooks.deliveries.list(hook.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(receiver.received).toHaveLength(1);
  });
});

describe('stop() and start() again', () => {
  it('delivers again after a restart: stop() lets the connections go, start() sends on new ones', async () => {
    const { receiver, hooks } = await setup({});
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await eventually(() => expect(receiver.received).toHaveLength(1));
    await hooks.stop();
    await hooks.start();
    await hooks.model('Book', 'created', { id: 2, ownerId: 'alice' });
    await eventually(() => expect(receiver.received).toHaveLength(2), 15_000);
    await hooks.idle({ timeout: '15s' });
    const deliveries = await hooks.deliveries.list(hook.id);
    expect(deliveries.map((d) => [d.status, d.attempts])).toEqual([['delivered', 1], ['delivered', 1]]);
  });
});

describe('retention', () => {
  it('purge() deletes finished deliveries, their attempts and handled events, never pending work', async () => {
    const { receiver, hooks } = await setup({ retry: { schedule: [0, '1h'], jitter: 0 } }, { retention: false });
    receiver.respond = (request) => (request.json.data.id === 'stuck' ? 500 : 200);
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    for (const id of [1, 2, 3, 'stuck']) await hooks.model('Book', 'created', { id, ownerId: 'alice' });
    await hooks.model('Book', 'created', { id: 'orphan' }); // undeliverable: no owner
    await receiver.waitFor(4);
    await hooks.idle();
    await new Promise((resolve) => setTimeout(resolve, 5));

    expect(await hooks.purge({ olderThan: 0 })).toEqual({ deliveries: 3, events: 4 });
    const left = await hooks.deliveries.list(hook.id);
    expect(left.map((d) => [d.status, d.attempts])).toEqual([['pending', 1]]);
    expect(left[0]!.attemptLog).toHaveLength(1);
    expect(await hooks.purge({ olderThan: 0 })).toEqual({ deliveries: 0, events: 0 });
    expect(await hooks.purge({ olderThan: '1d' })).toEqual({ deliveries: 0, events: 0 });
  });
});

describe('secrets', () => {
  it('never appear in logs or error messages, through failures, 410s, disabling and rotation', async () => {
    const lines: string[] = [];
    const capture = (level: string) => (obj: object, msg?: string) => void lines.push(`${level} ${msg ?? ''} ${JSON.stringify(obj)}`);
    const logger = { debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error') };
    const errors: string[] = [];
    const { receiver, hooks } = await setup({ retry: { schedule: [0, 20], jitter: 0 }, disableAfter: 10 }, { logger, onSent: () => { throw new Error('listener broke'); } });
    receiver.respond = (request) => (request.path === '/gone' ? 410 : 500);
    const failing = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url + '/fail' });
    const gone = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url + '/gone' });
    const rotated = await hooks.subscriptions.rotateSecret(failing.id);
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    await hooks.model('Book', 'created', { ownerId: undefined }); // undeliverable: logged
    await eventually(async () => expect(await hooks.subscriptions.get(failing.id)).toMatchObject({ active: false }));
    for (const bad of [{ owner: 'alice', event: 'nope', target: receiver.url }, { owner: 'alice', event: 'book.added', target: 'ftp://x' }]) {
      await hooks.subscriptions.create(bad).catch((error: Error) => errors.push(error.message));
    }
    await hooks.subscriptions.update('sub_missing', { active: true }).catch((error: Error) => errors.push(error.message));
    expect(lines.length).toBeGreaterThan(3); // the scenario did log: 410, disable, onSent failures, no owner
    expect(errors).toHaveLength(3);
    const everything = [...lines, ...errors].join('\n');
    for (const secret of [failing.secret, rotated.secret, gone.secret]) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(secret.slice('whsec_'.length));
    }
  });
});

describe('secret rotation', () => {
  it('keeps at most three old secrets signing, each only for its grace period', async () => {
    const { receiver, hooks } = await setup({});
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    const secrets = [hook.secret];
    for (let i = 0; i < 4; i++) secrets.push((await hooks.subscriptions.rotateSecret(hook.id, { gracePeriod: i === 0 ? 1 : '1h' })).secret);
    await new Promise((resolve) => setTimeout(resolve, 5)); // the first rotation's 1 ms grace is over
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const [request] = await receiver.waitFor(1);
    const headers = request!.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(4); // current + the 3 newest old ones
    const verifies = (secret: string) => {
      try {
        verify(secret, request!);
        return true;
      } catch {
        return false;
      }
    };
    // secrets[0] (the original) fell out: its grace ended and only three old keys are kept anyway.
    expect(secrets.map(verifies)).toEqual([false, true, true, true, true]);

    // A grace period that is over stops the old secret signing.
    const other = await hooks.subscriptions.create({ owner: 'bob', event: 'book.added', target: receiver.url + '/bob' });
    const rotated = await hooks.subscriptions.rotateSecret(other.id, { gracePeriod: 1 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await hooks.model('Book', 'created', { id: 2, ownerId: 'bob' });
    const [, bobs] = await receiver.waitFor(2);
    expect(String(bobs!.headers['webhook-signature']).split(' ')).toHaveLength(1);
    verify(rotated.secret, bobs!);
  });

  it('two rotations at once both count: every secret handed out still verifies', async () => {
    const { receiver, hooks } = await setup({});
    const hook = await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: receiver.url });
    const rotated = await Promise.all([hooks.subscriptions.rotateSecret(hook.id), hooks.subscriptions.rotateSecret(hook.id)]);
    const current = (await hooks.subscriptions.get(hook.id))!.secret;
    expect(rotated.map((s) => s.secret)).toContain(current);
    await hooks.model('Book', 'created', { id: 1, ownerId: 'alice' });
    const [request] = await receiver.waitFor(1);
    // The receiver may have been set up with either answer, or still hold the original.
    for (const secret of [hook.secret, ...rotated.map((s) => s.secret)]) verify(secret, request!);
    expect(String(request!.headers['webhook-signature']).split(' ')).toHaveLength(3);
  });
});
