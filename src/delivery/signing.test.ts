import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { envelopeBody } from './envelope.js';
import { generateSecret, sign, signatureHeaders } from './signing.js';

describe('Standard Webhooks signing', () => {
  it('makes whsec_ secrets of 32 random bytes', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    expect(generateSecret()).not.toBe(secret);
  });

  it('signs exactly as the reference implementation verifies', () => {
    const secret = generateSecret();
    const body = '{"hook":{"id":"sub_1"},"data":{"title":"The Two Towers é"}}';
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders('dlv_1', timestamp, body, [secret]);
    expect(headers['webhook-id']).toBe('dlv_1');
    expect(headers['webhook-timestamp']).toBe(String(timestamp));
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
    expect(() => new Webhook(secret).verify(body.replace('Two', 'Three'), headers)).toThrow();
  });

  it('sends one signature per secret during a rotation, each verifiable', () => {
    const [current, previous] = [generateSecret(), generateSecret()];
    const body = '{}';
    const headers = signatureHeaders('dlv_2', Math.floor(Date.now() / 1000), body, [current, previous]);
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(body, headers)).toEqual({});
    expect(new Webhook(previous).verify(body, headers)).toEqual({});
  });

  it('is deterministic for the same input', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect(sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
});

describe('envelope', () => {
  it("splices the data into the seed's {hook, data} shape, key order kept", () => {
    const body = envelopeBody({ id: 'sub_1', event: 'book.added', target: 'https://x.test/h' }, '{"id":1,"title":"T"}');
    expect(body).toBe('{"hook":{"id":"sub_1","event":"book.added","target":"https://x.test/h"},"data":{"id":1,"title":"T"}}');
    expect(JSON.parse(body)).toEqual({ hook: { id: 'sub_1', event: 'book.added', target: 'https://x.test/h' }, data: { id: 1, title: 'T' } });
  });
});
