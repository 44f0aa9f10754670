/**
 * SSRF guard for webhook targets: decides whether a user-supplied URL may be called, and supplies an undici
 * connector that resolves a host once, checks every address, and connects to the checked address (DNS pinning).
 * Self-contained on purpose (only `node:*`, ipaddr.js and undici's connector) so the rules can be reviewed in one place.
 * @module delivery/ssrf
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { buildConnector, type Connector } from './undici-core.js';

export interface TargetPolicy {
  /** Allow loopback/private/etc. targets (development, self-hosting). Default false. */
  allowPrivateTargets?: boolean;
  /** Extra allowed destinations even when private targets are refused: CIDRs ("10.1.0.0/16", "::1/128"), single IPs, or exact host names ("hooks.internal"). */
  allowList?: readonly string[];
}

/** DNS lookup port; tests inject a fake. Default: node:dns/promises lookup(host, { all: true, verbatim: true }). */
export type Resolver = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: 4 | 6 }>>;

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export type TargetCheckCode = 'invalid_target' | 'target_refused' | 'target_unresolvable';

export type TargetCheck =
  | { ok: true; addresses: ResolvedAddress[] }
  | { ok: false; reason: string; code: TargetCheckCode };

export interface GuardedConnectOptions {
  /** Connect timeout in ms (default 10 000). undici ignores `connectTimeout` once `connect` is a function. */
  timeout?: number;
}

/** What a guarded connector fails with when the policy refuses a target; no socket has been opened. */
class TargetRefusedError extends Error {
  readonly code = 'ERR_RESTHOOKS_TARGET_REFUSED';
  readonly kind: Exclude<TargetCheckCode, 'target_unresolvable'>;
  constructor(message: string, kind: Exclude<TargetCheckCode, 'target_unresolvable'>) {
    super(message);
    this.name = 'TargetRefusedError';
    this.kind = kind;
  }
}

const defaultResolver: Resolver = async (hostname) => {
  const records = await lookup(hostname, { all: true, verbatim: true });
  return records.map((r) => ({ address: r.address, family: r.family === 6 ? 6 : 4 }));
};

type IP = ipaddr.IPv4 | ipaddr.IPv6;

// IANA has only delegated 2000::/3 for global unicast (RFC 4291 §2.4); anything else that ipaddr.js calls
// "unicast" (e.g. deprecated IPv4-compatible ::a.b.c.d) is not routable on the internet, so refuse it.
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const LOOPBACK_ADDRESSES = [ipaddr.parse('127.0.0.1'), ipaddr.parse('::1')];
const HINT = 'set allowPrivateTargets or add it to allowList';

function v4At(ip: ipaddr.IPv6, offset: number, xor = 0): ipaddr.IPv4 {
  return new ipaddr.IPv4(ip.toByteArray().slice(offset, offset + 4).map((b) => b ^ xor));
}

