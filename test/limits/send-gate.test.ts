/**
 * The two send gates hold to the same rules: the in-memory one (in-process engines) and the Redis one
 * (BullMQ, shared by every worker), the latter on a real Redis. Times are given, not read, so the
 * rules are checked exactly; the multi-process tests use Redis's own clock.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { RedisSendGate } from '../../src/queue/bullmq/redis-send-gate.js';
import { MemorySendGate } from '../../src/queue/memory-send-gate.js';
import type { Admission, GatePass, GateRequest, ReceiverVerdict } from '../../src/queue/send-gate.js';
import { PAUSE_FORGET_MS, PROBE_WAIT_MS, SLOT_LEASE_MARGIN_MS } from '../../src/queue/send-limits.js';

const TIMEOUT_MS = 10_000;
const LEASE_MS = TIMEOUT_MS + SLOT_LEASE_MARGIN_MS;

interface ClockedGate {
  admit(request: GateRequest, now: number): Promise<Admission>;
  finish(pass: GatePass, verdict: ReceiverVerdict, now: number): Promise<void>;
}

const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of closers) await close();
});

let gates = 0;
const GATES: Record<string, () => ClockedGate> = {
  memory: () => {
    const gate = new MemorySendGate(TIMEOUT_MS);
    return {
      admit: async (request, now) => gate.admitAt(request, now),
      finish: async (pass, verdict, now) => gate.finishAt(pass, verdict, now),
    };
  },
  redis: () => redisGate(1000, 1000),
};

function redisGate(perOrigin: number, perSubscription: number): ClockedGate {
  const name = `gate-test-${process.pid}-${++gates}`;
  const queue = new Queue(name, { connection: { url: inject('redisUrl') } });
  closers.push(() => queue.close());
  const gate = new RedisSendGate(async () => queue.backend.client, {
    keyPrefix: `bull:${name}`,
    leaseMs: LEASE_MS,
    perOrigin,
    perSubscription,
  });
  return {
    admit: (request, now) => gate.admitAt(request, now),
    finish: (pass, verdict, now) => gate.finishAt(pass, verdict, now),
  };
}

const request = (subscriptionId: string, perSecond: number | null = null, origin = 'http://a.test'): GateRequest => ({ subscriptionId, origin, perSecond });

async function admitted(gate: ClockedGate, req: GateRequest, now: number): Promise<GatePass> {
  const admission = await gate.admit(req, now);
  if (!admission.admitted) throw new Error(`not admitted at ${now}: ${admission.reason}, wait ${admission.waitMs}`);
  return admission.pass;
}

async function refused(gate: ClockedGate, req: GateRequest, now: number): Promise<{ waitMs: number; reason: string }> {
  const admission = await gate.admit(req, now);
  if (admission.admitted) throw new Error(`admitted at ${now}`);
  return { waitMs: admission.waitMs, reason: admission.reason };
}

describe.each(Object.keys(GATES))('%s send gate', (kind) => {
  const fresh = GATES[kind]!;

  it('a rate of N: N slots per window; a slot counts until a window after its attempt ended', async () => {
    const gate = fresh();
    const sub = request('s1', 2);
    const a = await admitted(gate, sub, 0);
    const b = await admitted(gate, sub, 0);
    // Both still in flight: a short look again, not a window.
    expect(await refused(gate, sub, 5)).toEqual({
      waitMs: 500,
      reason: 'rate',
    });
    await gate.finish(a, { kind: 'fine' }, 10);
    await gate.finish(b, { kind: 'fine' }, 30);
    expect(await refused(gate, sub, 500)).toEqual({
      waitMs: 510,
      reason: 'rate',
    });
    expect(await refused(gate, sub, 1009)).toEqual({
      waitMs: 1,
      reason: 'rate',
    });
    await admitted(gate, sub, 1010);
    expect(await refused(gate, sub, 1011)).toMatchObject({ reason: 'rate' });
    // Another subscription has its own window; one without a rate is never held back by it.
    await admitted(gate, request('s2', 2), 1011);
    await admitted(gate, request('s3'), 1011);
  });

  it('a slot whose attempt never finished (its worker killed) frees a window after its lease', async () => {
    const gate = fresh();
    const sub = request('s1', 1);
    await admitted(gate, sub, 0);
    expect((await refused(gate, sub, LEASE_MS - 1)).reason).toBe('rate');
    expect((await refused(gate, sub, LEASE_MS + 999)).reason).toBe('rate');
    await admitted(gate, sub, LEASE_MS + 1000);
  });

  it('a pause holds every attempt of that subscription to its end, then lets exactly one probe go', async () => {
    const gate = fresh();
    const sub = request('s1');
    const first = await admitted(gate, sub, 0);
    const inFlight = await admitted(gate, sub, 0);
    await gate.finish(first, { kind: 'pause', ms: 2000 }, 100);
    expect(await refused(gate, sub, 500)).toEqual({
      waitMs: 1600,
      reason: 'paused',
    });
    // An attempt that was already running ends fine: that is not the probe, the pause stays.
    await gate.finish(inFlight, { kind: 'fine' }, 600);
    expect(await refused(gate, sub, 2099)).toEqual({
      waitMs: 1,
      reason: 'paused',
    });
    // Another subscription goes on meanwhile.
    await admitted(gate, request('s2'), 700);
    const probe = await admitted(gate, sub, 2100);
    expect(probe.probe).toBe(true);
    expect(await refused(gate, sub, 2101)).toEqual({
      waitMs: PROBE_WAIT_MS,
      reason: 'probing',
    });
    await gate.finish(probe, { kind: 'fine' }, 2200);
    const after = await admitted(gate, sub, 2201);
    expect(after.probe).toBe(false);
    await admitted(gate, sub, 2201);
  });

  it('a probe that finds the receiver in trouble extends the pause by its length; a new 429 sets a new one', async () => {
    const gate = fresh();
    const sub = request('s1');
    await gate.finish(await admitted(gate, sub, 0), { kind: 'pause', ms: 1000 }, 0);
    const probe = await admitted(gate, sub, 1000);
    await gate.finish(probe, { kind: 'troubled' }, 1050);
    expect(await refused(gate, sub, 1100)).toEqual({
      waitMs: 950,
      reason: 'paused',
    });
    const second = await admitted(gate, sub, 2050);
    expect(second.probe).toBe(true);
    await gate.finish(second, { kind: 'pause', ms: 3000 }, 2060);
    expect(await refused(gate, sub, 2060)).toEqual({
      waitMs: 3000,
      reason: 'paused',
    });
  });

  it('a probe that was not sent (shutdown) lets the next attempt probe; a probe whose worker died lets one after its lease', async () => {
    const gate = fresh();
    const sub = request('s1');
    await gate.finish(await admitted(gate, sub, 0), { kind: 'pause', ms: 1000 }, 0);
    const unsent = await admitted(gate, sub, 1000);
    await gate.finish(unsent, { kind: 'unsent' }, 1001);
    const dying = await admitted(gate, sub, 1002);
    expect(dying.probe).toBe(true);
    expect((await refused(gate, sub, 1002 + LEASE_MS - 1)).reason).toBe('probing');
    const next = await admitted(gate, sub, 1002 + LEASE_MS);
    expect(next.probe).toBe(true);
    // The dead probe's late answer decides nothing: the live probe still holds the others.
    await gate.finish(dying, { kind: 'fine' }, 1003 + LEASE_MS);
    expect((await refused(gate, sub, 1004 + LEASE_MS)).reason).toBe('probing');
  });
  it('a pause is forgotten a while after its end with nothing sent: then attempts go without a probe', async () => {
    const gate = fresh();
    const sub = request('s1');
    await gate.finish(await admitted(gate, sub, 0), { kind: 'pause', ms: 1000 }, 0);
    const late = await admitted(gate, sub, 1000 + PAUSE_FORGET_MS);
    expect(late.probe).toBe(false);
    expect((await admitted(gate, sub, 1000 + PAUSE_FORGET_MS)).probe).toBe(false);
  });
});

describe('redis send gate: caps on attempts in flight, across workers', () => {
  it('per origin and per subscription; a slot frees when its attempt finishes or its lease ends', async () => {
    const gate = redisGate(2, 3);
    const one = await admitted(gate, request('s1', null, 'http://x.test'), 0);
    await admitted(gate, request('s2', null, 'http://x.test'), 0);
    expect(await refused(gate, request('s3', null, 'http://x.test'), 1)).toMatchObject({ reason: 'origin' });
    await admitted(gate, request('s3', null, 'http://y.test'), 1);
    await gate.finish(one, { kind: 'fine' }, 2);
    await admitted(gate, request('s3', null, 'http://x.test'), 3);
    // Both origins' slots lapse with their leases (their workers killed).
    await admitted(gate, request('s4', null, 'http://x.test'), LEASE_MS + 5);
    // Three in flight to one subscription on three origins: the fourth waits.
    for (const origin of ['http://p.test', 'http://q.test', 'http://r.test']) await admitted(gate, request('s9', null, origin), 100_000);
    expect(await refused(gate, request('s9', null, 'http://z.test'), 100_001)).toMatchObject({ reason: 'subscription' });
  });
});

describe('redis send gate: round trips on Redis time', () => {
  /** A gate on Redis's clock with a per-origin cap of 1, how many script calls it made, and the last one's arguments. */
  async function countedGate(name: string): Promise<{ gate: RedisSendGate; calls: () => number; lastArgs: () => unknown[] }> {
    const queue = new Queue(name, { connection: { url: inject('redisUrl') } });
    closers.push(() => queue.close());
    const client = await queue.backend.client;
    let calls = 0;
    let lastArgs: unknown[] = [];
    const counted = new Proxy(client, {
      get(target, property) {
        if (property === 'runCommand') {
          return (...args: Parameters<typeof target.runCommand>) => {
            calls++;
            lastArgs = args[1];
            return target.runCommand(...args);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const gate = new RedisSendGate(async () => counted, { keyPrefix: `bull:${name}`, leaseMs: LEASE_MS, perOrigin: 1, perSubscription: 1000 });
    return { gate, calls: () => calls, lastArgs: () => lastArgs };
  }

  it("a finish rides on the next admission: one call for both, and the admission gets the slot it freed", async () => {
    const { gate, calls } = await countedGate(`gate-test-${process.pid}-${++gates}`);
    const first = await gate.admit(request('s1'));
    if (!first.admitted) throw new Error(`not admitted: ${first.reason}`);
    const before = calls();
    const finished = gate.finish(first.pass, { kind: 'fine' });
    const second = await gate.admit(request('s2'));
    await finished;
    expect(second).toMatchObject({ admitted: true });
    expect(calls() - before).toBe(1);
  });

  it('admissions asked for together go in one call, in order: under a per-origin cap of 1 the first gets the slot', async () => {
    const { gate, calls } = await countedGate(`gate-test-${process.pid}-${++gates}`);
    const before = calls();
    const [first, second, third] = await Promise.all([gate.admit(request('s1')), gate.admit(request('s2')), gate.admit(request('s3', null, 'http://b.test'))]);
    expect(calls() - before).toBe(1);
    expect(first).toMatchObject({ admitted: true });
    expect(second).toMatchObject({ admitted: false, reason: 'origin' });
    expect(third).toMatchObject({ admitted: true });
  });

  it("a call's arguments: four common ones, then one short one per admission or finish, with no key in them (the script names the keys)", async () => {
    const name = `gate-test-${process.pid}-${++gates}`;
    const { gate, lastArgs } = await countedGate(name);
    const one = await gate.admit(request('s1', null, 'http://one.test'));
    if (!one.admitted) throw new Error('not admitted');
    const finished = gate.finish(one.pass, { kind: 'fine' });
    await Promise.all([gate.admit(request('s1', null, 'http://one.test')), gate.admit(request('s2', null, 'http://one.test')), gate.admit(request('s3', 5, 'http://one.test'))]);
    // The keys are those every worker version names: workers of two versions share one gate during an upgrade.
    const client = new Redis(inject('redisUrl'));
    closers.push(async () => void (await client.quit()));
    const keys = (await client.keys(`bull:${name}:gate:*`)).map((key) => key.slice(`bull:${name}:gate:`.length)).toSorted();
    // Under the origin cap of 1 only s1 got a slot (s1's first pass finished in the same call); s3's rate window holds nothing.
    expect(keys).toEqual(['origin:http://one.test', 'sub:s1']);
    await finished;
    const args = lastArgs().map(String);
    expect(args).toHaveLength(4 + 1 + 3);
    const perAttempt = args.slice(4);
    expect(perAttempt.map((words) => words.split(' ').slice(0, 2).join(' '))).toEqual(['s1 http://one.test', 's1 http://one.test', 's2 http://one.test', 's3 http://one.test']);
    // Each attempt's argument is its words alone: no key, no key prefix, no pass-id prefix.
    for (const words of perAttempt) expect(words.length).toBeLessThan(40);
    expect(args.join(' ')).not.toContain(':gate:pause:');
  });

  it('a finish that only frees cap slots waits longer for admissions to ride with (attempts do not wait for it); a pause goes within moments and takes it along', async () => {
    const { gate, calls } = await countedGate(`gate-test-${process.pid}-${++gates}`);
    const one = await gate.admit(request('s1'));
    const two = await gate.admit(request('s2', null, 'http://b.test'));
    if (!one.admitted || !two.admitted) throw new Error('not admitted');
    const before = calls();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      let sent = false;
      const finished = gate.finish(one.pass, { kind: 'fine' }).then(() => (sent = true));
      await vi.advanceTimersByTimeAsync(10);
      expect(calls() - before).toBe(0);
      const paused = gate.finish(two.pass, { kind: 'pause', ms: 60_000 });
      await vi.advanceTimersByTimeAsync(2);
      vi.useRealTimers();
      await Promise.all([finished, paused]);
      expect(sent).toBe(true);
      expect(calls() - before).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('finishes with no admission after them go together within moments; another worker then finds their slots free', async () => {
    const name = `gate-test-${process.pid}-${++gates}`;
    const { gate, calls } = await countedGate(name);
    const { gate: otherWorker } = await countedGate(name);
    const one = await gate.admit(request('s1', null, 'http://one.test'));
    const two = await gate.admit(request('s2', null, 'http://two.test'));
    if (!one.admitted || !two.admitted) throw new Error('not admitted');
    const before = calls();
    await Promise.all([gate.finish(one.pass, { kind: 'fine' }), gate.finish(two.pass, { kind: 'pause', ms: 60_000 })]);
    expect(calls() - before).toBe(1);
    expect(await otherWorker.admit(request('s3', null, 'http://one.test'))).toMatchObject({ admitted: true });
    // The pause told in the same call holds on every worker.
    expect(await otherWorker.admit(request('s2', null, 'http://other.test'))).toMatchObject({ admitted: false, reason: 'paused' });
  });
});
