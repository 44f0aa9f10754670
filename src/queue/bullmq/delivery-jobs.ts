/**
 * What a BullMQ job carries, and how jobs are added. A job carries up to `JOB_BATCH` delivery attempts
 * (ids and attempt numbers: the store has everything else), so that BullMQ's per-job work (its Redis
 * round trips, its job objects) is shared among them. Workers still read the jobs of earlier versions,
 * one attempt each (`{ id, attempt }`), during a rolling upgrade.
 * @module
 */
import type { Queue } from 'bullmq';

/** One attempt of one delivery. */
export interface DeliveryAttempt {
  readonly id: string;
  readonly attempt: number;
}

/** A job of this version: several attempts. */
export interface BatchJobData {
  readonly deliveries: readonly DeliveryAttempt[];
}
/** A job of an earlier version: one attempt. */
export type SingleJobData = DeliveryAttempt;
export type DeliveryJobData = BatchJobData | SingleJobData;

/**
 * The most attempts one job carries. Large enough that BullMQ's per-job cost (fetching and completing
 * it: two script calls, a job object) is small per delivery; small enough that the jobs of one relay's
 * batch spread over several workers, and that a worker at the default 64 slots holds a whole job
 * (it holds two deliveries per slot).
 */
export const JOB_BATCH = 64;

export function isBatch(data: DeliveryJobData): data is BatchJobData {
  return Array.isArray((data as Partial<BatchJobData>).deliveries);
}

/** The attempts a job carries, whichever version added it. */
export function attemptsOf(data: DeliveryJobData): readonly DeliveryAttempt[] {
  return isBatch(data) ? data.deliveries : [{ id: data.id, attempt: data.attempt }];
}

/**
 * Adds the attempts as jobs of up to `JOB_BATCH` (the caller then counts them as waiting). No deduplication: a
 * delivery may be in several jobs (relayed again after a lapsed lease, re-added after Redis lost its
 * jobs); the worker's guard lets one job at a time attempt it, and the store's claim says whether it
 * is still to do.
 */
export async function addJobs(queue: Queue<DeliveryJobData>, attempts: readonly DeliveryAttempt[], delayMs = 0): Promise<void> {
  if (attempts.length === 0) return;
  const jobs = [];
  for (let i = 0; i < attempts.length; i += JOB_BATCH) {
    const deliveries = attempts.slice(i, i + JOB_BATCH).map(({ id, attempt }) => ({ id, attempt }));
    jobs.push({
      name: 'deliver',
      data: { deliveries },
      opts: {
        removeOnComplete: true,
        removeOnFail: true,
        // A job waits for an unreachable store rather than fail; it fails on a shutdown deadline or a
        // stalled worker (another worker, or its retry, takes it) or an unexpected error. One that fails
        // for good is added again by a relay.
        attempts: 3,
        backoff: { type: 'exponential', delay: 1000 },
        ...(delayMs > 0 ? { delay: delayMs } : {}),
      },
    });
  }
  await queue.addBulk(jobs);
}
