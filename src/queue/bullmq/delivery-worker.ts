/**
 * BullMQ's `Worker`, with one thing changed: the wake-up marker a fetch leaves behind once the queue
 * is empty. BullMQ's fetch script (`moveToActive`) puts the marker back with every job it takes, whether
 * more jobs wait or not, and a worker blocks on that marker (`BZPOPMIN`) only after a fetch came back
 * empty. So while jobs come one at a time, each one cost a fetch that takes it, a fetch that finds
 * nothing, then a `BZPOPMIN` that returns at once on the stale marker and one more empty fetch, before
 * the worker blocks. Here a fetch that finds nothing also drops the marker, in one script that checks
 * that no job waits (a job added meanwhile keeps it): the worker then blocks at once, until a job is
 * added. The marker and lists are named by the worker's own keys; a delayed job's marker is kept.
 * @module
 */
import { Worker, type Job, type Processor, type RedisClient, type WorkerOptions } from 'bullmq';

// KEYS: the queue's marker, wait list and prioritized set. The base marker (member "0", score 0) says
// "jobs are waiting"; BullMQ's own scripts add it wherever a job becomes waiting, so it goes only while
// none is. A marker with any other score is left alone (a delayed job's next time).
const DROP_STALE_MARKER = `
if redis.call('LLEN', KEYS[2]) == 0 and redis.call('ZCARD', KEYS[3]) == 0 and redis.call('ZSCORE', KEYS[1], '0') == '0' then
  return redis.call('ZREM', KEYS[1], '0')
end
return 0
`;
const DROP_STALE_MARKER_COMMAND = 'resthooksDropStaleMarker';

export class DeliveryWorker<T> extends Worker<T> {
  /** The connection the script runs on (any of the queue's: the script is atomic). */
  readonly #markerClient: () => Promise<RedisClient>;
  readonly #defined = new WeakSet<RedisClient>();

  /** Runs at once, as BullMQ's `autorun` would: only once its own fields are set. */
  constructor(name: string, processor: Processor<T>, options: WorkerOptions, markerClient: () => Promise<RedisClient>) {
    super(name, processor, { ...options, autorun: false });
    this.#markerClient = markerClient;
    this.run().catch((error: unknown) => this.emit('error', error instanceof Error ? error : new Error(String(error))));
  }

  // The fetch the main loop and `getNextJob` make: `(token, name)` on BullMQ 6, `(client, token, name)`
  // on BullMQ 5; the arguments are passed on as they come.
  protected override async moveToActive(...args: [token: string, name?: string]): Promise<Job<T>> {
    const job = await super.moveToActive(...args);
    if (!job) await this.#dropStaleMarker();
    return job;
  }

  async #dropStaleMarker(): Promise<void> {
    try {
      const client = await this.#markerClient();
      if (!this.#defined.has(client)) {
        client.defineCommand(DROP_STALE_MARKER_COMMAND, { lua: DROP_STALE_MARKER, numberOfKeys: 3 });
        this.#defined.add(client);
      }
      const { marker, wait, prioritized } = this.keys;
      await client.runCommand(DROP_STALE_MARKER_COMMAND, [marker!, wait!, prioritized!]);
    } catch {
      // Left in place, the marker costs one more empty fetch, as in BullMQ itself; Redis errors surface through the fetch.
    }
  }
}
