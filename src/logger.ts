/**
 * The logging port: pino's call shape (`logger.warn(obj, msg)`), so a pino, bunyan or console-backed
 * logger fits as is. Silent by default.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

/** Errors to `console.error`, message first: the default of the API and the admin page, whose 500s must leave a trace. */
export const consoleLogger: Pick<Logger, 'error'> = { error: (obj, msg) => console.error(msg, obj) };

/** Turns an unknown thrown value into a log-safe object (no request bodies, no secrets). */
export function errorInfo(error: unknown): { message: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? { message: error.message, code } : { message: error.message };
  }
  return { message: String(error) };
}
