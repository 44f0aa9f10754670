/**
 * One HTTP attempt, and nothing else: POST the signed body, never follow a redirect, stop at the
 * timeout, keep at most an excerpt of the answer. One keep-alive undici Pool per origin.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import { Pool } from 'undici';
import type { buildConnector } from 'undici';
import type { AttemptResult } from './outcome.js';

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
}

export interface SenderOptions {
  /** Concurrent connections per origin. Default 16. */
  readonly connectionsPerOrigin?: number;
  /** Bytes of response body kept for the delivery log. Default 64 KiB. */
  readonly excerptBytes?: number;
  /** The undici connector: the SSRF guard plugs in here. */
  readonly connect?: buildConnector.connector;
  readonly userAgent?: string;
}

export class Sender {
  readonly #pools = new Map<string, Pool>();
  readonly #options: Required<Omit<SenderOptions, 'connect'>> & { connect?: buildConnector.connector };

  constructor(options: SenderOptions = {}) {
    this.#options = {
      connectionsPerOrigin: options.connectionsPerOrigin ?? 16,
      excerptBytes: options.excerptBytes ?? 64 * 1024,
      userAgent: options.userAgent ?? 'resthooks',
      ...(options.connect ? { connect: options.connect } : {}),
    };
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.#options.connectionsPerOrigin,
        keepAliveTimeout: 10_000,
        ...(this.#options.connect ? { connect: this.#options.connect } : {}),
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  async send(request: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new TimeoutError(request.timeoutMs)), request.timeoutMs);
    const onAbort = () => controller.abort(request.signal?.reason);
    // The caller's signal (shutdown) is shared by every attempt in flight, each adding one listener
    // that it removes below: many at once is not a leak, and Node would warn that it is past 10.
    if (request.signal) setMaxListeners(0, request.signal);
    request.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const url = new URL(request.url);
      const response = await this.#pool(url.origin).request({
        method: 'POST',
        path: url.pathname + url.search,
        headers: { 'content-type': 'application/json', 'user-agent': this.#options.userAgent, ...request.headers },
        body: request.body,
        signal: controller.signal,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      });
      const excerpt = await readExcerpt(response.body, this.#options.excerptBytes);
      const retryAfter = response.headers['retry-after'];
      return {
        statusCode: response.statusCode,
        durationMs: elapsed(),
        excerpt,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
      };
    } catch (error) {
      if (request.signal?.aborted) return { error: 'aborted by shutdown', durationMs: elapsed(), excerpt: null, aborted: true };
      const reason = controller.signal.reason instanceof TimeoutError ? controller.signal.reason : error;
      return { error: describe(reason), durationMs: elapsed(), excerpt: null };
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close().catch(() => pool.destroy())));
  }
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

// Keeps the first `limit` bytes; a longer body is cut off by destroying the stream rather than
// downloading megabytes nobody will read (the connection is then not reused, which is fine).
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  // A cut inside a multi-byte character drops its first bytes (StringDecoder holds them back) rather
  // than keeping a U+FFFD, which is 3 bytes and would take the excerpt past `limit`.
  return new StringDecoder('utf8').write(Buffer.concat(chunks, size).subarray(0, limit));
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = (error as { cause?: { code?: unknown } }).cause;
  const detail = typeof code === 'string' ? code : typeof cause?.code === 'string' ? cause.code : undefined;
  return detail && !error.message.includes(detail) ? `${error.message} (${detail})` : error.message;
}
