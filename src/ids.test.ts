import { TypeID } from 'typeid-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { idFloor, newId } from './ids.js';

afterEach(() => vi.restoreAllMocks());

/** The milliseconds a UUIDv7 carries in its first 48 bits. */
function uuidMs(uuid: string): number {
  return parseInt(uuid.replace(/-/g, '').slice(0, 12), 16);
}

describe('ids', () => {
  it('are TypeIDs that typeid-js decodes: the prefix, and a UUIDv7 holding the creation time', () => {
    const before = Date.now();
    const id = newId('evt');
    const after = Date.now();
    expect(id).toMatch(/^evt_[0-7][0-9a-hjkmnp-tv-z]{25}$/);
    const decoded = TypeID.fromString(id);
    expect(decoded.getType()).toBe('evt');
    const uuid = decoded.toUUID();
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidMs(uuid)).toBeGreaterThanOrEqual(before);
    expect(uuidMs(uuid)).toBeLessThanOrEqual(after);
    // Encoding the decoded UUID again gives the same text: the encoding is the published one, not a look-alike.
    expect(TypeID.fromUUID('evt', uuid).toString()).toBe(id);
  });

  it('every random bit lands where TypeID puts it: thousands of ids decode and encode back to the same text', () => {
    // The 62 random bits (after the variant's two): each is seen both set and clear.
    let seenSet = 0n;
    let seenClear = 0n;
    const random = (1n << 62n) - 1n;
    for (let i = 0; i < 5_000; i++) {
      const id = newId('dlv');
      const uuid = TypeID.fromString(id).toUUID();
      expect(uuid[14]).toBe('7');
      expect('89ab').toContain(uuid[19]);
      expect(TypeID.fromUUID('dlv', uuid).toString()).toBe(id);
      const bits = BigInt(`0x${uuid.replace(/-/g, '').slice(16)}`) & random;
      seenSet |= bits;
      seenClear |= ~bits & random;
    }
    expect([seenSet, seenClear]).toEqual([random, random]);
  });

  it('sort by creation time as strings, also within one millisecond and past 4096 ids in it', () => {
    vi.spyOn(Date, 'now').mockReturnValue(1_800_000_000_000);
    const ids = Array.from({ length: 10_000 }, () => newId('dlv'));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // The counter overflowed into the next milliseconds, never back.
    const times = ids.map((id) => uuidMs(TypeID.fromString(id).toUUID()));
    expect(times[0]).toBe(1_800_000_000_000);
    expect(times.at(-1)).toBe(1_800_000_000_002);
  });

  it('idFloor(prefix, ms) lies between the ids of the millisecond before and those of ms', () => {
    const now = vi.spyOn(Date, 'now');
    now.mockReturnValue(1_900_000_000_000);
    const earlier = newId('sub');
    now.mockReturnValue(1_900_000_000_001);
    const first = newId('sub');
    expect(earlier < idFloor('sub', 1_900_000_000_001)).toBe(true);
    expect(idFloor('sub', 1_900_000_000_001) <= first).toBe(true);
    expect(first < idFloor('sub', 1_900_000_000_002)).toBe(true);
  });

  it('ids of the previous format (prefix, 10 chars of ms, 16 chars) sort by time among the new ones', () => {
    const now = vi.spyOn(Date, 'now');
    // A previous-format id made at ms 1_950_000_000_000: its first 10 characters are that floor's.
    const old = `${idFloor('evt', 1_950_000_000_000)}0000abcdefghjkmn`;
    now.mockReturnValue(1_949_999_999_999);
    const before = newId('evt');
    now.mockReturnValue(1_950_000_000_001);
    const after = newId('evt');
    expect([after, old, before].sort()).toEqual([before, old, after]);
  });
});
