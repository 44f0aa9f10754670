/**
 * The latency scenario's own process (bench/latency.ts): a full `npm run bench` has loaded every ORM and
 * run the throughput scenarios by the time it measures latency, and that heap's major GCs are not the
 * tail of an app that runs resthooks. Here the scenario runs in a fresh process, as an app would, and
 * hands its result back over IPC; its log lines go to the parent's output.
 *
 *   node --import tsx bench/latency-child.ts <dir> <body length> <events per second> <seconds>
 *
 * → { type: 'result', result: LatencyResult } | { type: 'failed', message }
 */
import { measureLatency } from './latency.js';
import type { Receiver } from './receiver-process.js';

const [dir, bodyLength, perSecond, seconds] = process.argv.slice(2);
if (!dir || !bodyLength || !perSecond || !seconds || !process.send) {
  throw new Error('usage: node --import tsx bench/latency-child.ts <dir> <body length> <per second> <seconds> (spawned with an IPC channel)');
}
const send = (message: object) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

try {
  // The latency scenario has its own receiver (a stamping one); the shared one is not used.
  const context = { rx: undefined as unknown as Receiver, dir, bodyLength: Number(bodyLength), log: (line: string) => console.log(line) };
  const result = await measureLatency(context, { perSecond: Number(perSecond), seconds: Number(seconds) });
  await send({ type: 'result', result });
} catch (error) {
  await send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
}
process.disconnect();
