/**
 * The send gate of the BullMQ engine, in Redis, so that every worker process shares it: a
 * subscription's rate window (a sorted set of slots scored by their end), its pause and probe (a
 * hash), and per-origin and per-subscription caps on attempts in flight (sorted sets of slots scored
 * by their lease's expiry, so a killed worker's slots free themselves). One Lua script, atomic, finishes
 * earlier attempts and admits the next in one round trip, applying the rules of delivery/send-limits.ts, which the gate
 * conformance suite holds both gates to. Times are Redis's own clock (`TIME`), the one clock every
 * worker, on any machine, shares.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from 'bullmq';
import type { Admission, GatePass, GateRequest, ReceiverVerdict, SendGate } from '../send-gate.js';
import { MIN_SLOT_WAIT_MS, PAUSE_FORGET_MS, PROBE_WAIT_MS, rateWindow } from '../send-limits.js';

export interface RedisSendGateOptions {
  /** Key prefix: the queue's (`<prefix>:<queue name>`), so one Redis serves several apps. */
  readonly keyPrefix: string;
  /** How long a slot is held at most: an attempt's timeout and a margin. */
  readonly leaseMs: number;
  /** Attempts in flight at once to one origin, across every worker. */
  readonly perOrigin: number;
  /** Attempts in flight at once to one subscription, across every worker. */
  readonly perSubscription: number;
}

/** How long an attempt held back by a full origin or subscription cap waits before it is tried again. */
const CAP_WAIT_MS = 100;
// A pause's record expires when send-limits.ts forgets it: PAUSE_FORGET_MS after its end, or after its probe's lease.
const PAUSE_KEEP_MS = PAUSE_FORGET_MS;

