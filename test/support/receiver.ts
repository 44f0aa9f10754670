import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly json: any;
  readonly at: number;
}

/** Decides the answer to one request; default 200. `'hang'` never answers. */
export type Responder = (request: Received, index: number, response: ServerResponse) => number | 'hang' | 'handled' | { status: number; headers?: Record<string, string>; body?: string };

/** A real HTTP receiver on 127.0.0.1 that records every request. */
export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  respond: Responder;
  /** Resolves once `count` requests have arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** The request's payload if its Standard Webhooks signature verifies with `secret` (the reference package); throws otherwise. */
export const verify = (secret: string, request: Received) => new Webhook(secret).verify(request.body, request.headers as Record<string, string>);

export async function startReceiver(respond: Responder = () => 200): Promise<Receiver> {
  const received: Received[] = [];
  let waiters: Array<() => void> = [];
  const hanging = new Set<ServerResponse>();
  const receiver: Receiver = {
    url: '',
    received,
    respond,
    waitFor(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length >= count) {
            clearTimeout(timer);
            waiters = waiters.filter((w) => w !== check);
            resolve(received.slice());
          }
        };
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== check);
          reject(new Error(`receiver: expected ${count} requests, got ${received.length} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    close() {
      for (const response of hanging) response.destroy();
      return closeServer(server);
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const request: Received = { path: req.url ?? '/', headers: req.headers, body, json, at: Date.now() };
      const index = received.length;
      received.push(request);
      const answer = receiver.respond(request, index, res);
      if (answer === 'hang') hanging.add(res);
      else if (answer !== 'handled') {
        const { status, headers, body: text } = typeof answer === 'number' ? { status: answer, headers: undefined, body: undefined } : answer;
        res.writeHead(status, headers).end(text ?? '');
      }
      for (const waiter of waiters.slice()) waiter();
    });
  });
  (receiver as { url: string }).url = await listen(server);
  return receiver;
}

/** Listens on a free port on 127.0.0.1; resolves to the server's origin. */
export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes a server without waiting for its clients: a kept-alive connection would hold close() up. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
