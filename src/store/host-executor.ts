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

const COMMIT_ANNOUNCED = Symbol('resthooks.commitAnnounced');

/**
 * `executor`, marked as one whose owner calls `hooks.notify()` after the COMMIT (the ORM adapters, which
 * see the commit): a trigger through it needs no commit watch.
 */
export function announcingCommit(executor: (sql: string, parameters: readonly unknown[]) => unknown): HostExecutor {
  return Object.assign((sql: string, parameters: readonly unknown[]) => executor(sql, parameters), { [COMMIT_ANNOUNCED]: true });
}

/** Whether the commit of `executor`'s transaction is announced with `hooks.notify()`: see `announcingCommit`. */
export function announcesCommit(executor: HostExecutor): boolean {
  return (executor as { [COMMIT_ANNOUNCED]?: boolean })[COMMIT_ANNOUNCED] === true;
}

export async function runOnHost(executor: HostExecutor, statements: readonly CompiledStatement[]): Promise<void> {
  for (const statement of statements) {
    if (typeof executor === 'function') await executor(statement.sql, statement.parameters);
    else await executor.execute(statement);
  }
}

/**
 * A compiled statement cut at its placeholders (`$1` on PostgreSQL, `?` on SQLite; quoted text is
 * passed over): `texts` has one more entry than `values`, and `values[i]` goes between `texts[i]` and
 * `texts[i + 1]`. For hosts that bind parameters in a style of their own (MikroORM takes `?`
 * everywhere, Sequelize `$n` everywhere, Drizzle its own parameter objects).
 */
export function placeholderParts(statement: CompiledStatement): { texts: string[]; values: unknown[] } {
  const { sql, parameters } = statement;
  const texts: string[] = [];
  const values: unknown[] = [];
  let start = 0;
  let next = 0;
  for (let i = 0; i < sql.length; i++) {
    const char = sql[i]!;
    if (char === "'" || char === '"' || char === '`') {
      const end = sql.indexOf(char, i + 1);
      i = end < 0 ? sql.length : end;
      continue;
    }
    let index: number;
    let end = i + 1;
    if (char === '?') index = next++;
    else if (char === '$' && /\d/.test(sql[i + 1] ?? '')) {
      while (end < sql.length && /\d/.test(sql[end]!)) end++;
      index = Number(sql.slice(i + 1, end)) - 1;
    } else continue;
    if (index < 0 || index >= parameters.length) throw new Error(`Placeholder ${sql.slice(i, end)} has no parameter (${parameters.length} given).`);
    texts.push(sql.slice(start, i));
    values.push(parameters[index]);
    start = end;
    i = end - 1;
  }
  texts.push(sql.slice(start));
  return { texts, values };
}
