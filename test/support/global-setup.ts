/**
 * vitest globalSetup: one throwaway PostgreSQL and one throwaway Redis per run, provided to every
 * test file as `inject('postgresUrl')` and `inject('redisUrl')`. Each file that uses PostgreSQL makes
 * its own database (`createTestDatabase`); Redis users keep apart by queue name.
 */
import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.js';
import { startRedis } from './redis.js';
import { ensureDebianPackages } from './system.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // One apt-get for everything the suite needs, before any test file starts installing on its own.
  await ensureDebianPackages();
  const postgres = await startPostgres();
  // A failed setup gets no teardown: stop PostgreSQL here, or it outlives the run.
  const redis = await startRedis().catch(async (error: unknown) => {
    await postgres.stop();
    throw error;
  });
  project.provide('postgresUrl', postgres.url);
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    await postgres.stop();
  };
}
