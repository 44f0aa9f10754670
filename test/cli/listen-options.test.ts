import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/command.js';
import { AttemptCounter, parseListenOptions, pathMatches } from '../../src/cli/listen.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

describe('parseListenOptions', () => {
  it('has defaults: 127.0.0.1:4000, status 200, path /, no secret', () => {
    expect(parseListenOptions([])).toEqual({ host: '127.0.0.1', port: 4000, secrets: [], status: 200, path: '/' });
  });

  it('reads every option; --secret may repeat', () => {
    expect(parseListenOptions(['--port', '0', '--host', '::1', '--secret', SECRET, '--secret=whsec_AAAA', '--status', '410', '--path', '/hooks/'])).toEqual({
      host: '::1',
      port: 0,
      secrets: [SECRET, 'whsec_AAAA'],
      status: 410,
      path: '/hooks',
    });
  });

  it.each([
    [['--port', '70000'], '--port must be an integer from 0 to 65535, got "70000".'],
    [['--port', '-1'], /--port/],
    [['--status', '99'], '--status must be an integer from 200 to 599, got "99".'],
    [['--status', 'ok'], /--status/],
    [['--path', 'hooks'], /--path must be a URL path/],
    [['--secret', 'not base64!'], /--secret must be a Standard Webhooks secret/],
    [['--secret', 'whsec_'], /--secret/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['--port'], /argument missing/],
    [['extra'], /Unexpected argument 'extra'/],
  ])('refuses %j', (args, message) => {
    expect(() => parseListenOptions(args)).toThrow(UsageError);
    expect(() => parseListenOptions(args)).toThrow(message);
  });
});

describe('pathMatches', () => {
  it('matches the path and below it, on segment boundaries, ignoring the query', () => {
    expect(pathMatches('/', '/anything/here?x=1')).toBe(true);
    expect(pathMatches('/hooks', '/hooks')).toBe(true);
    expect(pathMatches('/hooks', '/hooks?x=1')).toBe(true);
    expect(pathMatches('/hooks', '/hooks/alice')).toBe(true);
    expect(pathMatches('/hooks', '/hooksx')).toBe(false);
    expect(pathMatches('/hooks', '/')).toBe(false);
  });
});

describe('AttemptCounter', () => {
  it('counts repeats of each webhook-id', () => {
    const counter = new AttemptCounter();
    expect([counter.next('a'), counter.next('b'), counter.next('a'), counter.next('a')]).toEqual([1, 1, 2, 3]);
  });

  it('forgets the least recently seen ids beyond its limit', () => {
    const counter = new AttemptCounter(2);
    counter.next('a');
    counter.next('b');
    counter.next('a');
    counter.next('c'); // evicts b, the least recently seen
    expect(counter.next('a')).toBe(3);
    expect(counter.next('b')).toBe(1);
  });
});
