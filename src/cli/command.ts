/**
 * What every `resthooks` subcommand is: a name, its help text and `run(args) → exit code`.
 * The dispatcher (`main.ts`) knows only this shape.
 * @module
 */
export interface Command {
  readonly name: string;
  /** One line for `resthooks --help`. */
  readonly summary: string;
  /** The whole `resthooks <command> --help` text. */
  readonly help: string;
  /** Resolves with the process exit code. Throws `UsageError` (exit 2) or `CliError` (exit 1). */
  run(args: string[]): Promise<number>;
}

/** Bad command line: the dispatcher prints the message and a pointer to `--help`, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** An expected failure (database unreachable, driver missing): one clear line, exit 1, no stack. */
export class CliError extends Error {
  override name = 'CliError';
}

/** Runs a `node:util` `parseArgs` call, turning its TypeErrors (unknown option, missing value) into `UsageError`s. */
export function usageErrors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) throw new UsageError(error.message);
    throw error;
  }
}

/** `--name` as an integer from `min` to `max` (digits only), else a `UsageError` naming the option. */
export function integer(value: string, name: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}".`);
  return n;
}
