/**
 * The send gate of the BullMQ engine, in Redis, so that every worker process shares it: a
 * subscription's rate window (a sorted set of slots scored by their end), its pause and probe (a
 * hash), and per-origin and per-subscription caps on attempts in flight (sorted sets of slots scored
 * by their lease's expiry, so a killed worker's slots free themselves). One Lua script, atomic, finishes
 * earlier attempts and admits the next ones in one round trip, applying the rules of delivery/send-limits.ts, which the gate
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
// verdicts applied), then the admissions in order, so each admission sees the slots those finishes
// free and those the admissions before it take. The script names its keys itself, from the key base
// and each attempt's subscription id and origin (as BullMQ's own scripts name a job's keys from the
// queue's prefix): a call then carries each attempt as one short argument, not as its keys. ARGV: now
// ('' = Redis's clock), the key base (`<prefix>:gate:`), the pass ids' prefix, then one word list:
// lease ms, per-origin cap, per-subscription cap, finishes F, admissions A; then one word list per
// finish: subscription id, origin, rate (1: the subscription has a rate window), pass id (after the
// prefix), probe (1/0), verdict (pause, troubled, fine, unsent), pause ms; then one per admission:
// subscription id, origin, pass id, capacity (0 = no rate), window ms. Returns one {admitted, wait ms
// or probe, reason} per admission.
const GATE = `
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local base, prefix = ARGV[2], ARGV[3]

local function words(s)
  local w = {}
  for part in string.gmatch(s, '%S+') do w[#w + 1] = part end
  return w
end
local header = words(ARGV[4])
local lease, perOrigin, perSubscription = tonumber(header[1]), tonumber(header[2]), tonumber(header[3])
-- A subscription's pause, rate window (false without a rate), its origin's slots and its own slots.
local function keysOf(subscription, origin, rated)
  return {base .. 'pause:' .. subscription, rated and (base .. 'rate:' .. subscription) or false, base .. 'origin:' .. origin, base .. 'sub:' .. subscription}
end

local function finish(k, id, probeArg, kind, pauseMs)
  redis.call('ZREM', k[3], id)
  redis.call('ZREM', k[4], id)
  if k[2] then redis.call('ZADD', k[2], 'XX', now, id) end
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

local function admit(k, id, capacity, window)
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

local finishes, admissions = tonumber(header[4]), tonumber(header[5])
for i = 5, 4 + finishes do
  local w = words(ARGV[i])
  finish(keysOf(w[1], w[2], w[3] == '1'), prefix .. w[4], w[5], w[6], w[7])
end
local results = {}
for i = 1, admissions do
  local w = words(ARGV[4 + finishes + i])
  local capacity = tonumber(w[4])
  results[i] = admit(keysOf(w[1], w[2], capacity > 0), prefix .. w[3], capacity, tonumber(w[5]))
end
return results
`;

const GATE_COMMAND = 'resthooksGate';

/**
 * How long a finish waits for admissions to ride along with (then it goes alone, with any others
 * that came meanwhile), when other workers' admissions depend on it at once: a pause (it must hold
 * on every worker), a probe's answer (it ends or extends a pause), or a rate window (it counts from
 * the finish).
 */
const FINISH_WAIT_MS = 2;
/**
 * How long any other finish waits: it only frees cap slots, and this worker's own next admissions
 * see them free at once (its finishes go first in their call). Other workers see them free at most
 * this much later; attempts do not wait for it (see AttemptRunner), so while deliveries trickle in,
 * each finish rides on the next job's admissions rather than costing a call of its own.
 */
const FINISH_RIDE_MS = 20;
/** At most this many finishes and admissions in one script call: a script holds Redis while it runs. */
const MAX_PER_CALL = 128;

interface Waiting<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}
interface PendingFinish extends Waiting<void> {
  readonly pass: GatePass;
  readonly verdict: ReceiverVerdict;
}
interface PendingAdmission extends Waiting<Admission> {
  readonly id: string;
  readonly request: GateRequest;
}

type AdmitReply = [number, number, string];

export class RedisSendGate implements SendGate {
  readonly #client: () => Promise<RedisClient>;
  readonly #options: RedisSendGateOptions;
  readonly #defined = new WeakSet<RedisClient>();
  /** Finishes and admissions not yet sent: they go together, in one script call. */
  #finishes: PendingFinish[] = [];
  #admissions: PendingAdmission[] = [];
  #finishTimer: NodeJS.Timeout | undefined;
  /** When `#finishTimer` fires (performance.now()). */
  #finishDueAt = Infinity;
  #admitScheduled = false;
  /** Pass ids: unique across workers by the prefix, cheap per attempt by the counter. */
  readonly #idPrefix = `${randomUUID()}:`;
  #passes = 0;
  /** What the script puts before a key's kind (`pause:`, `rate:`, `origin:`, `sub:`) and its name. */
  readonly #keyBase: string;

  constructor(client: () => Promise<RedisClient>, options: RedisSendGateOptions) {
    this.#client = client;
    this.#options = options;
    this.#keyBase = `${options.keyPrefix}:gate:`;
  }

