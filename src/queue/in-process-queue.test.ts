import { describe, expect, it } from 'vitest';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import { CLAIMS_PER_SLOT, InProcessQueue } from './in-process-queue.js';

const claim = (id: string, leaseUntil = Date.now() + 3_600_000) => ({ id, leaseUntil }) as ClaimedDelivery;
const settleTurn = () => new Promise((resolve) => setImmediate(resolve));

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
});
