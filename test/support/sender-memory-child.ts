/**
 * Run by test/sender-memory.test.ts as `node --expose-gc --import tsx …`: sends one attempt to each of
 * `count` distinct receiver origins (host names that the test resolver pins to 127.0.0.1, one server),
 * and prints the heap after a full GC: at the start, with every origin's connection open, and once the
 * receiver has closed the idle connections. Prints one JSON line.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sender } from '../../src/delivery/sender.js';
import { guardedConnector } from '../../src/delivery/ssrf.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const count = Number(process.argv[2] ?? 2000);
const IN_FLIGHT = 32;

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => response.writeHead(204).end());
});
// The receiver closes idle keep-alive connections quickly, as many do; the sender then has none left to an origin.
server.keepAliveTimeout = 200;
let open = 0;
server.on('connection', (socket) => {
  open++;
  socket.on('close', () => open--);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
const sender = new Sender({
  connect: guardedConnector({ allowPrivateTargets: true }, async () => [{ address: '127.0.0.1', family: 4 }]),
});
const sendTo = async (i: number) => {
  const result = await sender.send({ url: `http://receiver-${i}.test:${port}/hook`, headers: {}, body: '{"n":1}', timeoutMs: 10_000 });
  if (result.statusCode !== 204) throw new Error(`receiver-${i}: ${JSON.stringify(result)}`);
};
const idle = async () => {
  while (open > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise((resolve) => setTimeout(resolve, 100));
};

// Warm up the code paths with a few origins, so the baseline holds the compiled code and module state.
for (let i = 0; i < 50; i++) await sendTo(count + i);
await idle();
const start = await heapAfterGc();
let next = 0;
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < count) await sendTo(next++);
  }),
);
const busy = await heapAfterGc();
await idle();
const end = await heapAfterGc();
await sender.close();
server.close();
console.log(JSON.stringify({ count, start, busy, end }));