function rangeOf(ip: IP): string | null {
  if (ip instanceof ipaddr.IPv4) {
    // Deny by default: anything outside plain unicast (RFC 6890 special-purpose registry, as ipaddr.js
    // encodes it) is refused, so a range added to ipaddr.js later is refused until someone reviews it.
    const range = ip.range();
    return range === 'unicast' ? null : range;
  }
  const range = ip.range();
  switch (range) {
    // Forms that carry an IPv4 address: judge the IPv4 address, or ::ffff:10.0.0.1 walks past a v4 check.
    case 'ipv4Mapped':
    case 'rfc6145': // RFC 6145 IPv4-translated ::ffff:0:a.b.c.d
      return rangeOf(v4At(ip, 12));
    case 'rfc6052':
      // RFC 6052 well-known NAT64 prefix /96 embeds v4 in the last 32 bits; the RFC 8215 local-use
      // 64:ff9b:1::/48 may use any prefix length, so the embedded address cannot be located: refuse it.
      return ip.match(NAT64_WELL_KNOWN) ? rangeOf(v4At(ip, 12)) : 'nat64LocalUse';
    case '6to4': // RFC 3056: 2002:AABB:CCDD::/48 routes to the relay-reachable v4 AA.BB.CC.DD
      return rangeOf(v4At(ip, 2));
    case 'teredo': // RFC 4380: server v4 in bits 32..63, client v4 obfuscated (xor 0xff) in the last 32 bits
      return rangeOf(v4At(ip, 4)) ?? rangeOf(v4At(ip, 12, 0xff));
    case 'unicast':
      return ip.match(GLOBAL_UNICAST_V6) ? null : 'reserved';
    default:
      return range;
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Lower-case, bracket-free, without the root dot: "Hooks.Example." and "hooks.example" are one host. */
function normalizeHost(host: string): string {
  const bare = stripBrackets(host.trim()).toLowerCase();
  return bare.endsWith('.') ? bare.slice(0, -1) : bare;
}

/** Pure: the name of the refused range an address falls in, or null when it is a public unicast address. */
export function refusedRange(address: string): string | null {
  const bare = stripBrackets(address.trim());
  // node:net's strict grammar, not ipaddr.js's lenient one: "127.1" or "0x7f.1" are not addresses here.
  if (isIP(bare) === 0) return 'invalid';
  return rangeOf(ipaddr.parse(bare));
}

interface CompiledPolicy {
  allowAll: boolean;
  hosts: ReadonlySet<string>;
  networks: ReadonlyArray<[IP, number]>;
}

function compilePolicy(policy: TargetPolicy = {}): CompiledPolicy {
  const hosts = new Set<string>();
  const networks: Array<[IP, number]> = [];
  for (const raw of policy.allowList ?? []) {
    const entry = normalizeHost(raw);
    if (entry.includes('/')) {
      // A typo here would silently refuse (or worse, widen) targets, so it fails loudly at configuration time.
      if (!ipaddr.isValidCIDR(entry)) throw new TypeError(`allowList entry "${raw}" is not a valid CIDR`);
      networks.push(ipaddr.parseCIDR(entry));
    } else if (isIP(entry) !== 0) {
      const ip = ipaddr.parse(entry);
      networks.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
    } else if (entry !== '') {
      hosts.add(entry);
    }
  }
  return { allowAll: policy.allowPrivateTargets === true, hosts, networks };
}

function inNetworks(ip: IP, networks: CompiledPolicy['networks']): boolean {
  const candidates: IP[] = [ip];
  if (ip instanceof ipaddr.IPv6 && ip.isIPv4MappedAddress()) candidates.push(ip.toIPv4Address());
  return networks.some(([net, bits]) =>
    candidates.some((c) =>
      c instanceof ipaddr.IPv4 ? net instanceof ipaddr.IPv4 && c.match(net, bits) : net instanceof ipaddr.IPv6 && c.match(net, bits),
    ),
  );
}

type Failure = Extract<TargetCheck, { ok: false }> & { cause?: unknown };

async function inspectHost(host: string, policy: CompiledPolicy, resolver: Resolver): Promise<TargetCheck | Failure> {
  const name = normalizeHost(host);
  if (name === '') return { ok: false, code: 'invalid_target', reason: 'target URL has no host' };
  const hostAllowed = policy.allowAll || policy.hosts.has(name);
  const literal = isIP(name);
  let addresses: ResolvedAddress[];
  if (literal !== 0) {
    addresses = [{ address: name, family: literal === 6 ? 6 : 4 }];
  } else {
    // RFC 6761 §6.3: "localhost" names are loopback whatever DNS says, so refuse them without asking DNS.
    const isLocalhost = name === 'localhost' || name.endsWith('.localhost');
    if (isLocalhost && !hostAllowed && !LOOPBACK_ADDRESSES.some((ip) => inNetworks(ip, policy.networks))) {
      return { ok: false, code: 'target_refused', reason: `target host "${name}" is a loopback name, which is refused; ${HINT}` };
    }
    let records: Awaited<ReturnType<Resolver>>;
    try {
      records = await resolver(name);
    } catch (cause) {
      const code = (cause as { code?: unknown } | null)?.code;
      const why = typeof code === 'string' ? code : String(cause);
      return { ok: false, code: 'target_unresolvable', reason: `target host "${name}" could not be resolved (${why})`, cause };
    }
    addresses = [];
    for (const { address } of records) {
      const family = isIP(address);
      // A non-IP answer would make net.connect do its own lookup, which is exactly the second resolution we forbid.
      if (family === 0) {
        return { ok: false, code: 'target_unresolvable', reason: `resolver returned "${address}" for "${name}", which is not an IP address` };
      }
      addresses.push({ address, family: family === 6 ? 6 : 4 });
    }
    if (addresses.length === 0) {
      return { ok: false, code: 'target_unresolvable', reason: `target host "${name}" resolved to no addresses` };
    }
  }
  if (!hostAllowed) {
    // Every record, not just the first: the attacker controls the zone and so which record a client ends up using.
    for (const { address } of addresses) {
      const range = refusedRange(address);
      if (range !== null && !inNetworks(ipaddr.parse(address), policy.networks)) {
        const where = literal !== 0 ? 'is' : 'resolves to';
        return { ok: false, code: 'target_refused', reason: `target host "${name}" ${where} ${address} (${range}), which is refused; ${HINT}` };
      }
    }
  }
  return { ok: true, addresses };
}

/** Resolve once (or take the literal IP), check every address. Never opens a socket. */
export async function checkTarget(url: string | URL, policy?: TargetPolicy, resolver: Resolver = defaultResolver): Promise<TargetCheck> {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return { ok: false, code: 'invalid_target', reason: `target "${String(url)}" is not an absolute URL` };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, code: 'invalid_target', reason: `target scheme "${parsed.protocol}" is not allowed; use http: or https:` };
  }
  const result = await inspectHost(parsed.hostname, compilePolicy(policy), resolver);
  return result.ok ? result : { ok: false, code: result.code, reason: result.reason };
}

