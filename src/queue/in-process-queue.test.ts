import assert from 'node:assert/strict';
import { describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/hooks.js';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import { CLAIMS_PER_SLOT, InProcessQueue, STUCK_AFTER_MS } from './in-process-queue.js';
import { GiveBack, giveBackDelayMs, type FairnessLimits } from './queue.js';

const claim = (id: string, leaseUntil = Date.now() + 3_600_000) => ({ id, leaseUntil }) as ClaimedDelivery;
const settleTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A claim of `owner`'s subscription `subscription` (default: one per claim) to `target`. */
const ownedClaim = (id: string, owner: string, target = `http://${id}.test/hook`, subscription = `sub-${id}`) =>
  ({ id, leaseUntil: Date.now() + 3_600_000, subscriptionId: subscription, subscription: { id: subscription, owner, target, active: true } }) as ClaimedDelivery;

/**
 * A queue whose attempts run until the test ends them: `started` in order, `finish(id)` ends one. With
 * `holdReleases`, a claim given back stays in `releasing` until `letGo()` releases it and every later one.
 */
function heldQueue(concurrency: number, fairness: FairnessLimits, timeoutMs = 1_000, { holdReleases = false } = {}) {
  let holding = holdReleases;
  const running = new Map<string, () => void>();
  const releasing = new Map<string, () => void>();
  const started: string[] = [];
  const givenBack: Array<{ id: string; reason: unknown }> = [];
  const queue = new InProcessQueue(
    (delivery, signal) => {
      if (signal.aborted) {
        givenBack.push({ id: delivery.id, reason: signal.reason });
        return holding ? new Promise<void>((resolve) => releasing.set(delivery.id, resolve)) : Promise.resolve();
      }
      started.push(delivery.id);
      // Like a real attempt, it also ends when the shutdown deadline aborts it.
      return new Promise<void>((resolve) => {
        running.set(delivery.id, resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
    { concurrency, leaseMs: 3_600_000, timeoutMs, fairness },
  );
  const finish = async (id: string) => {
    running.get(id)!();
    running.delete(id);
    await settleTurn();
  };
  const letGo = () => {
    holding = false;
    for (const release of releasing.values()) release();
    releasing.clear();
  };
  return { queue, started, givenBack, running, releasing, finish, letGo };
}

const NO_CAPS: FairnessLimits = { perOrigin: Infinity, perSubscription: Infinity, ownerShare: 1 };

describe('InProcessQueue', () => {
  it('runs at most `concurrency`, holds up to CLAIMS_PER_SLOT × that, asks for more once half of it is free, and settles', async () => {
    const release: Array<() => void> = [];
    const started: string[] = [];
    const queue = new InProcessQueue(
      (delivery) => new Promise<void>((resolve) => (started.push(delivery.id), release.push(resolve))),
      { concurrency: 2, leaseMs: 60_000, timeoutMs: 1_000 },
    );
    const held = CLAIMS_PER_SLOT * 2;
    let asked = 0;
    queue.onCapacity(() => asked++);
    expect(queue.capacity()).toBe(held);
    await queue.enqueue(Array.from({ length: held - 1 }, (_, i) => claim(`d${i}`)));
    expect([started, queue.inFlight, queue.capacity()]).toEqual([['d0', 'd1'], 2, 1]);
    const releaseNext = async () => {
      release.shift()!();
      await settleTurn();
    };
    await releaseNext();
    expect([started, queue.capacity(), asked]).toEqual([['d0', 'd1', 'd2'], 2, 0]);
    for (let i = 0; i < held / 2 - 3; i++) await releaseNext();
    expect([queue.capacity(), asked]).toEqual([held / 2 - 1, 0]);
    await releaseNext();
    // Half the buffer is free: a batch worth a transaction fits.
    expect([queue.capacity(), asked, queue.inFlight]).toEqual([held / 2, 1, 2]);
    const settled = queue.settled();
    for (let i = 0; i < held / 2; i++) await releaseNext();
    await settled;
    expect([started.length, queue.inFlight, queue.capacity()]).toEqual([held - 1, 0, held]);
  });

  it('gives a claim back unattempted (an aborted signal) when its lease could lapse during the attempt', async () => {
    const aborted = new Map<string, boolean>();
    const queue = new InProcessQueue(async (delivery, signal) => void aborted.set(delivery.id, signal.aborted), {
      concurrency: 1,
      leaseMs: 60_000,
      timeoutMs: 10_000,
    });
    const now = Date.now();
    // The attempt needs its timeout (10 s) plus a margin for its record left on the lease.
    await queue.enqueue([claim('fresh', now + 60_000), claim('waited-too-long', now + 10_000), claim('lapsed', now - 1)]);
    await queue.settled();
    expect(Object.fromEntries(aborted)).toEqual({ fresh: false, 'waited-too-long': true, lapsed: true });
  });

  it('close() aborts work still running at the deadline, then the queue can run again', async () => {
    const signals: AbortSignal[] = [];
    const queue = new InProcessQueue(
      (_, signal) => {
        signals.push(signal);
        return signals.length === 1 ? new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve())) : Promise.resolve();
      },
      { concurrency: 1, leaseMs: 60_000, timeoutMs: 1_000 },
    );
    await queue.enqueue([claim('a')]);
    await queue.close(20);
    expect(signals[0]!.aborted).toBe(true);
    await queue.enqueue([claim('b')]);
    await queue.settled();
    expect(signals[1]!.aborted).toBe(false);
  });

  describe('fairness', () => {
    it('owners take turns: a long line of one owner does not go before a later owner\'s claims', async () => {
      const { queue, started, finish } = heldQueue(1, NO_CAPS);
      await queue.enqueue(['a1', 'a2', 'a3'].map((id) => ownedClaim(id, 'a')));
      await queue.enqueue(['b1', 'b2'].map((id) => ownedClaim(id, 'b')));
      for (const id of ['a1', 'b1', 'a2', 'b2']) await finish(id);
      expect(started).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
    });

    it('an owner holds at most its share of the slots the others leave free', async () => {
      const { queue, started, finish } = heldQueue(8, { ...NO_CAPS, ownerShare: 0.5 });
      const line = (owner: string) => Array.from({ length: 10 }, (_, i) => ownedClaim(`${owner}${i}`, owner));
      await queue.enqueue(line('a'));
      expect(started).toEqual(['a0', 'a1', 'a2', 'a3']); // half of 8
      await queue.enqueue(line('b'));
      expect(started.slice(4)).toEqual(['b0', 'b1']); // half of the 4 left
      await queue.enqueue([...line('c'), ...line('d')]);
      expect(started.slice(6)).toEqual(['c0', 'd0']); // one each: every owner gets at least one slot while any is free
      expect(queue.inFlight).toBe(8);
      // A slot freed by b stays free for an owner with nothing in flight: every owner here is at its share.
      await finish('b0');
      expect([started.length, queue.inFlight]).toEqual([8, 7]);
      await queue.enqueue([ownedClaim('e0', 'e')]);
      expect(started.slice(8)).toEqual(['e0']);
    });

    it('an origin at its cap waits while the same owner\'s other origins go; origins compare as URLs do', async () => {
      const { queue, started, finish } = heldQueue(8, { ...NO_CAPS, perOrigin: 2 });
      await queue.enqueue([
        ownedClaim('x1', 'a', 'http://X.test:80/one'),
        ownedClaim('x2', 'a', 'http://x.test/two'),
        ownedClaim('x3', 'a', 'HTTP://x.test/three'),
        ownedClaim('y1', 'a', 'http://y.test/'),
        ownedClaim('x4', 'a', 'http://x.test:8080/other-port'),
      ]);
      expect(started).toEqual(['x1', 'x2', 'y1', 'x4']);
      await finish('x1');
      expect(started.at(-1)).toBe('x3');
    });

    it('a subscription at its cap waits while others go', async () => {
      const { queue, started, finish } = heldQueue(8, { ...NO_CAPS, perSubscription: 1 });
      await queue.enqueue([
        ownedClaim('s1', 'a', 'http://x.test/', 'sub-s'),
        ownedClaim('s2', 'a', 'http://x.test/', 'sub-s'),
        ownedClaim('t1', 'a', 'http://x.test/', 'sub-t'),
      ]);
      expect(started).toEqual(['s1', 't1']);
      await finish('s1');
      expect(started).toEqual(['s1', 't1', 's2']);
    });

    it('in a full queue, claims stuck behind their own owner are given back for one timeout; the dispatcher is asked for more', async () => {
      const { queue, started, givenBack } = heldQueue(2, { ...NO_CAPS, ownerShare: 0.5 }, 7_000);
      let asked = 0;
      queue.onCapacity(() => asked++);
      const held = CLAIMS_PER_SLOT * 2;
      const enqueuedAt = Date.now();
      await queue.enqueue(Array.from({ length: held }, (_, i) => ownedClaim(`h${i}`, 'hanging')));
      expect([started, queue.capacity()]).toEqual([['h0'], 0]);
      await eventually(() => assert.ok(givenBack.length > 0), 5_000);
      expect(Date.now() - enqueuedAt).toBeGreaterThanOrEqual(STUCK_AFTER_MS);
      // Just enough for a batch to fit again, newest first; each is due again one attempt timeout later.
      expect(givenBack.map((g) => g.id)).toEqual(Array.from({ length: held / 2 }, (_, i) => `h${held - 1 - i}`));
      for (const { reason } of givenBack) expect([reason instanceof GiveBack, giveBackDelayMs(reason)]).toEqual([true, 7_000]);
      expect([queue.capacity(), asked]).toEqual([held / 2, 1]);
      await queue.close(10);
    });

    it('a claim being given back still counts against capacity() until its release is recorded, and the dispatcher is asked for more once it is', async () => {
      // One attempt per subscription: the claims of one subscription wait behind each other.
      const { queue, givenBack, running, releasing, letGo } = heldQueue(2, { ...NO_CAPS, perSubscription: 1 }, 1_000, { holdReleases: true });
      let asked = 0;
      queue.onCapacity(() => asked++);
      const held = CLAIMS_PER_SLOT * 2;
      await queue.enqueue(Array.from({ length: held }, (_, i) => ownedClaim(`s${i}`, 'alice', 'http://x.test/', 'sub-s')));
      expect([queue.capacity(), running.size]).toEqual([0, 1]);

      // Stuck behind their subscription's one slow attempt in a full queue: given back, their releases pending.
      await eventually(() => assert.ok(releasing.size > 0), STUCK_AFTER_MS * 5);
      const givingBack = releasing.size;
      expect(givingBack).toBeGreaterThanOrEqual(held / 2 - 1);
      // Running, waiting and being given back together are all that is held: nothing more may be claimed yet.
      expect([queue.capacity(), asked]).toEqual([0, 0]);

      // A later check gives back no more than half the queue's worth: the pending releases count as room to come.
      await new Promise((resolve) => setTimeout(resolve, STUCK_AFTER_MS));
      expect(givenBack).toHaveLength(givingBack);

      letGo();
      await eventually(() => expect(queue.capacity()).toBe(givingBack));
      expect(asked).toBeGreaterThan(0);

      // Settled only once the attempt ends too.
      let settled = false;
      void queue.settled().then(() => (settled = true));
      await settleTurn();
      expect(settled).toBe(false);
      await queue.close(10);
    }, 20_000);

    it('claims that only wait for a free slot, or a queue with room for a batch, give nothing back', async () => {
      const { queue, givenBack } = heldQueue(2, NO_CAPS);
      // All slots busy, the queue full: the waiting claims are not stuck behind their own owner.
      await queue.enqueue(Array.from({ length: CLAIMS_PER_SLOT * 2 }, (_, i) => ownedClaim(`w${i}`, `owner-${i}`)));
      const { queue: roomy, givenBack: roomyGivenBack } = heldQueue(2, { ...NO_CAPS, ownerShare: 0.5 });
      await roomy.enqueue(Array.from({ length: 10 }, (_, i) => ownedClaim(`r${i}`, 'hanging')));
      await new Promise((resolve) => setTimeout(resolve, STUCK_AFTER_MS + 600));
      expect([givenBack, roomyGivenBack]).toEqual([[], []]);
      await queue.close(10);
      await roomy.close(10);
    });

    it('caps as large as the concurrency give nothing back: one owner\'s fan-out to one origin only waits for slots', async () => {
      const { queue, started, givenBack, finish } = heldQueue(2, { perOrigin: 2, perSubscription: 2, ownerShare: 1 });
      const fanOut = Array.from({ length: CLAIMS_PER_SLOT * 2 }, (_, i) => ownedClaim(`f${i}`, 'alice', `http://one.test/hook/${i}`));
      await queue.enqueue(fanOut);
      expect([started, queue.capacity()]).toEqual([['f0', 'f1'], 0]);
      await new Promise((resolve) => setTimeout(resolve, STUCK_AFTER_MS + 600));
      expect(givenBack).toEqual([]);
      // They start as slots free, in order.
      await finish('f0');
      expect(started).toEqual(['f0', 'f1', 'f2']);
      await queue.close(10);
    });

    it('at the shutdown deadline, claims waiting for their caps are given back at once', async () => {
      const running = new Map<string, () => void>();
      const givenBack: string[] = [];
      const started: string[] = [];
      // This attempt ignores the abort a while (a slow record, say): s2 must not wait for it.
      const queue = new InProcessQueue(
        (delivery, signal) => {
          if (signal.aborted) return void givenBack.push(delivery.id), Promise.resolve();
          started.push(delivery.id);
          return new Promise<void>((resolve) => running.set(delivery.id, resolve));
        },
        { concurrency: 4, leaseMs: 3_600_000, timeoutMs: 1_000, fairness: { ...NO_CAPS, perSubscription: 1 } },
      );
      await queue.enqueue([ownedClaim('s1', 'a', 'http://x.test/', 'sub-s'), ownedClaim('s2', 'a', 'http://x.test/', 'sub-s')]);
      expect(started).toEqual(['s1']);
      const closed = queue.close(20);
      await eventually(() => assert.deepEqual(givenBack, ['s2']));
      expect(running.has('s1')).toBe(true); // still running: s2 did not wait for it
      running.get('s1')!();
      await closed;
    });
  });
});
