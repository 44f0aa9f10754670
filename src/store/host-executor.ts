/**
 * The one thing the store needs from the app's own transaction: run a compiled statement in it.
 * Each ORM adapter implements this in a line or two (TypeORM `queryRunner.query`, Prisma
 * `tx.$executeRawUnsafe`, Drizzle `tx.execute`, Kysely `trx.executeQuery`).
 * @module
 */

/** A statement compiled for the store's dialect: SQL text with positional parameters. */
export interface CompiledStatement {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/**
 * Runs statements inside the caller's transaction, so the outbox row commits or rolls back with
 * the app's own write. Either an object with `execute`, or a plain function. When it throws (or
 * rejects), the trigger throws `OutboxWriteError`: the caller rolls the transaction back.
 * @example
 * // better-sqlite3, inside db.exec('BEGIN IMMEDIATE') … db.exec('COMMIT'):
 * const tx: HostExecutor = (sql, params) => appDb.prepare(sql).run(...params);
 * // Kysely: { execute: (q) => trx.executeQuery(CompiledQuery.raw(q.sql, [...q.parameters])) }
 */
export type HostExecutor =
  | { execute(statement: CompiledStatement): unknown }
  | ((sql: string, parameters: readonly unknown[]) => unknown);

export async function runOnHost(executor: HostExecutor, statements: readonly CompiledStatement[]): Promise<void> {
  for (const statement of statements) {
    if (typeof executor === 'function') await executor(statement.sql, statement.parameters);
    else await executor.execute(statement);
  }
}
