/**
 * One job at a time per delivery attempt. Jobs carry several deliveries and are not deduplicated, so
 * one attempt may be in several jobs at once: relayed again after its lease lapsed, re-added after
 * Redis lost its jobs, given back and claimed anew while its first job still runs. Before a job reads
 * its claims it takes a key per attempt (`SET … PX`, holding the job's id and time of adding); a job that finds a key
 * held by another job leaves that delivery to it. The same job run again (BullMQ's stalled check after
 * its worker died, or its retry) takes its keys again. Keys are let go when the job ends, or at once
 * for a delivery given back, and expire on their own after a worker's death.
 *
 * Jobs that start in the same turn of the event loop take their keys in one script call; the same
 * call takes their counts off the relays' count of waiting deliveries.
 * @module
 */
import type { RedisClient } from 'bullmq';
import type { DeliveryAttempt } from './delivery-jobs.js';

// The scripts name the attempts' keys from the key base (`<prefix>:attempting:`) and `<id>.<attempt>`,
// as BullMQ's own scripts name a job's keys from the queue's prefix: a call carries one short argument
// per job, not a key and a job id per attempt.
// KEYS: the waiting count. ARGV: how much to take off the waiting count, the keys' lifetime in ms, the
// key base, then one word list per job: its id, then its attempts. Returns 1 (taken) or 0 (held by
// another job) per attempt, in order.
const TAKE = `
if tonumber(ARGV[1]) > 0 then redis.call('DECRBY', KEYS[1], ARGV[1]) end
local ttl, base = ARGV[2], ARGV[3]
local taken = {}
for i = 4, #ARGV do
  local job = nil
  for word in string.gmatch(ARGV[i], '%S+') do
    if not job then
      job = word
    else
      local key = base .. word
      local holder = redis.call('GET', key)
      if not holder or holder == job then
        redis.call('SET', key, job, 'PX', ttl)
        taken[#taken + 1] = 1
      else
        taken[#taken + 1] = 0
      end
    end
  end
end
return taken
`;
// ARGV: the key base, then one word list: the job id, then its attempts. Deletes only the keys that job holds.
const RELEASE = `
local base, job = ARGV[1], nil
for word in string.gmatch(ARGV[2], '%S+') do
  if not job then
    job = word
  elseif redis.call('GET', base .. word) == job then
    redis.call('DEL', base .. word)
  end
end
return 0
`;
const ADD_WAITING = `return redis.call('INCRBY', KEYS[1], ARGV[1])`;
const TAKE_COMMAND = 'resthooksTakeDeliveries';
const ADD_WAITING_COMMAND = 'resthooksAddWaiting';
const RELEASE_COMMAND = 'resthooksReleaseDeliveries';

interface Take {
  readonly jobId: string;
  readonly attempts: readonly DeliveryAttempt[];
  readonly waiting: number;
  readonly resolve: (taken: boolean[]) => void;
  readonly reject: (error: unknown) => void;
}

export class DeliveryGuard {
  readonly #client: () => Promise<RedisClient>;
  readonly #waitingKey: string;
  /** What the scripts put before `<id>.<attempt>` to name an attempt's key. */
  readonly #keyBase: string;
  readonly #ttlMs: number;
  readonly #defined = new WeakSet<RedisClient>();
  #takes: Take[] = [];
  // The waiting count, from the answer to the last command sent of those answered (one connection answers in order).
  #countsSent = 0;
  #countAnswered = 0;
  #count = 0;

  /** `ttlMs`: how long a key outlives a worker that died holding it. */
  constructor(client: () => Promise<RedisClient>, options: { readonly keyPrefix: string; readonly ttlMs: number }) {
    this.#client = client;
    this.#waitingKey = `${options.keyPrefix}:resthooks-waiting`;
    this.#keyBase = `${options.keyPrefix}:attempting:`;
    this.#ttlMs = options.ttlMs;
  }

  /**
   * Takes the keys of a job's attempts for `jobId`: true for each one this job may attempt. `waiting`:
   * how many deliveries to take off the waiting count (the job's, on its first start; else 0).
   */
  take(jobId: string, attempts: readonly DeliveryAttempt[], waiting: number): Promise<boolean[]> {
    return new Promise((resolve, reject) => {
      this.#takes.push({ jobId, attempts, waiting, resolve, reject });
      // After the I/O callbacks of this turn: the jobs started by the same socket read join in.
      if (this.#takes.length === 1) setImmediate(() => void this.#flush());
    });
  }

  /**
   * Counts `count` more deliveries waiting in jobs (a relay has just added them); resolves with the count
   * as `waiting()` does.
   */
  async added(count: number): Promise<number> {
    const client = await this.#ready();
    const sent = ++this.#countsSent;
    return this.#counted(sent, await client.runCommand(ADD_WAITING_COMMAND, [this.#waitingKey, String(count)]));
  }

  /**
   * The deliveries waiting in jobs not yet started, every relay's: what the relays counted in, less
   * what the workers took off as each job first started. Of answers that cross (a read and an add on
   * their way at once), the one to the command sent last: a read sent before an add may or may not
   * count it, so a caller that added the add's own count to it could count it twice.
   */
  async waiting(): Promise<number> {
    const client = await this.#ready();
    const sent = ++this.#countsSent;
    return this.#counted(sent, await client.get(this.#waitingKey));
  }

  #counted(sent: number, answer: unknown): number {
    if (sent > this.#countAnswered) {
      this.#countAnswered = sent;
      this.#count = Math.max(0, Number(answer));
    }
    return this.#count;
  }

  /** Lets the keys go that `jobId` holds (not those another job took since). */
  async release(jobId: string, attempts: readonly DeliveryAttempt[]): Promise<void> {
    if (attempts.length === 0) return;
    const client = await this.#ready();
    await client.runCommand(RELEASE_COMMAND, [this.#keyBase, wordsOf(jobId, attempts)]);
  }

  async #flush(): Promise<void> {
    const takes = this.#takes;
    this.#takes = [];
    try {
      const client = await this.#ready();
      let waiting = 0;
      const jobs: string[] = [];
      for (const take of takes) {
        waiting += take.waiting;
        jobs.push(wordsOf(take.jobId, take.attempts));
      }
      const taken = (await client.runCommand(TAKE_COMMAND, [this.#waitingKey, String(waiting), String(this.#ttlMs), this.#keyBase, ...jobs])) as number[];
      let at = 0;
      for (const take of takes) {
        take.resolve(take.attempts.map(() => taken[at++] === 1));
      }
    } catch (error) {
      for (const take of takes) take.reject(error);
    }
  }

  async #ready(): Promise<RedisClient> {
    const client = await this.#client();
    if (!this.#defined.has(client)) {
      client.defineCommand(TAKE_COMMAND, { lua: TAKE, numberOfKeys: 1 });
      client.defineCommand(RELEASE_COMMAND, { lua: RELEASE, numberOfKeys: 0 });
      client.defineCommand(ADD_WAITING_COMMAND, { lua: ADD_WAITING, numberOfKeys: 1 });
      this.#defined.add(client);
    }
    return client;
  }
}

/** A job's word list for the scripts: its id, then `<id>.<attempt>` for each of its attempts. */
function wordsOf(jobId: string, attempts: readonly DeliveryAttempt[]): string {
  let words = jobId;
  for (const { id, attempt } of attempts) words += ` ${id}.${attempt}`;
  return words;
}
