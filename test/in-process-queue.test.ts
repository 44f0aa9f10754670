/**
 * The embedded engine's bound on the claims it holds: `capacity()` is what the dispatcher may claim, so
 * every claim whose lease this process still holds counts against it, also one being given back (its
 * release not yet recorded: to the store it is still in flight).
 */
import { afterEach, expect, it } from 'vitest';
import { CLAIMS_PER_SLOT, InProcessQueue, STUCK_AFTER_MS } from '../src/queue/in-process-queue.js';
import type { ClaimedDelivery } from '../src/store/kysely-store.js';
import { eventually } from './support/hooks.js';

const CONCURRENCY = 2;
const TIMEOUT_MS = 1_000;
const HELD = CLAIMS_PER_SLOT * CONCURRENCY;

const queues: InProcessQueue[] = [];
/** Every attempt and release still held, let go after each test (and later ones not held) so that its queue can close. */
const held = new Set<() => void>();
let holding = true;
afterEach(async () => {
  holding = false;
  for (const resolve of held) resolve();
  held.clear();
  for (const queue of queues.splice(0)) await queue.close(0);
});

function claim(n: number, subscriptionId = 'sub_1'): ClaimedDelivery {
  return {
    id: `del_${n}`,
    eventId: `evt_${n}`,
    subscriptionId,
    attempt: 1,
    leaseUntil: Date.now() + 600_000,
    body: null,
    event: { name: 'thing.happened', model: null, action: null, owner: 'alice', allOwners: false, data: '{}', body: null, createdAt: Date.now() },
    subscription: { id: subscriptionId, owner: 'alice', event: 'thing.happened', target: 'https://receiver.example/hook', active: true, secret: 'whsec_x', previousSecrets: null, failingSince: null, maxPerSecond: null },
  };
}

/**
 * A queue whose processor holds every attempt and every release until told: attempts and give-backs
 * are told apart by the signal (a give-back's is aborted when it is handed over).
 */
function heldQueue() {
  holding = true;
  const attempts = new Map<string, () => void>();
  const releases = new Map<string, () => void>();
  const queue = new InProcessQueue(
    (delivery, signal) =>
      new Promise<void>((resolve) => {
        if (!holding) return resolve();
        (signal.aborted ? releases : attempts).set(delivery.id, resolve);
        held.add(resolve);
      }),
    // One attempt per subscription at a time: the claims of one subscription wait behind each other.
    { concurrency: CONCURRENCY, leaseMs: 600_000, timeoutMs: TIMEOUT_MS, fairness: { perOrigin: Infinity, perSubscription: 1, ownerShare: 1 } },
  );
  queues.push(queue);
  let asked = 0;
  queue.onCapacity(() => asked++);
  return { queue, attempts, releases, asked: () => asked };
}

it('a claim being given back still counts against capacity() until its release is recorded, and the dispatcher is asked for more once it is', async () => {
  const { queue, attempts, releases, asked } = heldQueue();
  await queue.enqueue(Array.from({ length: HELD }, (_, n) => claim(n)));
  expect(queue.capacity()).toBe(0);
  expect(attempts.size).toBe(1);

  // Stuck behind their subscription's one slow attempt in a full queue: given back, their releases pending.
  await eventually(() => expect(releases.size).toBeGreaterThan(0), STUCK_AFTER_MS * 5);
  const givingBack = releases.size;
  expect(givingBack).toBeGreaterThanOrEqual(HELD / 2 - 1);
  // Running, waiting and being given back together are all that is held: nothing more may be claimed yet.
  expect(queue.capacity()).toBe(0);
  expect(asked()).toBe(0);

  // A later check gives back no more than half the queue's worth: the pending releases count as room to come.
  await new Promise((resolve) => setTimeout(resolve, STUCK_AFTER_MS));
  expect(releases.size).toBe(givingBack);

  for (const release of releases.values()) release();
  await eventually(() => expect(queue.capacity()).toBe(givingBack));
  expect(asked()).toBeGreaterThan(0);

  // Settled only once the attempt ends too.
  let settled = false;
  void queue.settled().then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(settled).toBe(false);
  for (const end of attempts.values()) end();
}, 20_000);
