/** What the tests of `resthooks migrate --print-sql` share: the printed script, and fresh databases to run it on. */
import { expect } from 'vitest';
import { TestDatabase, type Engine } from '../support/database.js';
import { runCli } from './cli-process.js';

/** The script `resthooks migrate --print-sql` prints for `dialect`, checked to have been printed cleanly. */
export async function printedSql(dialect: Engine, ...flags: string[]): Promise<string> {
  const { code, stdout, stderr } = await runCli(['migrate', '--print-sql', '--dialect', dialect, ...flags]);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return stdout;
}

/** Empty databases on `engine`, made one at a time as the tests ask, closed together at the end. */
export function freshDatabases(engine: Engine): { fresh(): Promise<TestDatabase>; closeAll(): Promise<void> } {
  const databases: TestDatabase[] = [];
  return {
    async fresh() {
      const database = new TestDatabase(engine);
      databases.push(database);
      await database.init();
      return database;
    },
    async closeAll() {
      for (const database of databases) await database.close();
    },
  };
}
