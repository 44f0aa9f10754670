/**
 * The HTTP server of `resthooks worker --port`: `/healthz`, `/readyz` and `/metrics` for
 * orchestrators and Prometheus. Bodiless GETs only, so a plain node:http conversion suffices.
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startHealthServer(handle: (request: Request) => Promise<Response | undefined>, port: number, host: string): Promise<{ readonly url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const request = new Request(new URL(req.url ?? '/', 'http://worker'), { method: req.method ?? 'GET' });
    handle(request)
      .then(async (response) => {
        const answer = response ?? new Response('Not found: try /healthz, /readyz or /metrics.\n', { status: 404 });
        res.writeHead(answer.status, Object.fromEntries(answer.headers));
        res.end(req.method === 'HEAD' ? undefined : Buffer.from(await answer.arrayBuffer()));
      })
      .catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${error instanceof Error ? error.message : String(error)}\n`);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
