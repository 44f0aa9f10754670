/**
 * One HTTP attempt, and nothing else: POST the signed body, never follow a redirect, stop at the
 * timeout, keep at most an excerpt of the answer. One undici `Agent`: a keep-alive pool per origin,
 * which the Agent drops once all of its connections have closed (idle connections close after
 * `IDLE_CONNECTION_MS`), so memory follows the receivers in use, not every receiver ever called.
 *
 * Built on `dispatch()` with one handler object per attempt (undici's `DispatchHandler`:
 * `onRequestStart` … `onResponseEnd` / `onResponseError`) rather than `request()`: no
 * AbortController, no response stream and no async iteration per attempt, which together cost as
 * much CPU as the HTTP request itself. The handler settles the attempt from undici's callbacks; the
 * attempts' timeouts share one timer (`Deadlines`), and an abort signal gets one listener however many
 * attempts share it.
 * @module
 */
import type { Dispatcher } from 'undici';
import { AttemptTimeoutError, attemptErrorMessage } from './attempt-error.js';
import { skippingInterimContinue } from './interim-continue.js';
import { Deadlines, type Expiring } from './deadlines.js';
import { parseTarget } from './origins.js';
import { Agent, buildConnector, type Connector } from './undici-core.js';
import type { AttemptResult } from './outcome.js';

/** How long an unused keep-alive connection stays open; an origin without connections is forgotten. */
const IDLE_CONNECTION_MS = 10_000;

export interface SendRequest {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly timeoutMs: number;
  /** Aborts the attempt early (shutdown). */
  readonly signal?: AbortSignal;
}

export interface SendResult extends AttemptResult {
  readonly durationMs: number;
  /** The start of the response body, at most `excerptBytes` long. */
  readonly excerpt: string | null;
  /** True when `signal` aborted the attempt: it does not count as an attempt. */
  readonly aborted?: boolean;
  /** What the attempt failed with, when it threw (logged with its stack; `error` is its recorded text). */
  readonly cause?: Error;
}

export interface SenderOptions {
  /** Concurrent connections per origin. Default 16. */
  readonly connectionsPerOrigin?: number;
  /** Bytes of response body kept for the delivery log. Default 64 KiB. */
  readonly excerptBytes?: number;
  /** The undici connector: the SSRF guard plugs in here. */
  readonly connect?: Connector;
  readonly userAgent?: string;
}

export class Sender {
  #agent: Agent;
  readonly #newAgent: () => Agent;
  readonly #options: Required<Omit<SenderOptions, 'connect' | 'connectionsPerOrigin'>>;
  /** The attempts in flight under each abort signal (see `Watch`). */
  readonly #watches = new Map<AbortSignal, Watch>();
  readonly #deadlines = new Deadlines<Attempt>();

