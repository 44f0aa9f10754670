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
// free and those the admissions before it take. KEYS: every key the call's finishes and admissions
// name, each once (one origin's key serves all its attempts). ARGV: now ('' = Redis's clock), the
// pass ids' prefix, lease ms, per-origin cap, per-subscription cap, finishes F, admissions A; then one
// word list per finish: the KEYS indexes of its pause, rate (0: none), origin and subscription keys,
// pass id (after the prefix), probe (1/0), verdict (pause, troubled, fine, unsent), pause ms; then one
// per admission: the four indexes, pass id, capacity (0 = no rate), window ms. One argument per
// finish or admission keeps the client's work per attempt small. Returns one {admitted, wait ms or
// probe, reason} per admission.
const GATE = `
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local prefix, lease, perOrigin, perSubscription = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local function words(s)
  local w = {}
  for part in string.gmatch(s, '%S+') do w[#w + 1] = part end
  return w
end
local function keysOf(w)
  local rate = tonumber(w[2])
  return {KEYS[tonumber(w[1])], rate > 0 and KEYS[rate] or false, KEYS[tonumber(w[3])], KEYS[tonumber(w[4])]}
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

local finishes, admissions = tonumber(ARGV[6]), tonumber(ARGV[7])
for i = 8, 7 + finishes do
  local w = words(ARGV[i])
  finish(keysOf(w), prefix .. w[5], w[6], w[7], w[8])
end
local results = {}
for i = 1, admissions do
  local w = words(ARGV[7 + finishes + i])
  results[i] = admit(keysOf(w), prefix .. w[5], tonumber(w[6]), tonumber(w[7]))
end
return results
`;

const GATE_COMMAND = 'resthooksGate';

/**
 * How long a finish waits for admissions to ride along with (then it goes alone, with any others
 * that came meanwhile). Its slots stay taken that much longer at most.
 */
const FINISH_WAIT_MS = 2;
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

/** A script call's keys, each once, by the index the script reads it at (from 1, as Lua counts). */
class CallKeys {
  readonly list: string[] = [];
  readonly #index = new Map<string, number>();

  indexOf(key: string): number {
    let index = this.#index.get(key);
    if (index === undefined) {
      index = this.list.push(key);
      this.#index.set(key, index);
    }
    return index;
  }
}

/** One finish's or admission's part of a script call: its words, once the call's keys are known. */
type ScriptPart = (keys: CallKeys) => string;

type AdmitReply = [number, number, string];

export class RedisSendGate implements SendGate {
  readonly #client: () => Promise<RedisClient>;
  readonly #options: RedisSendGateOptions;
  readonly #defined = new WeakSet<RedisClient>();
  /** Finishes and admissions not yet sent: they go together, in one script call. */
  #finishes: PendingFinish[] = [];
  #admissions: PendingAdmission[] = [];
  #finishTimer: NodeJS.Timeout | undefined;
  #admitScheduled = false;
  /** Pass ids: unique across workers by the prefix, cheap per attempt by the counter. */
  readonly #idPrefix = `${randomUUID()}:`;
  #passes = 0;

  constructor(client: () => Promise<RedisClient>, options: RedisSendGateOptions) {
    this.#client = client;
    this.#options = options;
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
   * finish): a finish rides with the next admissions of this gate, or goes within FINISH_WAIT_MS with
   * the others that came meanwhile.
   */
  finish(pass: GatePass, verdict: ReceiverVerdict): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#finishes.push({ pass, verdict, resolve, reject });
      this.#finishTimer ??= setTimeout(() => void this.#send(), FINISH_WAIT_MS);
    });
  }

  /** One admission with a clock of its own, sent alone (tests; production uses `admit`). */
  async admitAt(request: GateRequest, now: number | undefined): Promise<Admission> {
    const id = this.#newPassId();
    const [reply] = await this.#run(now, [], [this.#admissionArgs(id, request)]);
    return admission(id, request, reply!);
  }

  /** One finish with a clock of its own, sent alone (tests; production uses `finish`). */
  async finishAt(pass: GatePass, verdict: ReceiverVerdict, now: number | undefined): Promise<void> {
    await this.#run(now, [this.#finishArgs(pass, verdict)], []);
  }

  /** Sends everything pending, on Redis's clock, in calls of at most MAX_PER_CALL. */
  async #send(): Promise<void> {
    clearTimeout(this.#finishTimer);
    this.#finishTimer = undefined;
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
          f.map((x) => this.#finishArgs(x.pass, x.verdict)),
          a.map((x) => this.#admissionArgs(x.id, x.request)),
        );
      } catch (error) {
        for (const x of [...f, ...a]) x.reject(error);
        continue;
      }
      for (const x of f) x.resolve();
      a.forEach((x, i) => x.resolve(admission(x.id, x.request, replies[i]!)));
    }
  }

  async #run(now: number | undefined, finishes: ScriptPart[], admissions: ScriptPart[]): Promise<AdmitReply[]> {
    const client = await this.#ready();
    const { leaseMs, perOrigin, perSubscription } = this.#options;
    const keys = new CallKeys();
    const args: Array<string | number> = [now === undefined ? '' : String(now), this.#idPrefix, String(leaseMs), String(perOrigin), String(perSubscription), String(finishes.length), String(admissions.length)];
    for (const part of finishes) args.push(part(keys));
    for (const part of admissions) args.push(part(keys));
    return (await client.runCommand(GATE_COMMAND, [keys.list.length, ...keys.list, ...args])) as AdmitReply[];
  }

  /** The KEYS indexes of a request's pause, rate (0 without a rate), origin and subscription keys. */
  #keyIndexes(keys: CallKeys, request: GateRequest): string {
    const base = `${this.#options.keyPrefix}:gate:`;
    const rate = request.perSecond === null ? 0 : keys.indexOf(`${base}rate:${request.subscriptionId}`);
    return `${keys.indexOf(`${base}pause:${request.subscriptionId}`)} ${rate} ${keys.indexOf(`${base}origin:${request.origin}`)} ${keys.indexOf(`${base}sub:${request.subscriptionId}`)}`;
  }

  #finishArgs(pass: GatePass, verdict: ReceiverVerdict): ScriptPart {
    const id = this.#passSuffix(pass.id);
    return (keys) => `${this.#keyIndexes(keys, pass.request)} ${id} ${pass.probe ? 1 : 0} ${verdict.kind} ${verdict.kind === 'pause' ? verdict.ms : 0}`;
  }

  #admissionArgs(id: string, request: GateRequest): ScriptPart {
    const { capacity, windowMs } = request.perSecond === null ? { capacity: 0, windowMs: 0 } : rateWindow(request.perSecond);
    const suffix = this.#passSuffix(id);
    return (keys) => `${this.#keyIndexes(keys, request)} ${suffix} ${capacity} ${windowMs}`;
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
      // No fixed key count (ioredis then takes it as each call's first argument): each call names
      // its own. BullMQ's type wants a number; ioredis takes `undefined` for this.
      client.defineCommand(GATE_COMMAND, { lua: GATE, numberOfKeys: undefined as unknown as number });
      this.#defined.add(client);
    }
    return client;
  }
}

function admission(id: string, request: GateRequest, [admitted, value, reason]: AdmitReply): Admission {
  if (admitted === 1) return { admitted: true, pass: { id, request, probe: value === 1 } };
  return { admitted: false, waitMs: Number(value), reason: reason as Extract<Admission, { admitted: false }>['reason'] };
}
