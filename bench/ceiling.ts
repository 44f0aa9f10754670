/**
 * The ceiling: a bare undici Pool with a fixed number of requests in flight, POSTing a body of the given
 * size with the same headers (precomputed, signed once) to the bench receiver. Nothing durable, no
 * per-request work: the fastest this machine can deliver the same bytes.
 * @module
 */
import { Pool } from 'undici';
import { generateSecret, signatureHeaders } from '../src/index.js';
import { cpuPerDelivery, drive, type Receiver, type RunResult } from './receiver-process.js';
import { book, CONCURRENCY, now } from './scenario.js';

/** A body of `bodyLength` bytes shaped like resthooks' envelope, and headers as resthooks sends them. */
export function ceilingRequest(port: number, bodyLength: number): { body: string; headers: Record<string, string> } {
  const hook = { id: 'sub_0000000000000000000000000a', event: 'book.added', target: `http://127.0.0.1:${port}/hook/0` };
  const body = `{"hook":${JSON.stringify(hook)},"data":${JSON.stringify(book(0))}}`.padEnd(bodyLength, ' ');
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'resthooks',
    ...signatureHeaders('dlv_0000000000000000000000000a', Math.floor(Date.now() / 1000), body, [generateSecret()]),
  };
  return { body, headers };
}

/** `total` POSTs, CONCURRENCY in flight, timed from the first request to the receiver's receipt of the last. */
export async function ceilingEndToEnd(rx: Receiver, total: number, bodyLength: number): Promise<RunResult> {
  const pool = new Pool(`http://127.0.0.1:${rx.port}`, { connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  const { body, headers } = ceilingRequest(rx.port, bodyLength);
  const reached = await rx.expect(total, 120_000);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await drive(CONCURRENCY, total, async () => {
    const response = await pool.request({ method: 'POST', path: '/hook/0', headers, body });
    await response.body.text();
    if (response.statusCode !== 200) throw new Error(`ceiling: HTTP ${response.statusCode}`);
  });
  const end = await reached();
  const cpuUs = cpuPerDelivery(cpu0, end, total);
  await pool.close();
  return { deliveries: total, ms: end.at - t0, cpuUs };
}
