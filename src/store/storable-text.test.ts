import { describe, expect, it } from 'vitest';
import { storableText } from './storable-text.js';

const utf8Length = (text: string) => Buffer.byteLength(text, 'utf8');
// A string survives a UTF-8 round trip exactly when it is well-formed (no lone surrogate).
const roundTrips = (text: string) => Buffer.from(text, 'utf8').toString('utf8') === text;

describe('storableText', () => {
  it('leaves ordinary text, other control characters and astral characters alone', () => {
    const text = 'ok\t\r\n\u0001\u007f é € 😀 𝄞';
    expect(storableText(text)).toBe(text);
    expect(storableText(null)).toBeNull();
    expect(storableText('')).toBe('');
  });

  it('replaces NUL with U+FFFD', () => {
    expect(storableText('a\0b\0\0')).toBe('a\uFFFDb\uFFFD\uFFFD');
  });

  it('replaces lone surrogates (high at the end, high before a non-surrogate, low alone) and keeps pairs', () => {
    expect(storableText('x\uD83D')).toBe('x\uFFFD');
    expect(storableText('\uD83Dx')).toBe('\uFFFDx');
    expect(storableText('\uDE00x')).toBe('\uFFFDx');
    expect(storableText('\uDE00\uD83D')).toBe('\uFFFD\uFFFD');
    expect(storableText('\uD83D\uD83D\uDE00')).toBe('\uFFFD😀');
    const result = storableText('a\uD800b\uDFFFc\0😀');
    expect(result).toBe('a\uFFFDb\uFFFDc\uFFFD😀');
    expect(roundTrips(result)).toBe(true);
  });

  it('cuts to a UTF-8 byte budget on a character boundary, never splitting a pair', () => {
    expect(storableText('abcdef', 4)).toBe('abcd');
    expect(storableText('aé', 2)).toBe('a'); // é is 2 bytes: 3 would not fit
    expect(storableText('a😀b', 4)).toBe('a'); // 😀 is 4 bytes
    expect(storableText('a😀b', 5)).toBe('a😀');
    expect(storableText('€€', 5)).toBe('€');
    expect(storableText('short', 100)).toBe('short');
    expect(storableText('x\0y', 0)).toBe('');
    const long = '😀é€a\0\uD800'.repeat(500);
    for (const limit of [0, 1, 2, 3, 4, 5, 7, 100, 1001, 5000]) {
      const cut = storableText(long, limit);
      expect(utf8Length(cut)).toBeLessThanOrEqual(limit);
      expect(roundTrips(cut)).toBe(true);
      expect(cut).not.toContain('\0');
      // As long as possible: one more character would not fit.
      const whole = storableText(long);
      const next = whole.codePointAt(cut.length);
      if (next !== undefined) expect(utf8Length(cut) + utf8Length(String.fromCodePoint(next))).toBeGreaterThan(limit);
    }
  });
});
