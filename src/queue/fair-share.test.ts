import { describe, expect, it } from 'vitest';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import { FairShare } from './fair-share.js';

/** A claim of `owner` to `origin`, one subscription per claim. */
const claimTo = (id: string, origin: string, owner = 'alice') =>
  ({ id, leaseUntil: Number.MAX_SAFE_INTEGER, subscriptionId: `sub-${id}`, subscription: { id: `sub-${id}`, owner, target: `${origin}/hook`, active: true } }) as ClaimedDelivery;

describe('FairShare with a long line (one event fanned out to thousands)', () => {
  it('starts claims in arrival order across thousands, with claims added meanwhile, and gives the rest back in order', () => {
    const fair = new FairShare(8, { perOrigin: Infinity, perSubscription: Infinity, ownerShare: 1 });
    const ids = Array.from({ length: 4000 }, (_, i) => `d${String(i).padStart(4, '0')}`);
    const run = (count: number) =>
      Array.from({ length: count }, () => {
        const entry = fair.next()!;
        fair.started(entry);
        fair.finished(entry);
        return entry.claim.id;
      });
    for (const id of ids.slice(0, 3000)) fair.add(claimTo(id, `http://r${id.length % 3}.test`), 0);
    expect(run(2600)).toEqual(ids.slice(0, 2600));
    for (const id of ids.slice(3000)) fair.add(claimTo(id, 'http://r0.test'), 0);
    expect(run(1000)).toEqual(ids.slice(2600, 3600));
    expect(fair.waiting).toBe(400);
    expect(fair.takeAll().map((entry) => entry.claim.id)).toEqual(ids.slice(3600));
    expect(fair.waiting).toBe(0);
    expect(fair.next()).toBeUndefined();
  });

  it('a claim at its cap keeps its place while the ones behind it go, and goes first once its origin is free', () => {
    const fair = new FairShare(8, { perOrigin: 1, perSubscription: Infinity, ownerShare: 1 });
    const fast = Array.from({ length: 20 }, (_, i) => `f${i}`);
    for (const id of ['s0', 's1']) fair.add(claimTo(id, 'http://slow.test'), 0);
    for (const id of fast) fair.add(claimTo(id, 'http://fast.test'), 0);
    const slow = fair.next()!;
    fair.started(slow);
    expect(slow.claim.id).toBe('s0');
    const started = Array.from({ length: 20 }, () => {
      const entry = fair.next()!;
      fair.started(entry);
      fair.finished(entry);
      return entry.claim.id;
    });
    expect(started).toEqual(fast);
    expect(fair.next()).toBeUndefined();
    fair.finished(slow);
    expect(fair.next()?.claim.id).toBe('s1');
  });

  it('takeStuck reads no line while no owner, origin or subscription is at a binding limit, and takes the stuck ones once one is', () => {
    const fair = new FairShare(4, { perOrigin: 1, perSubscription: Infinity, ownerShare: 1 });
    for (let i = 0; i < 3; i++) fair.add(claimTo(`s${i}`, 'http://slow.test'), 0);
    expect(fair.takeStuck(10, 10)).toEqual([]);
    const first = fair.next()!;
    fair.started(first);
    // The origin is at its cap: the two claims behind it are stuck, newest first.
    expect(fair.takeStuck(10, 10).map((entry) => entry.claim.id)).toEqual(['s2', 's1']);
    expect(fair.waiting).toBe(0);
  });
});

describe('FairShare caps against the concurrency', () => {
  /** Claims started (and kept running) until `next()` finds none, of `total` waiting claims to one origin and subscription. */
  const startedOf = (concurrency: number, cap: number, total: number) => {
    const fair = new FairShare(concurrency, { perOrigin: cap, perSubscription: cap, ownerShare: 1 });
    for (let i = 0; i < total; i++) fair.add({ ...claimTo(`d${i}`, 'http://one.test'), subscriptionId: 'sub-one' } as ClaimedDelivery, 0);
    let started = 0;
    for (let entry = fair.next(); entry && started < concurrency; entry = started < concurrency ? fair.next() : undefined) {
      fair.started(entry);
      started++;
    }
    return { fair, started };
  };

  it('a cap as large as the concurrency lets one origin and one subscription take every slot', () => {
    expect(startedOf(4, 4, 10).started).toBe(4);
    expect(startedOf(4, 100, 10).started).toBe(4);
  });

  it('a cap one below the concurrency holds the next claim back until one of the origin\'s attempts ends', () => {
    const { fair, started } = startedOf(4, 3, 10);
    expect(started).toBe(3);
    expect(fair.next()).toBeUndefined();
    expect(fair.takeStuck(10, 1).map((entry) => entry.claim.id)).toEqual(['d9']);
  });
});