  constructor(options: SenderOptions = {}) {
    this.#options = {
      excerptBytes: options.excerptBytes ?? 64 * 1024,
      userAgent: options.userAgent ?? 'resthooks',
    };
    const connect = skippingInterimContinue(options.connect ?? buildConnector({}));
    this.#newAgent = () => new Agent({ connections: options.connectionsPerOrigin ?? 16, keepAliveTimeout: IDLE_CONNECTION_MS, connect });
    this.#agent = this.#newAgent();
  }

  /** Never rejects: every failure is a result with an `error`. */
  send(request: SendRequest): Promise<SendResult> {
    const signal = request.signal;
    if (signal?.aborted) return Promise.resolve({ error: ABORTED_BY_SHUTDOWN, durationMs: 0, excerpt: null, aborted: true });
    let watch: Watch | undefined;
    if (signal) {
      watch = this.#watches.get(signal);
      if (!watch) this.#watches.set(signal, (watch = new Watch(signal, this.#watches)));
    }
    const attempt = new Attempt(request.timeoutMs, this.#options.excerptBytes, watch, this.#deadlines);
    // `hooks.stop()` closes the sender to let its connections go; a later `start()` sends again, on a new Agent.
    if (this.#agent.closed || this.#agent.destroyed) this.#agent = this.#newAgent();
    try {
      // Parsed once per target, not per attempt (a URL object per request was a measurable part of its CPU).
      const url = parseTarget(request.url);
      this.#agent.dispatch(
        {
          origin: url.origin,
          method: 'POST',
          path: url.path,
          headers: headerList(request.headers, this.#options.userAgent),
          body: request.body,
          // The attempt's own timer (started earlier, same length) covers the whole attempt and fires
          // first; these keep undici's 300 s defaults from cutting a longer timeout short.
          headersTimeout: request.timeoutMs,
          bodyTimeout: request.timeoutMs,
        },
        attempt,
      );
    } catch (error) {
      // An invalid URL; undici reports its own refusals (bad header, closed pool) to onResponseError.
      attempt.onResponseError(null, error as Error);
    }
    return attempt.promise;
  }

  /** Closes its connections; a send after this opens new ones. */
  async close(): Promise<void> {
    const agent = this.#agent;
    if (agent.closed) return;
    await agent.close().catch(() => agent.destroy());
  }
}

const ABORTED_BY_SHUTDOWN = 'aborted by shutdown';

/**
 * The request's headers as undici's flat list (name, value, …), the defaults first unless the request
 * sets them: undici reads a list as it is, where an object costs it a key array and an iterator check,
 * and the defaults and the request's headers were merged into one more object per attempt.
 */
function headerList(headers: Readonly<Record<string, string>>, userAgent: string): string[] {
  const list: string[] = [];
  if (!('content-type' in headers)) list.push('content-type', 'application/json');
  if (!('user-agent' in headers)) list.push('user-agent', userAgent);
  for (const name in headers) list.push(name, headers[name]!);
  return list;
}

/**
 * The attempts in flight under one abort signal, and the signal's one listener (this object, via
 * `handleEvent`), which aborts them all. The in-process queue hands the same shutdown signal to
 * every attempt: one listener instead of one per attempt. A BullMQ worker hands one signal per job.
 * The listener goes when the signal's last attempt settles, so a signal is never kept alive by the
 * sender (a listener left on an `AbortSignal.any()` signal would keep it alive as long as its sources).
 */
class Watch {
  readonly #attempts = new Set<Attempt>();
  readonly #signal: AbortSignal;
  readonly #watches: Map<AbortSignal, Watch>;

  constructor(signal: AbortSignal, watches: Map<AbortSignal, Watch>) {
    this.#signal = signal;
    this.#watches = watches;
    signal.addEventListener('abort', this, { once: true });
  }

  add(attempt: Attempt): void {
    this.#attempts.add(attempt);
  }

  delete(attempt: Attempt): void {
    this.#attempts.delete(attempt);
    if (this.#attempts.size === 0 && this.#watches.get(this.#signal) === this) {
      this.#signal.removeEventListener('abort', this);
      this.#watches.delete(this.#signal);
    }
  }

  handleEvent(): void {
    this.#watches.delete(this.#signal);
    // Each shutdown() settles its attempt, which deletes it from the set: safe while iterating.
    for (const attempt of this.#attempts) attempt.shutdown(this.#signal.reason);
  }
}

/**
 * One attempt: undici's handler for the request, and the promise of its result. It settles once,
 * from whichever comes first: the response's end, the excerpt filling up, an error, the timer, or
 * the shutdown signal; whatever undici reports afterwards is ignored.
 */
class Attempt implements Dispatcher.DispatchHandler, Expiring {
  readonly promise: Promise<SendResult>;
  #resolve!: (result: SendResult) => void;
  readonly #started = performance.now();
  readonly deadline: number;
  readonly #timeoutMs: number;
  readonly #limit: number;
  readonly #watch: Watch | undefined;
  readonly #deadlines: Deadlines<Attempt>;
  #settled = false;
  /** Set once undici starts the request; until then an abort waits in `#abortReason`. */
  #controller: Dispatcher.DispatchController | null = null;
  #abortReason: Error | null = null;
  #statusCode = 0;
  #retryAfter: string | undefined;
  #chunks: Buffer[] | null = null;
  #size = 0;

  constructor(timeoutMs: number, limit: number, watch: Watch | undefined, deadlines: Deadlines<Attempt>) {
    this.promise = new Promise<SendResult>((resolve) => (this.#resolve = resolve));
    this.#timeoutMs = timeoutMs;
    this.deadline = this.#started + timeoutMs;
    this.#limit = limit;
    this.#watch = watch;
    this.#deadlines = deadlines;
    watch?.add(this);
    deadlines.add(this, timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Timed out or shut down while waiting for a connection: the result is out already.
    if (this.#settled) controller.abort(this.#abortReason ?? new Error(ABORTED_BY_SHUTDOWN));
    else this.#controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (this.#settled || statusCode < 200) return; // 1xx: informational, the response is still to come
    this.#statusCode = statusCode;
    const retryAfter = headers['retry-after'];
    if (typeof retryAfter === 'string') this.#retryAfter = retryAfter;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    (this.#chunks ??= []).push(chunk);
    this.#size += chunk.length;
    // Enough for the excerpt: the status counts, and the rest is cut off rather than downloaded
    // (the connection is then not reused, which is fine).
    if (this.#size >= this.#limit) {
      this.#succeed();
      controller.abort(new Error('response excerpt complete'));
    }
  }

  onResponseEnd(): void {
    if (!this.#settled) this.#succeed();
  }

  /** Also called before any response (refused, reset, closed pool): `controller` may be null. */
  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    // After the status line too: a 2xx whose body the peer cut off is a failed attempt.
    if (!this.#settled) this.#settle({ error: attemptErrorMessage(error), durationMs: this.#elapsed(), excerpt: null, cause: error });
  }

  timeout(): void {
    if (this.#settled) return;
    const error = new AttemptTimeoutError(this.#timeoutMs);
    this.#settle({ error: error.message, durationMs: this.#elapsed(), excerpt: null, cause: error });
    this.#cancel(error);
  }

  shutdown(reason: unknown): void {
    if (this.#settled) return;
    this.#settle({ error: ABORTED_BY_SHUTDOWN, durationMs: this.#elapsed(), excerpt: null, aborted: true });
    this.#cancel(reason instanceof Error ? reason : new Error(ABORTED_BY_SHUTDOWN));
  }

  /** Stops the request now, or as soon as undici starts it (it may still wait for a connection). */
  #cancel(reason: Error): void {
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  #succeed(): void {
    const statusCode = this.#statusCode;
    const durationMs = this.#elapsed();
    const excerpt = this.#excerpt();
    const retryAfter = this.#retryAfter;
    this.#settle(retryAfter === undefined ? { statusCode, durationMs, excerpt } : { statusCode, retryAfter, durationMs, excerpt });
  }

  #settle(result: SendResult): void {
    this.#settled = true;
    this.#deadlines.delete(this, this.#timeoutMs);
    this.#watch?.delete(this);
    this.#chunks = null;
    this.#resolve(result);
  }

  #excerpt(): string {
    const chunks = this.#chunks;
    if (chunks === null) return '';
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
    return body.toString('utf8', 0, completeUtf8(body, Math.min(this.#size, this.#limit)));
  }

  #elapsed(): number {
    return Math.round(performance.now() - this.#started);
  }
}

/**
 * How many of the first `end` bytes of `bytes` to decode so that an incomplete multi-byte UTF-8
 * character at the cut is dropped rather than kept as U+FFFD (3 bytes, which could take the excerpt
 * past its limit). The same rule as `StringDecoder.write()`: only a lead byte among the last three
 * bytes whose sequence does not fit is held back; anything else invalid is left to the decoder.
 */
export function completeUtf8(bytes: Uint8Array, end: number): number {
  for (let i = end - 1, have = 1; i >= 0 && have <= 3; i--, have++) {
    const byte = bytes[i]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back for its lead
    const needs = (byte & 0xe0) === 0xc0 ? 2 : (byte & 0xf0) === 0xe0 ? 3 : (byte & 0xf8) === 0xf0 ? 4 : 0;
    return needs > have ? i : end;
  }
  return end;
}
