/** A better-sqlite3 connection that notes the SQL of every statement it runs (not only prepares). */
import Database from 'better-sqlite3';

export function runRecordingDatabase(file: string, runs: string[]): Database.Database {
  const database = new Database(file);
  const prepare = database.prepare.bind(database);
  database.prepare = ((source: string) => {
    const statement = prepare(source);
    for (const method of ['run', 'all'] as const) {
      const original = statement[method].bind(statement) as (...parameters: unknown[]) => unknown;
      (statement as unknown as Record<string, unknown>)[method] = (...parameters: unknown[]) => {
        runs.push(source);
        return original(...parameters);
      };
    }
    return statement;
  }) as typeof database.prepare;
  return database;
}
