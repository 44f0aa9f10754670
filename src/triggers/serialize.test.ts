import { describe, expect, it } from 'vitest';
import { defaultOwner, normalizeOwner } from './owner.js';
import { toJsonText } from './serialize.js';
import { newId } from '../ids.js';

describe('default serialization', () => {
  it('uses toJSON, Dates as ISO strings and bigint as strings', () => {
    const when = new Date('2020-01-02T03:04:05.678Z');
    expect(toJsonText({ id: 10n, at: when, nested: { n: 1 } })).toBe('{"id":"10","at":"2020-01-02T03:04:05.678Z","nested":{"n":1}}');
    expect(toJsonText({ toJSON: () => ({ only: 'this' }) })).toBe('{"only":"this"}');
    expect(toJsonText(undefined)).toBe('null');
  });

  it('serializes bigint at any depth, and passes on a TypeError of toJSON that is not about a bigint', () => {
    expect(toJsonText([1n, { deep: [2n] }])).toBe('["1",{"deep":["2"]}]');
    expect(() =>
      toJsonText({
        toJSON() {
          throw new TypeError('no JSON for you');
        },
      }),
    ).toThrow('no JSON for you');
  });

  it('throws on circular data (reported by the trigger, not thrown into the caller)', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => toJsonText(a)).toThrow(/circular/i);
  });
});

describe('owners', () => {
  it('finds ownerId, then userId, then user.id', () => {
    expect(defaultOwner({ ownerId: 'a', userId: 'b', user: { id: 'c' } })).toBe('a');
    expect(defaultOwner({ userId: 7 })).toBe(7);
    expect(defaultOwner({ user: { id: 9n } })).toBe(9n);
    expect(defaultOwner({ user: null })).toBeUndefined();
    expect(defaultOwner({})).toBeUndefined();
  });

  it('stores 42, 42n and "42" as the same owner', () => {
    expect([normalizeOwner(42), normalizeOwner(42n), normalizeOwner('42')]).toEqual(['42', '42', '42']);
    expect([normalizeOwner(''), normalizeOwner(null), normalizeOwner({})]).toEqual([null, null, null]);
  });
});

describe('ids', () => {
  it('are prefixed and sort in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 2000 }, () => newId('evt'));
    expect(ids.every((id) => /^evt_[0-9a-z]{26}$/.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
