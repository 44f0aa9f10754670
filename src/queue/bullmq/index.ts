/**
 * `resthooks/bullmq`: the distributed dispatch engine, deliveries as BullMQ jobs on Redis.
 * `bullmq` (and `ioredis`, which it drives) are optional peer dependencies: only this entry loads them.
 * @module
 */
export { bullmqQueue, type BullmqQueueOptions } from './bullmq-queue.js';
