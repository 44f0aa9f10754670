/**
 * vitest globalSetup: one throwaway PostgreSQL and one throwaway Redis per run, provided to every
 * test file as `inject('postgresUrl')` and `inject('redisUrl')`. Each file that uses PostgreSQL makes
 * its own database (`createTestDatabase`); Redis users keep apart by queue name. `inject('runDir')` is a
 * temp directory for the whole run (removed at its end), where test files share work such as the packed package.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.js';
import { startRedis } from './redis.js';
import { ensureDebianPackages } from './system.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
    runDir: string;
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
  const runDir = mkdtempSync(join(tmpdir(), 'resthooks-run-'));
  project.provide('runDir', runDir);
  return async () => {
    rmSync(runDir, { recursive: true, force: true });
    await redis.stop();
    await postgres.stop();
  };
}