// One script, one round trip: first the finishes of earlier attempts (their slots freed, their
// verdicts applied), then at most one admission, so an admission sees the slots those finishes free.
// ARGV: now ('' = Redis's clock), finishes F, admissions A (0 or 1); then per finish: pass id, probe
// (1/0), verdict (pause, troubled, fine, unsent), pause ms; then for the admission: pass id, lease ms,
// capacity (0 = no rate), window ms, per-origin cap, per-subscription cap. KEYS: pause, rate, origin,
// subscription of each finish, then of the admission.
const GATE = `
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end

local function finish(k, id, probeArg, kind, pauseMs)
  redis.call('ZREM', k[3], id)
  redis.call('ZREM', k[4], id)
  redis.call('ZADD', k[2], 'XX', now, id)
  local pause = redis.call('HMGET', k[1], 'until', 'length', 'probe')
  local isProbe = probeArg == '1' and pause[3] == id
  if kind == 'pause' then
    local ms = tonumber(pauseMs)
    local untilAt = now + ms
    if pause[1] and tonumber(pause[1]) > untilAt then untilAt = tonumber(pause[1]) end
    redis.call('HSET', k[1], 'until', untilAt, 'length', ms)
    if isProbe then redis.call('HDEL', k[1], 'probe', 'probeUntil') end
    redis.call('PEXPIRE', k[1], untilAt - now + ${PAUSE_KEEP_MS})
  elseif isProbe then
    if kind == 'fine' then
      redis.call('DEL', k[1])
    elseif kind == 'troubled' then
      local length = tonumber(pause[2])
      redis.call('HSET', k[1], 'until', now + length)
      redis.call('HDEL', k[1], 'probe', 'probeUntil')
      redis.call('PEXPIRE', k[1], length + ${PAUSE_KEEP_MS})
    else
      redis.call('HDEL', k[1], 'probe', 'probeUntil')
      redis.call('PEXPIRE', k[1], math.max(tonumber(pause[1]) - now, 0) + ${PAUSE_KEEP_MS})
    end
  end
end

local function admit(k, id, lease, capacity, window, perOrigin, perSubscription)
  local probe = 0
  local pause = redis.call('HMGET', k[1], 'until', 'probe', 'probeUntil')
  local probeUntil = tonumber(pause[3]) or 0
  if pause[1] and now >= math.max(tonumber(pause[1]), probeUntil) + ${PAUSE_KEEP_MS} then
    redis.call('DEL', k[1])
    pause[1] = false
  end
  if pause[1] then
    local untilAt = tonumber(pause[1])
    if now < untilAt then return {0, untilAt - now, 'paused'} end
    if pause[2] and probeUntil > now then return {0, math.min(${PROBE_WAIT_MS}, probeUntil - now), 'probing'} end
    probe = 1
  end
  redis.call('ZREMRANGEBYSCORE', k[3], '-inf', now)
  if redis.call('ZCARD', k[3]) >= perOrigin then return {0, ${CAP_WAIT_MS}, 'origin'} end
  redis.call('ZREMRANGEBYSCORE', k[4], '-inf', now)
  if redis.call('ZCARD', k[4]) >= perSubscription then return {0, ${CAP_WAIT_MS}, 'subscription'} end
  if capacity > 0 then
    redis.call('ZREMRANGEBYSCORE', k[2], '-inf', now - window)
    if redis.call('ZCARD', k[2]) >= capacity then
      local wait = nil
      local first = redis.call('ZRANGE', k[2], 0, 0, 'WITHSCORES')
      if tonumber(first[2]) <= now then wait = tonumber(first[2]) + window - now end
      if redis.call('ZCOUNT', k[2], '(' .. now, '+inf') > 0 then
        local poll = math.max(${MIN_SLOT_WAIT_MS}, math.floor(window / capacity))
        if not wait or poll < wait then wait = poll end
      end
      return {0, math.max(1, wait), 'rate'}
    end
    redis.call('ZADD', k[2], now + lease, id)
    redis.call('PEXPIRE', k[2], lease + window)
  end
  redis.call('ZADD', k[3], now + lease, id)
  redis.call('PEXPIRE', k[3], lease)
  redis.call('ZADD', k[4], now + lease, id)
  redis.call('PEXPIRE', k[4], lease)
  if probe == 1 then
    redis.call('HSET', k[1], 'probe', id, 'probeUntil', now + lease)
    redis.call('PEXPIRE', k[1], lease + ${PAUSE_KEEP_MS})
  end
  return {1, probe, ''}
end

local finishes, admissions = tonumber(ARGV[2]), tonumber(ARGV[3])
local a = 4
for i = 0, finishes - 1 do
  finish({KEYS[i * 4 + 1], KEYS[i * 4 + 2], KEYS[i * 4 + 3], KEYS[i * 4 + 4]}, ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
  a = a + 4
end
if admissions == 1 then
  local b = finishes * 4
  return admit({KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4]}, ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]))
end
return {1, 0, ''}
`;

const GATE_COMMAND = 'resthooksGate';

/**
 * How long a finish waits for the next admission to ride along with (then it goes alone, with any
 * others that came meanwhile). Its slots stay taken that much longer at most.
 */
const FINISH_WAIT_MS = 2;

interface PendingFinish {
  readonly pass: GatePass;
  readonly verdict: ReceiverVerdict;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** One finish's or admission's part of a script call. */
interface ScriptArgs {
  readonly keys: string[];
  readonly argv: string[];
}

export class RedisSendGate implements SendGate {
  readonly #client: () => Promise<RedisClient>;
  readonly #options: RedisSendGateOptions;
  readonly #defined = new WeakSet<RedisClient>();
  /** Finishes not yet sent: the next admission carries them, or a timer sends them. */
  #pending: PendingFinish[] = [];
  #pendingTimer: NodeJS.Timeout | undefined;

  constructor(client: () => Promise<RedisClient>, options: RedisSendGateOptions) {
    this.#client = client;
    this.#options = options;
  }

  admit(request: GateRequest): Promise<Admission> {
    return this.admitAt(request, undefined);
  }

