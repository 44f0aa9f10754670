import { describe, expect, it } from 'vitest';
import type { ClaimedDelivery } from '../../store/kysely-store.js';
import { ClaimReader } from './claim-reader.js';

const claim = (id: string) => ({ id }) as ClaimedDelivery;

describe('ClaimReader', () => {
  it('reads the claims asked for in one turn with one query; each gets its own, or undefined when gone', async () => {
    const queries: string[][] = [];
    const reader = new ClaimReader(async (ids) => {
      queries.push([...ids]);
      return ids.filter((id) => id !== 'dlv_gone').map(claim);
    });
    const [a, b, gone, again] = await Promise.all(['dlv_a', 'dlv_b', 'dlv_gone', 'dlv_a'].map((id) => reader.read(id)));
    expect(queries).toEqual([['dlv_a', 'dlv_b', 'dlv_gone']]);
    expect([a?.id, b?.id, gone, again?.id]).toEqual(['dlv_a', 'dlv_b', undefined, 'dlv_a']);

    // A later turn is a new query.
    expect((await reader.read('dlv_c'))?.id).toBe('dlv_c');
    expect(queries).toEqual([['dlv_a', 'dlv_b', 'dlv_gone'], ['dlv_c']]);
  });

  it("a job's claims are one read: in its order, undefined where gone; jobs of one turn share the query, each id asked once", async () => {
    const queries: string[][] = [];
    const reader = new ClaimReader(async (ids) => {
      queries.push([...ids]);
      return ids.filter((id) => id !== 'dlv_gone').map(claim);
    });
    const [first, second] = await Promise.all([reader.readAll(['dlv_b', 'dlv_gone', 'dlv_a']), reader.readAll(['dlv_a', 'dlv_c'])]);
    expect(queries).toEqual([['dlv_b', 'dlv_gone', 'dlv_a', 'dlv_c']]);
    expect(first.map((c) => c?.id)).toEqual(['dlv_b', undefined, 'dlv_a']);
    expect(second.map((c) => c?.id)).toEqual(['dlv_a', 'dlv_c']);
  });

  it("a claim read again for a subscription that reads the same carries the last read's subscription part; a changed one its new part", async () => {
    type Part = NonNullable<ClaimedDelivery['subscription']>;
    const part = (target: string): Part => ({ id: 'sub_1', owner: 'alice', event: 'book.added', target, active: true, secret: 's3cret', previousSecrets: null, failingSince: null, maxPerSecond: null });
    let target = 'http://127.0.0.1:1/a';
    // Like the store, every query makes its parts afresh.
    const reader = new ClaimReader(async (ids) => ids.map((id) => ({ id, subscription: id === 'dlv_deleted' ? null : part(target) }) as ClaimedDelivery));
    const first = await reader.read('dlv_a');
    const second = await reader.read('dlv_b');
    expect(second?.subscription).toBe(first?.subscription);
    expect(second?.id).toBe('dlv_b');

    target = 'http://127.0.0.1:1/b';
    const moved = await reader.read('dlv_c');
    expect(moved?.subscription).not.toBe(first?.subscription);
    expect(moved?.subscription).toEqual(part('http://127.0.0.1:1/b'));
    expect((await reader.read('dlv_d'))?.subscription).toBe(moved?.subscription);
    expect((await reader.read('dlv_deleted'))?.subscription).toBeNull();
  });

  it('a failed query fails every read that shared it, and the next turn tries again', async () => {
    let fail = true;
    const reader = new ClaimReader(async (ids) => {
      if (fail) throw new Error('store unreachable');
      return ids.map(claim);
    });
    const results = await Promise.allSettled([reader.read('dlv_a'), reader.read('dlv_b')]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['store unreachable', 'store unreachable']);
    fail = false;
    expect((await reader.read('dlv_a'))?.id).toBe('dlv_a');
  });
});
