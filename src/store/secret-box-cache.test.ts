/**
 * The cache of opened values: what it spares is AES-GCM decryptions, counted here on node:crypto's own
 * `createDecipheriv` (wrapped, not replaced: every value is still really sealed and opened).
 */
import * as crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { generateSecretKey, SecretBox } from './secret-box.js';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, createDecipheriv: vi.fn(actual.createDecipheriv) };
});

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=';
const K1 = { id: 'k1', key: generateSecretKey() };
const decryptions = () => vi.mocked(crypto.createDecipheriv).mock.calls.length;

describe('SecretBox cache of opened values', () => {
  it('a value this box sealed opens without a decryption; one sealed elsewhere is decrypted once', () => {
    const box = new SecretBox([K1]);
    const before = decryptions();
    const mine = box.seal(SECRET, 'sub_1');
    expect(box.open(mine, 'sub_1')).toBe(SECRET);
    expect(box.open(mine, 'sub_1')).toBe(SECRET);
    expect(decryptions() - before).toBe(0);

    const elsewhere = new SecretBox([K1]).seal(SECRET, 'sub_2');
    expect(box.open(elsewhere, 'sub_2')).toBe(SECRET);
    expect(box.open(elsewhere, 'sub_2')).toBe(SECRET);
    expect(decryptions() - before).toBe(1);
  });

  it('a cached value still opens for its own row and column only', () => {
    const box = new SecretBox([K1]);
    const mine = box.seal(SECRET, 'sub_1');
    expect(() => box.open(mine, 'sub_2')).toThrow(/subscription sub_2 do not open/);
    expect(() => box.open(mine, 'sub_1', 'previous_secrets')).toThrow(/do not open/);
  });
});
