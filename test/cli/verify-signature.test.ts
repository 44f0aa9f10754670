import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { TIMESTAMP_TOLERANCE_SECONDS, verifySignature, type SignedMessage } from '../../src/cli/verify-signature.js';
import { generateSecret, signatureHeaders } from '../../src/index.js';

const NOW = 1_700_000_000;
const BODY = '{"hook":{"id":"sub_1","event":"book.added","target":"http://127.0.0.1/"},"data":{"title":"The Two Towers é"}}';

function message(secrets: string[], options: { id?: string; timestamp?: number; body?: string } = {}): SignedMessage {
  const headers = signatureHeaders(options.id ?? 'dlv_1', options.timestamp ?? NOW, options.body ?? BODY, secrets);
  return { id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], signature: headers['webhook-signature'], body: BODY };
}

describe('verifySignature (Standard Webhooks)', () => {
  const secret = generateSecret();

  it('accepts a valid signature', () => {
    expect(verifySignature(message([secret]), [secret], NOW)).toEqual({ ok: true, secretIndex: 0 });
  });

  it('accepts what the standardwebhooks reference package signs', () => {
    const reference = new Webhook(secret);
    const signature = reference.sign('msg_1', new Date(NOW * 1000), BODY);
    expect(verifySignature({ id: 'msg_1', timestamp: String(NOW), signature, body: BODY }, [secret], NOW + 1)).toEqual({ ok: true, secretIndex: 0 });
  });

  it('rejects a signature made with another secret', () => {
    const result = verifySignature(message([generateSecret()]), [secret], NOW);
    expect(result).toEqual({ ok: false, reason: 'signature does not match the secret' });
  });

  it('rejects a changed body, id or timestamp', () => {
    const signed = message([secret]);
    expect(verifySignature({ ...signed, body: BODY.replace('Two', 'Three') }, [secret], NOW).ok).toBe(false);
    expect(verifySignature({ ...signed, id: 'dlv_2' }, [secret], NOW).ok).toBe(false);
    expect(verifySignature({ ...signed, timestamp: String(NOW + 1) }, [secret], NOW).ok).toBe(false);
  });

  it('accepts a rotation header when one of its two signatures matches, whichever position', () => {
    const other = generateSecret();
    const rotated = message([other, secret]);
    expect(rotated.signature!.split(' ')).toHaveLength(2);
    expect(verifySignature(rotated, [secret], NOW)).toEqual({ ok: true, secretIndex: 0 });
    expect(verifySignature(message([secret, other]), [secret], NOW)).toEqual({ ok: true, secretIndex: 0 });
    expect(verifySignature(message([generateSecret(), generateSecret()]), [secret], NOW)).toEqual({
      ok: false,
      reason: 'none of the 2 signatures matches the secret',
    });
  });

  it('accepts when any of the receiver secrets matches', () => {
    const [old, current] = [generateSecret(), generateSecret()];
    expect(verifySignature(message([current]), [old, current], NOW)).toEqual({ ok: true, secretIndex: 1 });
  });

  it('ignores signatures of other schemes (v1a) next to a v1 one', () => {
    const signed = message([secret]);
    expect(verifySignature({ ...signed, signature: `v1a,AAAA ${signed.signature}` }, [secret], NOW).ok).toBe(true);
    expect(verifySignature({ ...signed, signature: 'v1a,AAAA' }, [secret], NOW)).toEqual({ ok: false, reason: 'no v1 signature in webhook-signature' });
  });

  it('rejects a stale timestamp (more than 5 minutes old), even with a valid signature', () => {
    expect(TIMESTAMP_TOLERANCE_SECONDS).toBe(300);
    const signed = message([secret], { timestamp: NOW - 301 });
    expect(verifySignature(signed, [secret], NOW)).toEqual({ ok: false, reason: 'timestamp too old (301 s ago; tolerance 300 s)' });
    expect(verifySignature(message([secret], { timestamp: NOW - 300 }), [secret], NOW).ok).toBe(true);
  });

  it('rejects a timestamp more than 5 minutes in the future', () => {
    expect(verifySignature(message([secret], { timestamp: NOW + 301 }), [secret], NOW)).toEqual({
      ok: false,
      reason: 'timestamp too new (301 s ahead; tolerance 300 s)',
    });
    expect(verifySignature(message([secret], { timestamp: NOW + 300 }), [secret], NOW).ok).toBe(true);
  });

  it('agrees with the reference package on the tolerance', () => {
    const now = Math.floor(Date.now() / 1000);
    // The reference reads the clock itself, later: skews 10 s from the edge, so a second ticking over
    // in between cannot put the two on different sides of it (the exact edge is tested above).
    for (const skew of [-310, -290, 290, 310]) {
      const headers = signatureHeaders('dlv_t', now + skew, BODY, [secret]);
      const reference = (() => {
        try {
          new Webhook(secret).verify(BODY, headers);
          return true;
        } catch {
          return false;
        }
      })();
      const ours = verifySignature({ id: 'dlv_t', timestamp: String(now + skew), signature: headers['webhook-signature'], body: BODY }, [secret], now).ok;
      expect(ours, `skew ${skew}`).toBe(reference);
    }
  });

  it('rejects missing headers and a timestamp that is not Unix seconds', () => {
    const signed = message([secret]);
    expect(verifySignature({ ...signed, id: undefined, signature: undefined }, [secret], NOW)).toEqual({
      ok: false,
      reason: 'missing webhook-id, webhook-signature header',
    });
    expect(verifySignature({ ...signed, timestamp: '2024-01-01T00:00:00Z' }, [secret], NOW)).toEqual({
      ok: false,
      reason: 'webhook-timestamp "2024-01-01T00:00:00Z" is not Unix seconds',
    });
  });

  it('accepts a secret with or without the whsec_ prefix', () => {
    expect(verifySignature(message([secret]), [secret.slice('whsec_'.length)], NOW).ok).toBe(true);
  });
});