  /**
   * The admissions asked for in one turn of the event loop (the jobs a worker starts together) go in
   * one script call, with the finishes waiting by then.
   */
  admit(request: GateRequest): Promise<Admission> {
    return new Promise((resolve, reject) => {
      this.#admissions.push({ id: this.#newPassId(), request, resolve, reject });
      if (this.#admitScheduled) return;
      this.#admitScheduled = true;
      setImmediate(() => void this.#send());
    });
  }

  /**
   * Resolves once Redis has applied it. Each attempt would otherwise cost two round trips (admit,
   * finish): a finish rides with the next admissions of this gate, or goes within FINISH_WAIT_MS
   * (a pause, a rate window) or FINISH_RIDE_MS (the rest) with the others that came meanwhile.
   */
  finish(pass: GatePass, verdict: ReceiverVerdict): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#finishes.push({ pass, verdict, resolve, reject });
      const urgent = verdict.kind === 'pause' || pass.probe || pass.request.perSecond !== null;
      const dueAt = performance.now() + (urgent ? FINISH_WAIT_MS : FINISH_RIDE_MS);
      if (dueAt >= this.#finishDueAt) return;
      clearTimeout(this.#finishTimer);
      this.#finishDueAt = dueAt;
      this.#finishTimer = setTimeout(() => void this.#send(), dueAt - performance.now());
    });
  }

  /** Sends the finishes still waiting (on close: their slots would otherwise stay taken until their lease ends). */
  async flush(): Promise<void> {
    if (this.#finishes.length === 0 && this.#admissions.length === 0) return;
    await this.#send();
  }

  /** One admission with a clock of its own, sent alone (tests; production uses `admit`). */
  async admitAt(request: GateRequest, now: number | undefined): Promise<Admission> {
    const id = this.#newPassId();
    const [reply] = await this.#run(now, [], [this.#admissionWords(id, request)]);
    return admission(id, request, reply!);
  }

  /** One finish with a clock of its own, sent alone (tests; production uses `finish`). */
  async finishAt(pass: GatePass, verdict: ReceiverVerdict, now: number | undefined): Promise<void> {
    await this.#run(now, [this.#finishWords(pass, verdict)], []);
  }

  /** Sends everything pending, on Redis's clock, in calls of at most MAX_PER_CALL. */
  async #send(): Promise<void> {
    clearTimeout(this.#finishTimer);
    this.#finishTimer = undefined;
    this.#finishDueAt = Infinity;
    this.#admitScheduled = false;
    const finishes = this.#finishes;
    const admissions = this.#admissions;
    this.#finishes = [];
    this.#admissions = [];
    while (finishes.length > 0 || admissions.length > 0) {
      const f = finishes.splice(0, MAX_PER_CALL);
      const a = admissions.splice(0, MAX_PER_CALL - f.length);
      let replies: AdmitReply[];
      try {
        replies = await this.#run(
          undefined,
          f.map((x) => this.#finishWords(x.pass, x.verdict)),
          a.map((x) => this.#admissionWords(x.id, x.request)),
        );
      } catch (error) {
        for (const x of [...f, ...a]) x.reject(error);
        continue;
      }
      for (const x of f) x.resolve();
      a.forEach((x, i) => x.resolve(admission(x.id, x.request, replies[i]!)));
    }
  }

  async #run(now: number | undefined, finishes: readonly string[], admissions: readonly string[]): Promise<AdmitReply[]> {
    const client = await this.#ready();
    const { leaseMs, perOrigin, perSubscription } = this.#options;
    const header = `${leaseMs} ${perOrigin} ${perSubscription} ${finishes.length} ${admissions.length}`;
    return (await client.runCommand(GATE_COMMAND, [now === undefined ? '' : String(now), this.#keyBase, this.#idPrefix, header, ...finishes, ...admissions])) as AdmitReply[];
  }

  #finishWords(pass: GatePass, verdict: ReceiverVerdict): string {
    const { subscriptionId, origin, perSecond } = pass.request;
    return `${subscriptionId} ${origin} ${perSecond === null ? 0 : 1} ${this.#passSuffix(pass.id)} ${pass.probe ? 1 : 0} ${verdict.kind} ${verdict.kind === 'pause' ? verdict.ms : 0}`;
  }

  #admissionWords(id: string, request: GateRequest): string {
    const { capacity, windowMs } = request.perSecond === null ? { capacity: 0, windowMs: 0 } : rateWindow(request.perSecond);
    return `${request.subscriptionId} ${request.origin} ${this.#passSuffix(id)} ${capacity} ${windowMs}`;
  }

  #newPassId(): string {
    return this.#idPrefix + String(++this.#passes);
  }

  /** A pass's id as the script gets it: after this gate's prefix (every pass it finishes is one it admitted). */
  #passSuffix(id: string): string {
    if (!id.startsWith(this.#idPrefix)) throw new Error(`resthooks: the pass ${id} was not admitted by this gate`);
    return id.slice(this.#idPrefix.length);
  }

  async #ready(): Promise<RedisClient> {
    const client = await this.#client();
    if (!this.#defined.has(client)) {
      // No keys: the script names them (see GATE).
      client.defineCommand(GATE_COMMAND, { lua: GATE, numberOfKeys: 0 });
      this.#defined.add(client);
    }
    return client;
  }
}

function admission(id: string, request: GateRequest, [admitted, value, reason]: AdmitReply): Admission {
  if (admitted === 1) return { admitted: true, pass: { id, request, probe: value === 1 } };
  return { admitted: false, waitMs: Number(value), reason: reason as Extract<Admission, { admitted: false }>['reason'] };
}
