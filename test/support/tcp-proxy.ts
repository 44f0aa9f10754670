/**
 * A TCP proxy on 127.0.0.1 in front of a server (PostgreSQL, Redis), for one client process: the
 * test can cut that process off from the server (a network partition on its side only) and restore
 * the link, while every other process keeps talking to the server directly.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  /** The port clients connect to instead of the server's. */
  readonly port: number;
  /** Drops every connection through the proxy and refuses new ones until `restore()`. */
  cut(): void;
  /** Lets connections through again. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let linked = true;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A reset from either side is how a cut shows; the peer socket is destroyed with it.
    socket.on('error', () => {});
  };
  const server = createServer((client) => {
    track(client);
    if (!linked) {
      client.destroy();
      return;
    }
    const upstream = createConnection(target);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      linked = false;
      destroyAll();
    },
    restore() {
      linked = true;
    },
    close() {
      destroyAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
