import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, Pool } from 'undici';
import { checkTarget, guardedConnector, refusedRange, type Resolver } from './ssrf.js';

/** A fake DNS: a fixed table, and a log of every question asked. Unknown names fail like getaddrinfo does. */
function fakeResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const resolver = async (hostname: string) => {
    calls.push(hostname);
    const answers = table[hostname];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return answers.map((address) => ({ address, family: (address.includes(':') ? 6 : 4) as 4 | 6 }));
  };
  return Object.assign(resolver, { calls });
}

describe('refusedRange', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'uniqueLocal'],
    ['fe80::1', 'linkLocal'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'linkLocal'],
    ['64:ff9b::a00:1', 'private'], // RFC 6052 NAT64 of 10.0.0.1
    ['64:ff9b:1::1', 'nat64LocalUse'],
    ['2002:c0a8:101::1', 'private'], // 6to4 of 192.168.1.1
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private'], // Teredo, client 10.0.0.1 obfuscated
    ['::a00:1', 'reserved'], // deprecated IPv4-compatible form, outside 2000::/3
    ['2001:db8::1', 'reserved'],
    ['not-an-ip', 'invalid'],
    ['127.1', 'invalid'],
  ])('%s is refused as %s', (address, range) => {
    expect(refusedRange(address)).toBe(range);
  });

  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '64:ff9b::808:808', '::ffff:8.8.8.8'])('%s is public', (address) => {
    expect(refusedRange(address)).toBeNull();
  });
});

describe('checkTarget', () => {
  const dns = fakeResolver({
    'public.test': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'mixed.test': ['93.184.216.34', '10.0.0.5'],
    'evil.test': ['10.0.0.5'],
    'internal.test': ['10.1.2.3'],
    'bad-answer.test': ['example.org'],
  });

  it('accepts a public host and returns every address', async () => {
    await expect(checkTarget('https://public.test/hook', undefined, dns)).resolves.toEqual({
      ok: true,
      addresses: [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
      ],
    });
  });

  it('refuses the whole target when any address is refused', async () => {
    const result = await checkTarget(new URL('https://mixed.test/'), {}, dns);
    expect(result).toMatchObject({ ok: false, code: 'target_refused' });
    expect(!result.ok && result.reason).toBe(
      'target host "mixed.test" resolves to 10.0.0.5 (private), which is refused; set allowPrivateTargets or add it to allowList',
    );
  });

  it.each(['ftp://public.test/', 'javascript:alert(1)', '/relative/path', 'file:///etc/passwd', ''])('%j is an invalid target', async (url) => {
    await expect(checkTarget(url, {}, dns)).resolves.toMatchObject({ ok: false, code: 'invalid_target' });
  });

  it('reports an unresolvable host', async () => {
    const result = await checkTarget('https://nowhere.test/', {}, dns);
    expect(result).toMatchObject({ ok: false, code: 'target_unresolvable' });
    expect(!result.ok && result.reason).toContain('ENOTFOUND');
  });

  it('treats a non-IP resolver answer as unresolvable, even when private targets are allowed', async () => {
    const result = await checkTarget('https://bad-answer.test/', { allowPrivateTargets: true }, dns);
    expect(result).toMatchObject({ ok: false, code: 'target_unresolvable' });
  });

  it('checks literal IPs without resolving', async () => {
    const quiet = fakeResolver({});
    await expect(checkTarget('http://127.0.0.1:8080/', {}, quiet)).resolves.toMatchObject({ ok: false, code: 'target_refused' });
    await expect(checkTarget('http://[::1]/', {}, quiet)).resolves.toMatchObject({ ok: false, code: 'target_refused' });
    await expect(checkTarget('http://[::ffff:10.0.0.1]/', {}, quiet)).resolves.toMatchObject({ ok: false, code: 'target_refused' });
    await expect(checkTarget('http://2130706433/', {}, quiet)).resolves.toMatchObject({ ok: false, code: 'target_refused' });
    await expect(checkTarget('https://[2606:4700:4700::1111]/', {}, quiet)).resolves.toEqual({
      ok: true,
      addresses: [{ address: '2606:4700:4700::1111', family: 6 }],
    });
    expect(quiet.calls).toEqual([]);
  });

  it('allows private targets when allowPrivateTargets is set', async () => {
    await expect(checkTarget('http://evil.test/', { allowPrivateTargets: true }, dns)).resolves.toEqual({
      ok: true,
      addresses: [{ address: '10.0.0.5', family: 4 }],
    });
  });

  it('allows an address inside an allowList CIDR, and only that range', async () => {
    const policy = { allowList: ['10.1.0.0/16'] };
    await expect(checkTarget('http://internal.test/', policy, dns)).resolves.toMatchObject({ ok: true });
    await expect(checkTarget('http://evil.test/', policy, dns)).resolves.toMatchObject({ ok: false, code: 'target_refused' });
    await expect(checkTarget('http://[::ffff:10.1.9.9]/', policy, dns)).resolves.toMatchObject({ ok: true });
  });

  it('allows an allowList host name exactly (case and root dot ignored)', async () => {
    await expect(checkTarget('http://Evil.Test./', { allowList: ['evil.test'] }, dns)).resolves.toMatchObject({ ok: true });
    await expect(checkTarget('http://sub.evil.test/', { allowList: ['evil.test'] }, dns)).resolves.toMatchObject({
      ok: false,
      code: 'target_unresolvable',
    });
  });

  it('refuses localhost and *.localhost without calling the resolver', async () => {
    const spy = fakeResolver({ localhost: ['93.184.216.34'] });
    await expect(checkTarget('http://localhost:3000/', {}, spy)).resolves.toMatchObject({ ok: false, code: 'target_refused' });
    await expect(checkTarget('http://api.localhost/', {}, spy)).resolves.toMatchObject({ ok: false, code: 'target_refused' });
    expect(spy.calls).toEqual([]);
  });

  it('rejects a malformed allowList entry loudly', async () => {
    await expect(checkTarget('http://public.test/', { allowList: ['10.0.0.0/99'] }, dns)).rejects.toThrow(TypeError);
  });
});

