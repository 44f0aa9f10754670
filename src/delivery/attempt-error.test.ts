import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import { AttemptTimeoutError, attemptErrorMessage } from './attempt-error.js';

const withCode = (message: string, code: string, name = 'Error') => Object.assign(new Error(message), { code, name });

describe('attemptErrorMessage', () => {
  it.each([
    [new AttemptTimeoutError(15_000), 'timed out after 15000 ms'],
    [withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'), 'connection refused'],
    [withCode('read ECONNRESET', 'ECONNRESET'), 'connection reset'],
    [withCode('write EPIPE', 'EPIPE'), 'connection reset'],
    [withCode('other side closed', 'UND_ERR_SOCKET', 'SocketError'), 'connection closed by the receiver'],
    [withCode('closed', 'UND_ERR_SOCKET', 'SocketError'), 'connection closed by the receiver'],
    [withCode('bad response', 'UND_ERR_SOCKET', 'SocketError'), 'invalid HTTP response'],
    [withCode('bad upgrade', 'UND_ERR_SOCKET', 'SocketError'), 'invalid HTTP response'],
    [withCode('Response does not match the HTTP/1.1 protocol (Invalid header value char)', 'HPE_INVALID_HEADER_TOKEN', 'HTTPParserError'), 'invalid HTTP response (HPE_INVALID_HEADER_TOKEN)'],
    [Object.assign(new Error('Response does not match the HTTP/1.1 protocol (Expected HTTP/)'), { name: 'HTTPParserError' }), 'invalid HTTP response'],
    [withCode('Headers Overflow Error', 'UND_ERR_HEADERS_OVERFLOW'), 'invalid HTTP response (headers too large)'],
    [new AssertionError({ message: 'The expression evaluated to a falsy value:\n\n  assert(this.statusCode < 200)\n' }), 'invalid HTTP response'],
    [withCode('Connect Timeout Error (attempted address: 10.0.0.1:443, timeout: 10000ms)', 'UND_ERR_CONNECT_TIMEOUT'), 'connect timeout'],
    [withCode('getaddrinfo ENOTFOUND hooks.example', 'ENOTFOUND'), 'DNS lookup failed (ENOTFOUND)'],
    [withCode('queryA EAI_AGAIN hooks.example', 'EAI_AGAIN'), 'DNS lookup failed (EAI_AGAIN)'],
    [withCode('certificate has expired', 'CERT_HAS_EXPIRED'), 'TLS error (CERT_HAS_EXPIRED)'],
    [withCode('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'), 'TLS error (DEPTH_ZERO_SELF_SIGNED_CERT)'],
    [withCode("Hostname/IP does not match certificate's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID'), 'TLS error (ERR_TLS_CERT_ALTNAME_INVALID)'],
    [withCode('80DC…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:…ssl3_record.c:350:\n', 'ERR_SSL_WRONG_VERSION_NUMBER'), 'TLS error (ERR_SSL_WRONG_VERSION_NUMBER)'],
    [withCode('connect EHOSTUNREACH 192.0.2.1:443', 'EHOSTUNREACH'), 'host unreachable'],
    [withCode('connect ENETUNREACH 192.0.2.1:443', 'ENETUNREACH'), 'network unreachable'],
    [withCode('Invalid URL', 'ERR_INVALID_URL', 'TypeError'), 'invalid target URL'],
    [withCode('invalid x header', 'UND_ERR_INVALID_ARG'), 'invalid request: invalid x header'],
    [withCode('target host "db.internal" resolves to 10.0.0.5 (private), which is refused; set allowPrivateTargets or add it to allowList', 'ERR_RESTHOOKS_TARGET_REFUSED'),
      'target host "db.internal" resolves to 10.0.0.5 (private), which is refused; set allowPrivateTargets or add it to allowList'],
  ])('%s → %s', (error, expected) => {
    expect(attemptErrorMessage(error)).toBe(expected);
  });

  it('names the code of a wrapped error (undici puts the socket error in `cause`)', () => {
    expect(attemptErrorMessage(new TypeError('fetch failed', { cause: withCode('read ECONNRESET', 'ECONNRESET') }))).toBe('connection reset');
  });

  it('an unknown error keeps its code and first line, cut short', () => {
    expect(attemptErrorMessage(withCode('something odd\nsecond line', 'EWEIRD'))).toBe('request failed (EWEIRD): something odd');
    expect(attemptErrorMessage(new Error(`x${'y'.repeat(500)}`))).toHaveLength(201);
    expect(attemptErrorMessage('a string')).toBe('a string');
    expect(attemptErrorMessage(new Error(''))).toBe('Error');
  });
});
