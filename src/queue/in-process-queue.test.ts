import { describe, expect, it } from 'vitest';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import { InProcessQueue } from './in-process-queue.js';

const claim = (id: string) => ({ id }) as ClaimedDelivery;

describe('InProcessQueue', () => {
  it('runs at most `concurrency`, holds up to 4× that, asks for more once half of it is free, and settles', async () => {
    const release: Array<() => void> = [];
    const started: string[] = [];
    const queue = new InProcessQueue(
      (delivery) => new Promise<void>((resolve) => (started.push(delivery.id), release.push(resolve))),
      { concurrency: 2, leaseMs: 1000 },
    );
    let asked = 0;
    queue.onCapacity(() => asked++);
    expect(queue.capacity()).toBe(8);
    await queue.enqueue(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map(claim));
    expect([started, queue.inFlight, queue.capacity()]).toEqual([['a', 'b'], 2, 1]);
    const releaseNext = async () => {
      release.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    };
    await releaseNext();
    expect([started, queue.capacity(), asked]).toEqual([['a', 'b', 'c'], 2, 0]);
    await releaseNext();
    await releaseNext();
    // Half the buffer (2 × concurrency) is free: a batch worth a transaction fits.
    expect([started, queue.capacity(), asked]).toEqual([['a', 'b', 'c', 'd', 'e'], 4, 1]);
    const settled = queue.settled();
    for (let i = 0; i < 4; i++) await releaseNext();
    await settled;
    expect([queue.inFlight, queue.capacity()]).toEqual([0, 8]);
  });

  it('close() aborts work still running at the deadline, then the queue can run again', async () => {
    const signals: AbortSignal[] = [];
    const queue = new InProcessQueue(
      (_, signal) => {
        signals.push(signal);
        return signals.length === 1 ? new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve())) : Promise.resolve();
      },
      { concurrency: 1, leaseMs: 1000 },
    );
    await queue.enqueue([claim('a')]);
    await queue.close(20);
    expect(signals[0]!.aborted).toBe(true);
    await queue.enqueue([claim('b')]);
    await queue.settled();
    expect(signals[1]!.aborted).toBe(false);
  });
});
