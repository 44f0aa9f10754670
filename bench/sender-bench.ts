/**
 * `npx tsx bench/sender-bench.ts [N] [rounds]`: CPU µs per HTTP request of the client process
 * (`process.cpuUsage`, user + system, GC included) for N requests with 64 in flight to a local
 * keep-alive receiver in a child process (`bench/receiver.mjs`, as `npm run bench` uses), for:
 *
 * - bare: `pool.request()` + `body.dump()`, headers precomputed (the usual floor);
 * - bare dispatch: `pool.dispatch()` with a handler that only resolves on the end (undici's own cost);
 * - Sender: `src/delivery/sender.ts` (on `pool.dispatch` since 9c33f97; the `pool.request` +
 *   AbortController version before it measured ~48 µs against ~25 µs for bare here).
 *
 * Each round runs every variant once, in a rotating order, each on its own fresh pool after a
 * warm-up; the median and the best of the rounds are printed. Timings are reported, never asserted.
 */
import { Pool } from 'undici';
import { Sender, type SendRequest } from '../src/delivery/sender.js';
import { drive, Receiver } from './receiver-process.js';

const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const WARMUP = 3_000;
const IN_FLIGHT = 64;

// ── the run ───────────────────────────────────────────────────────────────────────────────────

interface Variant {
  readonly name: string;
  /** Returns the status code; `close` ends the variant's pool(s). */
  readonly make: (origin: string) => { one: () => Promise<number>; close: () => Promise<void> };
}

const body = JSON.stringify({
  hook: { id: 'sub_0000000000000000000000000a', event: 'book.added', target: 'http://127.0.0.1/hook/0' },
  data: { id: 1, title: 'The Fellowship of the Ring', author: 'J. R. R. Tolkien', isbn: '978-0-261-10235-4', pages: 423, ownerId: 'alice', createdAt: '2023-11-14T22:13:20.001Z' },
});
// The shape of the signed attempt headers (Standard Webhooks).
const signed = {
  'webhook-id': 'dlv_0000000000000000000000000a',
  'webhook-timestamp': '1700000000',
  'webhook-signature': 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
};
const shutdown = new AbortController(); // like the queue's: one signal shared by every attempt

function senderVariant(name: string, create: () => Pick<Sender, 'send' | 'close'>): Variant {
  return {
    name,
    make: (origin) => {
      const sender = create();
      const request: SendRequest = { url: `${origin}/hook/0`, headers: signed, body, timeoutMs: 15_000, signal: shutdown.signal };
      return {
        one: async () => {
          const result = await sender.send(request);
          if (result.statusCode !== 200) throw new Error(`${name}: ${JSON.stringify(result)}`);
          return result.statusCode;
        },
        close: () => sender.close(),
      };
    },
  };
}

const VARIANTS: Variant[] = [
  {
    name: 'bare pool.request + body.dump()',
    make: (origin) => {
      const pool = new Pool(origin, { connections: IN_FLIGHT, keepAliveTimeout: 10_000 });
      const headers = { 'content-type': 'application/json', 'user-agent': 'resthooks', ...signed };
      return {
        one: async () => {
          const response = await pool.request({ method: 'POST', path: '/hook/0', headers, body });
          await response.body.dump();
          return response.statusCode;
        },
        close: () => pool.close(),
      };
    },
  },
  {
    name: 'bare pool.dispatch, minimal handler',
    make: (origin) => {
      const pool = new Pool(origin, { connections: IN_FLIGHT, keepAliveTimeout: 10_000 });
      const headers = { 'content-type': 'application/json', 'user-agent': 'resthooks', ...signed };
      const options = { method: 'POST' as const, path: '/hook/0', headers, body };
      return {
        one: () =>
          new Promise<number>((resolve, reject) => {
            let status = 0;
            pool.dispatch(options, {
              onRequestStart: () => {}, // how undici tells a new-style handler from a legacy one
              onResponseStart: (_c, statusCode) => void (status = statusCode),
              onResponseEnd: () => resolve(status),
              onResponseError: (_c, error) => reject(error),
            });
          }),
        close: () => pool.close(),
      };
    },
  },
  senderVariant('Sender (dispatch handler)', () => new Sender({ connectionsPerOrigin: IN_FLIGHT })),
];

async function measure(variant: Variant, origin: string): Promise<{ cpuUs: number; perSecond: number }> {
  const { one, close } = variant.make(origin);
  await drive(IN_FLIGHT, WARMUP, one);
  globalThis.gc?.();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await drive(IN_FLIGHT, N, one);
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  await close();
  return { cpuUs: (used.user + used.system) / N, perSecond: (N / ms) * 1000 };
}

async function main(): Promise<void> {
  const receiver = await Receiver.start();
  try {
    const origin = `http://127.0.0.1:${receiver.port}`;
    console.log(`N=${N} requests per run, ${IN_FLIGHT} in flight, ${ROUNDS} rounds, receiver pid ${receiver.child.pid}, Node ${process.version}`);
    const results = new Map<string, Array<{ cpuUs: number; perSecond: number }>>(VARIANTS.map((v) => [v.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const variant of order) {
        const r = await measure(variant, origin);
        results.get(variant.name)!.push(r);
        console.log(`  round ${round + 1} ${variant.name.padEnd(40)} ${r.cpuUs.toFixed(1).padStart(6)} µs CPU/request  ${Math.round(r.perSecond).toLocaleString('en-US').padStart(7)} /s`);
      }
    }
    console.log('\n| variant | CPU µs / request (median) | (best) | requests/s (median) |');
    console.log('|---|---:|---:|---:|');
    for (const [name, runs] of results) {
      const cpu = runs.map((r) => r.cpuUs).sort((a, b) => a - b);
      const rate = runs.map((r) => r.perSecond).sort((a, b) => a - b);
      const mid = Math.floor(runs.length / 2);
      console.log(`| ${name} | ${cpu[mid]!.toFixed(1)} | ${cpu[0]!.toFixed(1)} | ${Math.round(rate[mid]!).toLocaleString('en-US')} |`);
    }
  } finally {
    receiver.close();
  }
}

await main();
