/** better-sqlite3 connections that note the statements they run (not only prepare). */
import Database from 'better-sqlite3';

/** A connection that calls `noted` with each statement's SQL and the arguments of each run or read. */
export function notingDatabase(file: string, noted: (source: string, args: readonly unknown[]) => void): Database.Database {
  const database = new Database(file);
  const prepare = database.prepare.bind(database);
  database.prepare = ((source: string) => {
    const statement = prepare(source);
    for (const method of ['run', 'all'] as const) {
      const original = statement[method].bind(statement) as (...parameters: unknown[]) => unknown;
      (statement as unknown as Record<string, unknown>)[method] = (...parameters: unknown[]) => {
        noted(source, parameters);
        return original(...parameters);
      };
    }
    return statement;
  }) as typeof database.prepare;
  return database;
}

/** A connection that notes the SQL of every statement it runs. */
export function runRecordingDatabase(file: string, runs: string[]): Database.Database {
  return notingDatabase(file, (source) => runs.push(source));
}
