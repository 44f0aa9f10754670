import { describe, expect, it } from 'vitest';
import {
  COLORS,
  eventOf,
  formatBody,
  formatDelivery,
  formatIgnored,
  MAX_PRINTED_BODY,
  paletteFor,
  PLAIN,
  printable,
  type ReceivedDelivery,
} from '../../src/cli/format-delivery.js';
import { verifySignature } from '../../src/cli/verify-signature.js';

/** Anything a terminal acts on, other than newline and tab. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const AT = new Date('2025-01-02T03:04:05.678Z');
const BODY = '{"hook":{"id":"sub_1","event":"book.added","target":"http://127.0.0.1:4000/"},"data":{"id":1,"title":"The Two Towers"}}';

function delivery(overrides: Partial<ReceivedDelivery> = {}): ReceivedDelivery {
  return { receivedAt: AT, method: 'POST', path: '/', webhookId: 'dlv_1', attempt: 1, body: BODY, signature: { ok: true, secretIndex: 0 }, status: 200, ...overrides };
}

describe('formatDelivery', () => {
  it('prints time, event, attempt, signature, status, webhook-id and the indented JSON body', () => {
    expect(formatDelivery(delivery(), PLAIN)).toBe(
      [
        '2025-01-02T03:04:05.678Z  book.added  attempt 1  ✓ signature  → 200',
        '  POST /  webhook-id: dlv_1',
        '  {',
        '    "hook": {',
        '      "id": "sub_1",',
        '      "event": "book.added",',
        '      "target": "http://127.0.0.1:4000/"',
        '    },',
        '    "data": {',
        '      "id": 1,',
        '      "title": "The Two Towers"',
        '    }',
        '  }',
        '',
      ].join('\n'),
    );
  });

  it('marks a repeated webhook-id as a repeat attempt', () => {
    expect(formatDelivery(delivery({ attempt: 3 }), PLAIN).split('\n')[0]).toContain('attempt 3 (repeat)');
  });

  it('shows ✗ with the reason for a bad signature, and the unchecked note without a secret', () => {
    expect(formatDelivery(delivery({ signature: { ok: false, reason: 'signature does not match the secret' } }), PLAIN).split('\n')[0]).toContain(
      '✗ signature: signature does not match the secret',
    );
    expect(formatDelivery(delivery({ signature: 'unchecked' }), PLAIN).split('\n')[0]).toContain('unsigned check: pass --secret');
  });

  it('copes with bodies that are not resthooks envelopes, not JSON, or empty', () => {
    const plain = formatDelivery(delivery({ body: '{"a":1}', webhookId: undefined, attempt: undefined, status: 410 }), PLAIN);
    expect(plain.split('\n')[0]).toBe('2025-01-02T03:04:05.678Z  (no hook.event)  attempt ?  ✓ signature  → 410');
    expect(plain).toContain('webhook-id: (none)');
    expect(formatBody('a=1&b=2', PLAIN)).toBe('  (not JSON)\n  a=1&b=2');
    expect(formatBody('', PLAIN)).toBe('  (empty body)');
  });

  it('cuts very large bodies and says how much is left out', () => {
    const text = formatBody('x'.repeat(MAX_PRINTED_BODY + 10), PLAIN);
    expect(text).toContain('… (10 more characters not shown)');
    expect(text.length).toBeLessThan(MAX_PRINTED_BODY + 100);
  });

  it('colors with ANSI codes only through the color palette', () => {
    const colored = formatDelivery(delivery(), COLORS);
    expect(colored).toContain('\u001b[32m✓ signature\u001b[39m');
    expect(colored).toContain('\u001b[1m\u001b[36mbook.added\u001b[39m\u001b[22m');
    expect(formatDelivery(delivery(), PLAIN)).not.toContain('\u001b');
  });

  it('never passes terminal control sequences from the request through', () => {
    const evil = '{"hook":{"event":"x\\u001b]0;pwned\\u0007"},"data":"\\u009b2J"}';
    const out = formatDelivery(delivery({ body: evil, path: '/\u001b[2J', webhookId: 'id\u001b[31m' }), PLAIN);
    expect(out).not.toMatch(/[\u001b\u0007\u009b]/);
    expect(out).toContain('x\\u001b]0;pwned\\u0007');
    expect(formatBody('raw \u001b[2J\ttab\r\nnext', PLAIN)).toBe('  (not JSON)\n  raw \\u001b[2J\ttab\\u000d\n  next');
    expect(printable('a\nb')).toBe('a\\u000ab');
  });

  it('escapes request headers quoted in a failed signature check (a C1 CSI in webhook-timestamp)', () => {
    const signature = verifySignature({ id: 'dlv_1', timestamp: '12\u009b2J\u001b[31m', signature: 'v1,x', body: BODY }, [SECRET], 12);
    expect(signature).toMatchObject({ ok: false });
    const headline = formatDelivery(delivery({ signature }), PLAIN).split('\n')[0]!;
    expect(headline).not.toMatch(UNSAFE);
    expect(headline).toContain('✗ signature: webhook-timestamp "12\\u009b2J\\u001b[31m" is not Unix seconds');
  });

  it('escapes every C0 and C1 control and the bidi controls, keeping only newline and tab in bodies', () => {
    const controls = [...Array.from({ length: 0x20 }, (_, i) => i), ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i)];
    const bidi = [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069];
    for (const code of [...controls, ...bidi]) {
      const ch = String.fromCharCode(code);
      const escaped = `\\u${code.toString(16).padStart(4, '0')}`;
      expect(printable(`a${ch}b`)).toBe(`a${escaped}b`);
      expect(printable(`a${ch}b`, true)).toBe(code === 0x09 || code === 0x0a ? `a${ch}b` : `a${escaped}b`);
    }
    expect(printable('plain ✓ ünïcode 😀 text')).toBe('plain ✓ ünïcode 😀 text');
  });

  it('prints requests that are not deliveries as one line', () => {
    expect(formatIgnored(AT, 'GET', '/favicon.ico', 405, PLAIN)).toBe('2025-01-02T03:04:05.678Z  GET /favicon.ico  ignored → 405\n');
  });
});

describe('eventOf', () => {
  it('reads hook.event from an envelope and nothing else', () => {
    expect(eventOf(JSON.parse(BODY))).toBe('book.added');
    expect(eventOf({ hook: { event: 1 } })).toBeUndefined();
    expect(eventOf({ hook: null })).toBeUndefined();
    expect(eventOf([1])).toBeUndefined();
    expect(eventOf(null)).toBeUndefined();
  });
});

describe('paletteFor', () => {
  it('colors only on a TTY without NO_COLOR', () => {
    expect(paletteFor(true, {})).toBe(COLORS);
    expect(paletteFor(false, {})).toBe(PLAIN);
    expect(paletteFor(undefined, {})).toBe(PLAIN);
    expect(paletteFor(true, { NO_COLOR: '1' })).toBe(PLAIN);
  });
});