  /**
   * Resolves once Redis has applied it. Each attempt would otherwise cost two round trips (admit,
   * finish): a finish rides on the next admission of this gate, or goes within FINISH_WAIT_MS with
   * the others that came meanwhile.
   */
  finish(pass: GatePass, verdict: ReceiverVerdict): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ pass, verdict, resolve, reject });
      this.#pendingTimer ??= setTimeout(() => void this.#sendPending(), FINISH_WAIT_MS);
    });
  }

  /** `now` for tests; production passes none and Redis's clock decides. */
  async admitAt(request: GateRequest, now: number | undefined): Promise<Admission> {
    const { leaseMs, perOrigin, perSubscription } = this.#options;
    const id = randomUUID();
    const { capacity, windowMs } = request.perSecond === null ? { capacity: 0, windowMs: 0 } : rateWindow(request.perSecond);
    // Finishes told with a clock of their own (tests) go at once; only Redis-clocked ones wait here.
    const finishes = now === undefined ? this.#takePending() : [];
    const admission = { keys: this.#keys(request), argv: [id, String(leaseMs), String(capacity), String(windowMs), String(perOrigin), String(perSubscription)] };
    let reply: [number, number, string];
    try {
      reply = await this.#run(now, finishes.map((f) => this.#finishArgs(f)), admission);
    } catch (error) {
      for (const f of finishes) f.reject(error);
      throw error;
    }
    for (const f of finishes) f.resolve();
    const [admitted, value, reason] = reply;
    if (admitted === 1) return { admitted: true, pass: { id, request, probe: value === 1 } };
    return { admitted: false, waitMs: Number(value), reason: reason as Extract<Admission, { admitted: false }>['reason'] };
  }

  async finishAt(pass: GatePass, verdict: ReceiverVerdict, now: number | undefined): Promise<void> {
    await this.#run(now, [this.#finishArgs({ pass, verdict })], undefined);
  }

  #takePending(): PendingFinish[] {
    clearTimeout(this.#pendingTimer);
    this.#pendingTimer = undefined;
    const pending = this.#pending;
    this.#pending = [];
    return pending;
  }

  async #sendPending(): Promise<void> {
    const finishes = this.#takePending();
    if (finishes.length === 0) return;
    try {
      await this.#run(undefined, finishes.map((f) => this.#finishArgs(f)), undefined);
      for (const f of finishes) f.resolve();
    } catch (error) {
      for (const f of finishes) f.reject(error);
    }
  }

  async #run(now: number | undefined, finishes: ScriptArgs[], admission: ScriptArgs | undefined): Promise<[number, number, string]> {
    const client = await this.#ready();
    const keys: string[] = [];
    const argv = [now === undefined ? '' : String(now), String(finishes.length), admission ? '1' : '0'];
    for (const f of finishes) {
      keys.push(...f.keys);
      argv.push(...f.argv);
    }
    if (admission) {
      keys.push(...admission.keys);
      argv.push(...admission.argv);
    }
    return (await client.runCommand(GATE_COMMAND, [keys.length, ...keys, ...argv])) as [number, number, string];
  }

  #keys(request: GateRequest): string[] {
    const base = `${this.#options.keyPrefix}:gate`;
    return [`${base}:pause:${request.subscriptionId}`, `${base}:rate:${request.subscriptionId}`, `${base}:origin:${request.origin}`, `${base}:sub:${request.subscriptionId}`];
  }

  #finishArgs({ pass, verdict }: Pick<PendingFinish, 'pass' | 'verdict'>): ScriptArgs {
    return { keys: this.#keys(pass.request), argv: [pass.id, pass.probe ? '1' : '0', verdict.kind, verdict.kind === 'pause' ? String(verdict.ms) : '0'] };
  }

  async #ready(): Promise<RedisClient> {
    const client = await this.#client();
    if (!this.#defined.has(client)) {
      // No fixed key count (ioredis then takes it as each call's first argument): four keys per
      // finish and per admission. BullMQ's type wants a number; ioredis takes `undefined` for this.
      client.defineCommand(GATE_COMMAND, { lua: GATE, numberOfKeys: undefined as unknown as number });
      this.#defined.add(client);
    }
    return client;
  }
}
