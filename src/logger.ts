/**
 * The logging port: pino's call shape (`logger.warn(obj, msg)`), so a pino or bunyan logger fits as is,
 * and so does `console` (which prints the object after the message, an `Error` in it with its stack).
 * By default warnings and errors go to stderr: a failing delivery is never silent.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

/**
 * The default of `createHooks({ logger })`: warnings and errors to stderr, message first, then the fields
 * (an `err` with its stack and `cause`, as `console` prints them); debug and info dropped.
 */
export const stderrLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: (obj: object, msg?: string) => console.warn(msg ?? '', obj),
  error: (obj: object, msg?: string) => console.error(msg ?? '', obj),
});

/** `logger` as the options give it: a logger, `false` for none, or nothing for the stderr default. */
export function resolveLogger(logger: Logger | false | undefined): Logger {
  return logger === false ? silentLogger : (logger ?? stderrLogger);
}


/** Turns an unknown thrown value into a log-safe object (no request bodies, no secrets). */
export function errorInfo(error: unknown): { message: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? { message: error.message, code } : { message: error.message };
  }
  return { message: String(error) };
}

/** What a log line's `err` holds: the thrown `Error` itself (its stack and `cause` kept), or one made from a thrown non-error. */
export function loggedError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