/**
 * An undici `connect` option (buildConnector-compatible function) that resolves the host itself, checks every
 * address, and connects to the checked address (DNS pinning: no second lookup), keeping the hostname as TLS
 * servername (SNI). A refused target fails the connect with a {@link TargetRefusedError}
 * (`code: 'ERR_RESTHOOKS_TARGET_REFUSED'`) before any socket is opened; a failed lookup fails with the resolver's error.
 * @example
 * const pool = new Pool('https://hooks.example.com', { connect: guardedConnector({ allowList: ['10.1.0.0/16'] }) });
 */
export function guardedConnector(
  policy?: TargetPolicy,
  resolver: Resolver = defaultResolver,
  connectOptions: GuardedConnectOptions = {},
): Connector {
  const compiled = compilePolicy(policy);
  const connect = buildConnector(connectOptions.timeout === undefined ? {} : { timeout: connectOptions.timeout });
  return (options, callback) => {
    inspectHost(options.hostname, compiled, resolver).then(
      (result) => {
        if (!result.ok) {
          const failure = result as Failure;
          const err =
            failure.code === 'target_unresolvable'
              ? failure.cause instanceof Error
                ? failure.cause
                : new Error(failure.reason)
              : new TargetRefusedError(failure.reason, failure.code);
          callback(err, null);
          return;
        }
        // inspectHost never succeeds with an empty list; the guard only satisfies noUncheckedIndexedAccess.
        const first = result.addresses[0];
        if (first === undefined) return callback(new Error('no checked address to connect to'), null);
        const name = normalizeHost(options.hostname);
        // Certificates are checked against servername, so the pinned IP never weakens TLS verification;
        // RFC 6066 forbids an IP literal as SNI, hence only real host names are passed on.
        const servername = isIP(name) === 0 ? options.servername || name : options.servername;
        try {
          // Only the first checked address is tried; net.connect gets an IP, so it does no lookup of its own.
          connect({ ...options, hostname: first.address, servername }, callback);
        } catch (err) {
          callback(err instanceof Error ? err : new Error(String(err)), null);
        }
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), null),
    );
  };
}