describe('guardedConnector (real server on 127.0.0.1)', () => {
  interface Probe {
    server: Server;
    port: number;
    connections: number;
    hosts: string[];
  }

  async function startServer(): Promise<Probe> {
    const server = createServer((req, res) => {
      probe.hosts.push(req.headers.host ?? '');
      res.end('ok');
    });
    const probe: Probe = { server, port: 0, connections: 0, hosts: [] };
    server.on('connection', () => probe.connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    probe.port = (server.address() as AddressInfo).port;
    return probe;
  }

  const closers: Array<() => Promise<unknown>> = [];
  let probe: Probe;
  beforeAll(async () => {
    probe = await startServer();
  });
  afterAll(async () => {
    await Promise.all(closers.map((close) => close()));
    probe.server.closeAllConnections();
    await new Promise((resolve) => probe.server.close(resolve));
  });

  function pool(origin: string, connect: ReturnType<typeof guardedConnector>): Pool {
    const p = new Pool(origin, { connect });
    closers.push(() => p.destroy());
    return p;
  }

  it('pins the connection to the resolved address and keeps the Host header', async () => {
    const dns = fakeResolver({ 'hooks.example.test': ['127.0.0.1'] });
    const p = pool(`http://hooks.example.test:${probe.port}`, guardedConnector({ allowPrivateTargets: true }, dns));
    const res = await p.request({ path: '/', method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('ok');
    expect(probe.hosts.at(-1)).toBe(`hooks.example.test:${probe.port}`);
  });

  it('fails a refused target before any socket is opened', async () => {
    const quiet = await startServer();
    closers.push(async () => new Promise((resolve) => quiet.server.close(resolve)));
    const dns = fakeResolver({ 'hooks.example.test': ['127.0.0.1'] });
    const p = pool(`http://hooks.example.test:${quiet.port}`, guardedConnector(undefined, dns));
    await expect(p.request({ path: '/', method: 'GET' })).rejects.toMatchObject({
      code: 'ERR_RESTHOOKS_TARGET_REFUSED',
      message: expect.stringContaining('127.0.0.1 (loopback)'),
    });
    const literal = pool(`http://127.0.0.1:${quiet.port}`, guardedConnector({}, dns));
    await expect(literal.request({ path: '/', method: 'GET' })).rejects.toMatchObject({ code: 'ERR_RESTHOOKS_TARGET_REFUSED' });
    expect(dns.calls).toEqual(['hooks.example.test']);
    expect(quiet.connections).toBe(0);
  });

  it('resolves exactly once per connection', async () => {
    const dns = fakeResolver({ 'hooks.example.test': ['127.0.0.1'] });
    const before = probe.connections;
    const p = pool(`http://hooks.example.test:${probe.port}`, guardedConnector({ allowPrivateTargets: true }, dns));
    for (const reset of [false, false, true, false]) {
      // reset: true closes the connection after the response, so the fourth request needs a new one.
      const res = await p.request({ path: '/', method: 'GET', reset });
      await res.body.text();
    }
    expect(probe.connections - before).toBe(2);
    expect(dns.calls).toEqual(['hooks.example.test', 'hooks.example.test']);
  });

  it('works through an Agent with an allowList entry, and passes DNS failures through', async () => {
    const dns = fakeResolver({ 'hooks.example.test': ['127.0.0.1'] });
    const agent = new Agent({ connect: guardedConnector({ allowList: ['127.0.0.1'] }, dns, { timeout: 1000 }) });
    closers.push(() => agent.destroy());
    const res = await agent.request({ origin: `http://hooks.example.test:${probe.port}`, path: '/', method: 'GET' });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    const literal = await agent.request({ origin: `http://127.0.0.1:${probe.port}`, path: '/', method: 'GET' });
    expect(literal.statusCode).toBe(200);
    await literal.body.text();
    await expect(agent.request({ origin: 'http://nowhere.test', path: '/', method: 'GET' })).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(dns.calls).toEqual(['hooks.example.test', 'nowhere.test']);
  });
});
