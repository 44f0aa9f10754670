/**
 * The benches' webhook receiver (`receiver.mjs`) as a child process with its own core, and the
 * driver that keeps a fixed number of requests in flight.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** When the receiver counted the last request (its clock), and the CPU time it spent since the expectation. */
export interface Reached {
  readonly at: number;
  readonly cpuUs: number;
}

/** What one end-to-end run against the receiver measured. */
export interface RunResult {
  readonly deliveries: number;
  /** From the first trigger (or request) to the receiver's receipt of the last delivery. */
  readonly ms: number;
  /** How long the trigger loop took, for runs that have one. */
  readonly triggerMs?: number;
  /** CPU time (user + system) of this process and of the receiver, per delivery, over the run. */
  readonly cpuUs: { readonly client: number; readonly receiver: number };
}

/** CPU per delivery since `clientStart` (this process) and as the receiver reported it. */
export function cpuPerDelivery(clientStart: NodeJS.CpuUsage, reached: Reached, deliveries: number): RunResult['cpuUs'] {
  const client = process.cpuUsage(clientStart);
  return { client: (client.user + client.system) / deliveries, receiver: reached.cpuUs / deliveries };
}

export class Receiver {
  #nextId = 0;
  readonly #waiting = new Map<number, (reached: Reached) => void>();
  private constructor(readonly child: ChildProcess, readonly port: number) {
    child.on('message', (m: { type: string; id: number } & Reached) => {
      if (m.type === 'reached') {
        this.#waiting.get(m.id)?.({ at: m.at, cpuUs: m.cpuUs });
        this.#waiting.delete(m.id);
      }
    });
  }

  static start(): Promise<Receiver> {
    const child = fork(join(HERE, 'receiver.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`receiver exited early (${code})`)));
      child.once('message', (m: { type: string; port: number }) => {
        if (m.type === 'listening') resolve(new Receiver(child, m.port));
      });
    });
  }

  /** Resets the receiver's counter; resolves with the receiver's clock and CPU time when `count` requests have arrived. */
  async expect(count: number, timeoutMs: number): Promise<() => Promise<Reached>> {
    const id = ++this.#nextId;
    const reached = new Promise<Reached>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receiver got fewer than ${count} requests in ${timeoutMs} ms`)), timeoutMs);
      this.#waiting.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
    reached.catch(() => undefined);
    await new Promise<void>((resolve, reject) => this.child.send({ type: 'expect', id, count }, (e) => (e ? reject(e) : resolve())));
    return () => reached;
  }

  close(): void {
    if (this.child.connected) this.child.send({ type: 'exit' });
    setTimeout(() => this.child.kill('SIGKILL'), 1_000).unref();
  }
}

/** Runs `one` `total` times, `inFlight` at a time. */
export async function drive(inFlight: number, total: number, one: () => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}
