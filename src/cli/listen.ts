/**
 * `resthooks listen`: a local receiver for development. Verifies each delivery's Standard Webhooks
 * signature (with `--secret`), prints it, and answers with a chosen status, so a developer can watch
 * deliveries arrive and try 410/5xx handling without writing a server.
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { CliError, integer, UsageError, usageErrors, type Command } from './command.js';
import { formatDelivery, formatIgnored, paletteFor, type Palette } from './format-delivery.js';
import { verifySignature } from './verify-signature.js';

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  readonly secrets: readonly string[];
  readonly status: number;
  /** Deliveries are accepted on this path and below it. */
  readonly path: string;
}

/** Bodies above this are refused with 413 (resthooks' own payload limit is far lower). */
const MAX_BODY_BYTES = 5 * 1024 * 1024;

const help = `Usage: resthooks listen [options]

A local webhook receiver: prints every delivery (time, event, webhook-id, attempt,
signature check, JSON body) and answers with --status.

Options:
  --port <n>        port to listen on; 0 picks a free one (default 4000)
  --host <address>  address to bind (default 127.0.0.1)
  --secret <whsec>  verify Standard Webhooks signatures with this secret (the
                    subscription's "secret"); repeat it to accept several
  --status <code>   HTTP status to answer every delivery with (default 200);
                    410 makes resthooks delete the subscription, 500 makes it retry
  --path <path>     accept deliveries on this path and below it (default /)
  -h, --help        show this help

Examples:
  resthooks listen --port 4000 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  resthooks listen --port 0 --status 410 --path /hooks
`;

function checkSecret(secret: string): string {
  const key = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length === 0) {
    throw new UsageError('--secret must be a Standard Webhooks secret: "whsec_" followed by base64 (the subscription\'s "secret" field).');
  }
  return secret;
}

/** The command line → options, validated. Pure; throws `UsageError`. */
export function parseListenOptions(args: string[]): ListenOptions {
  const { values } = usageErrors(() =>
    parseArgs({
      args,
      strict: true,
      options: {
        port: { type: 'string', default: '4000' },
        host: { type: 'string', default: '127.0.0.1' },
        secret: { type: 'string', multiple: true, default: [] },
        status: { type: 'string', default: '200' },
        path: { type: 'string', default: '/' },
      },
    }),
  );
  const path = values.path;
  if (!path.startsWith('/') || /[\s?#]/.test(path)) throw new UsageError(`--path must be a URL path starting with "/", got "${path}".`);
  if (values.host === '') throw new UsageError('--host must not be empty.');
  return {
    host: values.host,
    port: integer(values.port, 'port', 0, 65535),
    secrets: values.secret.map(checkSecret),
    // Node's http refuses statuses outside 100–999; 1xx is not a final answer.
    status: integer(values.status, 'status', 200, 599),
    path: path.length > 1 ? path.replace(/\/+$/, '') : path,
  };
}

/** Whether a request path (query string ignored) falls under `base`, on segment boundaries. */
export function pathMatches(base: string, requestPath: string): boolean {
  const path = requestPath.split('?')[0]!;
  if (base === '/') return true;
  return path === base || path.startsWith(base + '/');
}

/** Counts the attempts of each `webhook-id` seen by this process; forgets the oldest beyond `limit`. */
export class AttemptCounter {
  readonly #seen = new Map<string, number>();
  constructor(readonly limit = 10_000) {}
  next(id: string): number {
    const count = (this.#seen.get(id) ?? 0) + 1;
    this.#seen.delete(id);
    this.#seen.set(id, count);
    if (this.#seen.size > this.limit) this.#seen.delete(this.#seen.keys().next().value!);
    return count;
  }
}

function urlOf(address: AddressInfo, path: string): string {
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}${path}`;
}

function readBody(request: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, status: number, text: string): void {
  // 204 and 304 carry no body (RFC 9110 §15.3.5, §15.4.5).
  if (status === 204 || status === 304) response.writeHead(status).end();
  else response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}

export interface Listener {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the receiver; every line goes through `write`. */
async function startListener(options: ListenOptions, write: (text: string) => void, c: Palette): Promise<Listener> {
  const attempts = new AttemptCounter();
  const header = (request: IncomingMessage, name: string) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value.join(' ') : value;
  };
  const server = createServer(async (request, response) => {
    const receivedAt = new Date();
    const method = request.method ?? 'GET';
    const path = request.url ?? '/';
    if (!pathMatches(options.path, path) || method !== 'POST') {
      const status = method === 'POST' ? 404 : 405;
      request.resume();
      if (status === 405) response.setHeader('allow', 'POST');
      answer(response, status, status === 404 ? `Deliveries go to ${options.path}\n` : 'POST webhook deliveries here.\n');
      write(formatIgnored(receivedAt, method, path, status, c));
      return;
    }
    try {
      const body = await readBody(request);
      if (body === undefined) {
        answer(response, 413, `Body larger than ${MAX_BODY_BYTES} bytes.\n`);
        write(formatIgnored(receivedAt, method, path, 413, c));
        return;
      }
      const webhookId = header(request, 'webhook-id');
      const signature =
        options.secrets.length === 0
          ? ('unchecked' as const)
          : verifySignature(
              { id: webhookId, timestamp: header(request, 'webhook-timestamp'), signature: header(request, 'webhook-signature'), body },
              options.secrets,
              receivedAt.getTime() / 1000,
            );
      const attempt = webhookId === undefined ? undefined : attempts.next(webhookId);
      answer(response, options.status, options.status < 300 ? 'ok\n' : `resthooks listen answers ${options.status}\n`);
      write(formatDelivery({ receivedAt, method, path, webhookId, attempt, body, signature, status: options.status }, c));
    } catch {
      // The client went away mid-body; nothing to print or answer.
      response.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new CliError(`Port ${options.port} on ${options.host} is already in use: pick another with --port (0 = any free port).`)
          : error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND'
            ? new CliError(`Cannot listen on ${options.host}: not an address of this machine (--host).`)
            : error,
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    url: urlOf(server.address() as AddressInfo, options.path),
    close: () =>
      new Promise<void>((resolve) => {
        // Senders keep connections alive (undici pools); close them so close() does not wait for their timeout.
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export const listen: Command = {
  name: 'listen',
  summary: 'a local receiver that verifies and pretty-prints deliveries',
  help,
  async run(args) {
    const options = parseListenOptions(args);
    const c = paletteFor(process.stdout.isTTY, process.env);
    const write = (text: string) => void process.stdout.write(text);
    // Handlers first: whoever reads the URL below may signal at once, and with no handler yet the
    // default action would kill the process without closing.
    const stopped = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    const listener = await startListener(options, write, c);
    const verifying =
      options.secrets.length > 0
        ? `Verifying Standard Webhooks signatures with ${options.secrets.length} secret${options.secrets.length > 1 ? 's' : ''}`
        : 'Not verifying signatures (pass --secret whsec_…)';
    write(`${c.bold('resthooks listen')}  Listening on ${c.cyan(listener.url)}\n${c.dim(`${verifying}; answering ${options.status}. Ctrl-C to stop.`)}\n`);
    const signal = await stopped;
    // A second Ctrl-C while closing exits at once.
    process.once('SIGINT', () => process.exit(130));
    await listener.close();
    write(c.dim(`Stopped (${signal}).\n`));
    return 0;
  },
};
