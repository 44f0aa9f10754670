import { describe, expect, it } from 'vitest';
import { ConfigError, ResthooksError } from '../errors.js';
import { generateSecretKey, SecretBox, sealedKeyId } from './secret-box.js';
import { parseSecretKeys, resolveSecretStorage } from './secret-keys.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=';
const K1 = { id: 'k1', key: generateSecretKey() };
const K2 = { id: 'k2', key: generateSecretKey() };

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('SecretBox', () => {
  it('seals under the first key, with a fresh IV each time, and opens back', () => {
    const box = new SecretBox([K1, K2]);
    const a = box.seal(SECRET, 'sub_1');
    const b = box.seal(SECRET, 'sub_1');
    expect(a).toMatch(/^rhenc:v1:k1:[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(SECRET.slice('whsec_'.length, 20));
    expect(box.open(a, 'sub_1')).toBe(SECRET);
    expect(box.open(b, 'sub_1')).toBe(SECRET);
    // Fits the secret column (varchar(128)) with the longest key id.
    expect(new SecretBox([{ id: 'abcdefghijkl', key: K1.key }]).seal(SECRET, 'sub_1').length).toBeLessThanOrEqual(128);
  });

  it('opens values sealed under any listed key: the rotation case', () => {
    const old = new SecretBox([K1]).seal(SECRET, 'sub_1');
    const rotated = new SecretBox([K2, K1]);
    expect(rotated.open(old, 'sub_1')).toBe(SECRET);
    expect(sealedKeyId(rotated.seal(SECRET, 'sub_1'))).toBe('k2');
    expect(rotated.isCurrent(old)).toBe(false);
    expect(rotated.isCurrent(rotated.seal(SECRET, 'sub_1'))).toBe(true);
  });

  it('reads plaintext as itself (rows from before encryption)', () => {
    expect(new SecretBox([K1]).open(SECRET, 'sub_1')).toBe(SECRET);
    expect(SecretBox.plaintext().open(SECRET, 'sub_1')).toBe(SECRET);
    expect(SecretBox.plaintext().seal(SECRET, 'sub_1')).toBe(SECRET);
    expect(new SecretBox([K1]).isCurrent(SECRET)).toBe(false);
    expect(SecretBox.plaintext().isCurrent(SECRET)).toBe(true);
  });

  it('refuses a wrong key under the same id', () => {
    const sealed = new SecretBox([K1]).seal(SECRET, 'sub_1');
    const error = thrown(() => new SecretBox([{ id: 'k1', key: K2.key }]).open(sealed, 'sub_1'));
    expect(error).toBeInstanceOf(ResthooksError);
    expect((error as ResthooksError).code).toBe('secret_unreadable');
    expect((error as Error).message).toContain('sub_1');
  });

  it('refuses tampered ciphertext, a truncated value and a relabelled key id', () => {
    const box = new SecretBox([K1, K2]);
    const sealed = box.seal(SECRET, 'sub_1');
    const body = Buffer.from(sealed.slice('rhenc:v1:k1:'.length), 'base64');
    body[20]! ^= 1;
    expect(() => box.open(`rhenc:v1:k1:${body.toString('base64')}`, 'sub_1')).toThrow(/do not open under key "k1"/);
    expect(() => box.open('rhenc:v1:k1:AAAA', 'sub_1')).toThrow(/do not open/);
    expect(() => box.open(sealed.replace(':k1:', ':k2:'), 'sub_1')).toThrow(/do not open under key "k2"/);
  });

  it('refuses a sealed value copied to another row or another column', () => {
    const box = new SecretBox([K1]);
    const sealed = box.seal(SECRET, 'sub_1');
    expect(() => box.open(sealed, 'sub_2')).toThrow(/subscription sub_2 do not open/);
    expect(() => box.open(sealed, 'sub_1', 'previous_secrets')).toThrow(/do not open/);
    // The cache of opened values is keyed by row too: opening it for its own row first changes nothing.
    expect(box.open(sealed, 'sub_1')).toBe(SECRET);
    expect(() => box.open(sealed, 'sub_2')).toThrow(/do not open/);
  });

  it('names an unknown key id, and the configured ones, without any key', () => {
    const sealed = new SecretBox([{ id: 'gone', key: K1.key }]).seal(SECRET, 'sub_1');
    const error = thrown(() => new SecretBox([K1, K2]).open(sealed, 'sub_1'));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('sealed under key "gone"');
    expect((error as Error).message).toContain('configured: k1, k2');
    expect((error as Error).message).not.toContain(K1.key);
    expect(() => SecretBox.plaintext().open(sealed, 'sub_1')).toThrow(/no keys are configured/);
  });

  it('checks keys and ids: 32 bytes as base64 or hex, short safe ids, no duplicates', () => {
    expect(() => new SecretBox([{ id: 'k1', key: 'c2hvcnQ=' }])).toThrow(/Secret key "k1" must be 32 bytes/);
    expect(() => new SecretBox([{ id: 'k1', key: 'c2hvcnQ=' }])).not.toThrow(/c2hvcnQ/);
    expect(() => new SecretBox([{ id: 'k:1', key: K1.key }])).toThrow(/not valid/);
    expect(() => new SecretBox([{ id: 'a-much-too-long-id', key: K1.key }])).toThrow(/not valid/);
    expect(() => new SecretBox([K1, { id: 'k1', key: K2.key }])).toThrow(/listed twice/);
    const hex = new SecretBox([{ id: 'hex', key: Buffer.from(K1.key, 'base64').toString('hex') }]);
    expect(new SecretBox([{ id: 'hex', key: K1.key }]).open(hex.seal(SECRET, 's'), 's')).toBe(SECRET);
    expect(new SecretBox([{ id: 'raw', key: new Uint8Array(32) }]).sealingKeyId).toBe('raw');
  });
});

describe('resolveSecretStorage', () => {
  const envKeys = `k2:${K2.key}, k1:${K1.key}`;

  it('reads RESTHOOKS_SECRET_KEYS: id:key pairs, the first seals', () => {
    expect(parseSecretKeys(envKeys)).toEqual([K2, K1]);
    const { box, warning } = resolveSecretStorage({}, { RESTHOOKS_SECRET_KEYS: envKeys }, false);
    expect(box.sealingKeyId).toBe('k2');
    expect(box.keyIds).toEqual(['k2', 'k1']);
    expect(warning).toBeUndefined();
    expect(() => parseSecretKeys(`${K1.key}`)).toThrow(/no "<id>:"/);
    expect(() => parseSecretKeys(`${K1.key}`)).not.toThrow(new RegExp(K1.key.slice(0, 10).replace(/[+/]/g, '\\$&')));
  });

  it('prefers the secretKeys option to the environment', () => {
    expect(resolveSecretStorage({ secretKeys: [K1] }, { RESTHOOKS_SECRET_KEYS: envKeys }, false).box.sealingKeyId).toBe('k1');
  });

  it('in production, no key and no choice is a ConfigError that says what to set', () => {
    const error = thrown(() => resolveSecretStorage({}, {}, false));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/no key is configured: set RESTHOOKS_SECRET_KEYS=.*secretKeys.*secretStorage: 'plaintext'/);
  });

  it('in development, no key means plaintext with a warning', () => {
    const { box, warning } = resolveSecretStorage({}, {}, true);
    expect(box.sealingKeyId).toBeNull();
    expect(warning).toMatch(/stored unencrypted .* RESTHOOKS_SECRET_KEYS/);
  });

  it('plaintext by explicit choice: no warning, in production too; keys given still open', () => {
    for (const resolved of [resolveSecretStorage({ secretStorage: 'plaintext' }, {}, false), resolveSecretStorage({}, { RESTHOOKS_SECRET_STORAGE: 'plaintext' }, false)]) {
      expect(resolved.box.sealingKeyId).toBeNull();
      expect(resolved.warning).toBeUndefined();
    }
    const sealed = new SecretBox([K1]).seal(SECRET, 'sub_1');
    expect(resolveSecretStorage({ secretStorage: 'plaintext', secretKeys: [K1] }, {}, false).box.open(sealed, 'sub_1')).toBe(SECRET);
  });

  it("'encrypted' without keys is an error even in development; an unknown choice is refused", () => {
    expect(() => resolveSecretStorage({ secretStorage: 'encrypted' }, {}, true)).toThrow(/'encrypted' but no key is configured/);
    expect(() => resolveSecretStorage({}, { RESTHOOKS_SECRET_STORAGE: 'clear' }, true)).toThrow(/must be 'encrypted' or 'plaintext', got "clear"/);
  });
});
