import { describe, expect, it } from 'vitest';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import { InProcessQueue } from './in-process-queue.js';

const claim = (id: string) => ({ id }) as ClaimedDelivery;

describe('InProcessQueue', () => {
  it('reports capacity, tells when a slot frees, and settles', async () => {
    const release: Array<() => void> = [];
    const queue = new InProcessQueue(() => new Promise<void>((resolve) => release.push(resolve)), { concurrency: 2, leaseMs: 1000 });
    let freed = 0;
    queue.onCapacity(() => freed++);
    await queue.enqueue([claim('a'), claim('b')]);
    expect(queue.capacity()).toBe(0);
    release.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
    expect([queue.capacity(), freed]).toEqual([1, 1]);
    const settled = queue.settled();
    release.shift()!();
    await settled;
    expect(queue.inFlight).toBe(0);
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
