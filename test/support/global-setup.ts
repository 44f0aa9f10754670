/**
 * vitest globalSetup: one throwaway PostgreSQL per run, its URL provided to every test file as
 * `inject('postgresUrl')`. Each file that uses it makes its own database (`createTestDatabase`).
 */
import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.js';
import { ensureDebianPackages } from './system.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // One apt-get for everything the suite needs, before any test file starts installing on its own.
  await ensureDebianPackages();
  const server = await startPostgres();
  project.provide('postgresUrl', server.url);
  return () => server.stop();
}
