import { describe, expect, it } from 'vitest';
import { interimContinueEnd } from './interim-continue.js';

const end = (text: string) => interimContinueEnd(Buffer.from(text, 'latin1'));

describe('interimContinueEnd', () => {
  it('finds the end of an interim 100 response, with or without a reason phrase and headers', () => {
    expect(end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(25);
    expect(end('HTTP/1.0 100\r\n\r\n')).toBe(16);
    expect(end('HTTP/1.1 100 Continue\r\nx-a: b\r\n\r\n')).toBe(33);
  });

  it('anything else is not an interim 100: final statuses, other 1xx, garbage', () => {
    for (const text of ['HTTP/1.1 200 OK\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\n\r\n', 'HTTP/1.1 1000 x\r\n', 'HTTP/2 100\r\n\r\n', 'hello', 'HTTP/1.1 100x\r\n\r\n']) {
      expect(end(text), text).toBe(-1);
    }
  });

  it('undecided (0) while the bytes so far could still be one', () => {
    for (const text of ['', 'H', 'HTTP/1.', 'HTTP/1.1 10', 'HTTP/1.1 100', 'HTTP/1.1 100 Continue\r\n', 'HTTP/1.1 100 Continue\r\n\r']) {
      expect(end(text), JSON.stringify(text)).toBe(0);
    }
    expect(end('HTTP/1.1 20')).toBe(-1);
  });
});
