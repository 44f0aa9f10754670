/**
 * The send gate of the BullMQ engine, in Redis, so that every worker process shares it: a
 * subscription's rate window (a sorted set of slots scored by their end), its pause and probe (a
 * hash), and per-origin and per-subscription caps on attempts in flight (sorted sets of slots scored
 * by their lease's expiry, so a killed worker's slots free themselves). One Lua script admits, one
 * finishes: each is atomic, and they apply the rules of delivery/send-limits.ts, which the gate
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

// KEYS: pause, rate, origin, subscription. ARGV: now ('' = Redis's clock), pass id, lease ms, capacity
// (0 = no rate), window ms, per-origin cap, per-subscription cap.
const ADMIT = `
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local id, lease, capacity, window = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local probe = 0
local pause = redis.call('HMGET', KEYS[1], 'until', 'probe', 'probeUntil')
local probeUntil = tonumber(pause[3]) or 0
if pause[1] and now >= math.max(tonumber(pause[1]), probeUntil) + ${PAUSE_KEEP_MS} then
  redis.call('DEL', KEYS[1])
  pause[1] = false
end
if pause[1] then
  local untilAt = tonumber(pause[1])
  if now < untilAt then return {0, untilAt - now, 'paused'} end
  if pause[2] and probeUntil > now then return {0, math.min(${PROBE_WAIT_MS}, probeUntil - now), 'probing'} end
  probe = 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then return {0, ${CAP_WAIT_MS}, 'origin'} end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[7]) then return {0, ${CAP_WAIT_MS}, 'subscription'} end
if capacity > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= capacity then
    local wait = nil
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if tonumber(first[2]) <= now then wait = tonumber(first[2]) + window - now end
    if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') > 0 then
      local poll = math.max(${MIN_SLOT_WAIT_MS}, math.floor(window / capacity))
      if not wait or poll < wait then wait = poll end
    end
    return {0, math.max(1, wait), 'rate'}
  end
  redis.call('ZADD', KEYS[2], now + lease, id)
  redis.call('PEXPIRE', KEYS[2], lease + window)
end
redis.call('ZADD', KEYS[3], now + lease, id)
redis.call('PEXPIRE', KEYS[3], lease)
redis.call('ZADD', KEYS[4], now + lease, id)
redis.call('PEXPIRE', KEYS[4], lease)
if probe == 1 then
  redis.call('HSET', KEYS[1], 'probe', id, 'probeUntil', now + lease)
  redis.call('PEXPIRE', KEYS[1], lease + ${PAUSE_KEEP_MS})
end
return {1, probe, ''}
`;

// KEYS: pause, rate, origin, subscription. ARGV: now ('' = Redis's clock), pass id, probe (1/0),
// verdict (pause, troubled, fine, unsent), pause ms.
const FINISH = `
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local id, kind = ARGV[2], ARGV[4]
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('ZADD', KEYS[2], 'XX', now, id)
local pause = redis.call('HMGET', KEYS[1], 'until', 'length', 'probe')
local isProbe = ARGV[3] == '1' and pause[3] == id
if kind == 'pause' then
  local ms = tonumber(ARGV[5])
  local untilAt = now + ms
  if pause[1] and tonumber(pause[1]) > untilAt then untilAt = tonumber(pause[1]) end
  redis.call('HSET', KEYS[1], 'until', untilAt, 'length', ms)
  if isProbe then redis.call('HDEL', KEYS[1], 'probe', 'probeUntil') end
  redis.call('PEXPIRE', KEYS[1], untilAt - now + ${PAUSE_KEEP_MS})
elseif isProbe then
  if kind == 'fine' then
    redis.call('DEL', KEYS[1])
  elseif kind == 'troubled' then
    local length = tonumber(pause[2])
    redis.call('HSET', KEYS[1], 'until', now + length)
    redis.call('HDEL', KEYS[1], 'probe', 'probeUntil')
    redis.call('PEXPIRE', KEYS[1], length + ${PAUSE_KEEP_MS})
  else
    redis.call('HDEL', KEYS[1], 'probe', 'probeUntil')
    redis.call('PEXPIRE', KEYS[1], math.max(tonumber(pause[1]) - now, 0) + ${PAUSE_KEEP_MS})
  end
end
return 1
`;

const ADMIT_COMMAND = 'resthooksGateAdmit';
const FINISH_COMMAND = 'resthooksGateFinish';

export class RedisSendGate implements SendGate {
  readonly #client: () => Promise<RedisClient>;
  readonly #options: RedisSendGateOptions;
  readonly #defined = new WeakSet<RedisClient>();

  constructor(client: () => Promise<RedisClient>, options: RedisSendGateOptions) {
    this.#client = client;
    this.#options = options;
  }

  admit(request: GateRequest): Promise<Admission> {
    return this.admitAt(request, undefined);
  }

  finish(pass: GatePass, verdict: ReceiverVerdict): Promise<void> {
    return this.finishAt(pass, verdict, undefined);
  }

  /** `now` for tests; production passes none and Redis's clock decides. */
  async admitAt(request: GateRequest, now: number | undefined): Promise<Admission> {
    const { leaseMs, perOrigin, perSubscription } = this.#options;
    const id = randomUUID();
    const { capacity, windowMs } = request.perSecond === null ? { capacity: 0, windowMs: 0 } : rateWindow(request.perSecond);
    const client = await this.#ready();
    const [admitted, value, reason] = (await client.runCommand(ADMIT_COMMAND, [
      ...this.#keys(request),
      now === undefined ? '' : String(now),
      id,
      String(leaseMs),
      String(capacity),
      String(windowMs),
      String(perOrigin),
      String(perSubscription),
    ])) as [number, number, string];
    if (admitted === 1) return { admitted: true, pass: { id, request, probe: value === 1 } };
    return { admitted: false, waitMs: Number(value), reason: reason as Extract<Admission, { admitted: false }>['reason'] };
  }

  async finishAt(pass: GatePass, verdict: ReceiverVerdict, now: number | undefined): Promise<void> {
    const client = await this.#ready();
    await client.runCommand(FINISH_COMMAND, [
      ...this.#keys(pass.request),
      now === undefined ? '' : String(now),
      pass.id,
      pass.probe ? '1' : '0',
      verdict.kind,
      verdict.kind === 'pause' ? String(verdict.ms) : '0',
    ]);
  }

  #keys(request: GateRequest): string[] {
    const base = `${this.#options.keyPrefix}:gate`;
    return [`${base}:pause:${request.subscriptionId}`, `${base}:rate:${request.subscriptionId}`, `${base}:origin:${request.origin}`, `${base}:sub:${request.subscriptionId}`];
  }

  async #ready(): Promise<RedisClient> {
    const client = await this.#client();
    if (!this.#defined.has(client)) {
      client.defineCommand(ADMIT_COMMAND, { numberOfKeys: 4, lua: ADMIT });
      client.defineCommand(FINISH_COMMAND, { numberOfKeys: 4, lua: FINISH });
      this.#defined.add(client);
    }
    return client;
  }
}
