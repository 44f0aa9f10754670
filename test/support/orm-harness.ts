/**
 * What the ORM adapter tests share around their own ORM: opening and closing what a test uses,
 * undoing a transaction on purpose, and waiting until delivery has settled.
 */
import { afterEach } from 'vitest';
import type { Hooks } from '../../src/index.js';

/** Thrown at the end of a transaction's callback to roll it back on purpose. */
export const ROLLBACK = new Error('roll back');

/** Waits for a transaction; its rejection with ROLLBACK is the rollback the test asked for, any other is a failure. */
export async function rolledBack(transaction: Promise<unknown>): Promise<void> {
  await transaction.catch((error: unknown) => {
    if (error !== ROLLBACK) throw error;
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until nothing is left to deliver, then `graceMs` more for a late, wrong delivery. */
export async function settleDelivery(hooks: Pick<Hooks<string>, 'idle'>, graceMs = 100): Promise<void> {
  await hooks.idle();
  await sleep(graceMs);
  await hooks.idle();
}

/** Closes one thing a test opened. */
export type Closer = () => Promise<void> | void;

/**
 * Runs `open`, which pushes a closer onto `closers` for each thing it opens and may hand out `close`
 * (all of them, last first). If `open` fails, what it had opened is closed before the error goes on.
 */
export async function openAll<T>(open: (closers: Closer[], close: () => Promise<void>) => Promise<T>): Promise<T> {
  const closers: Closer[] = [];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer();
  };
  try {
    return await open(closers, close);
  } catch (error) {
    await close();
    throw error;
  }
}

/** `make`, with what it opens during a test closed after that test, in the order it was opened. Call it inside a describe. */
export function closedAfterEach<A extends unknown[], E extends { close(): Promise<void> }>(make: (...args: A) => Promise<E>): (...args: A) => Promise<E> {
  const opened: E[] = [];
  afterEach(async () => {
    for (const made of opened.splice(0)) await made.close();
  });
  return async (...args) => {
    const made = await make(...args);
    opened.push(made);
    return made;
  };
}
