/**
 * One run of bench/postgres-ab.ts in a process of its own: resthooks from the build at AB_ROOT (or the
 * floor, AB_ROOT=floor) on the empty database AB_URL, N=AB_N events to K=AB_K subscriptions. Prints the
 * run as one line of JSON.
 * @module
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { floorOnPostgres, resthooksOnPostgres, type ResthooksEntry } from './postgres-scenarios.js';
import { Receiver } from './receiver-process.js';

const env = (name: string) => process.env[name] ?? (() => { throw new Error(`${name} is not set`); })();
const url = env('AB_URL');
const root = env('AB_ROOT');
const [n, k, postmaster] = [Number(env('AB_N')), Number(env('AB_K')), Number(env('AB_POSTMASTER'))];

const rx = await Receiver.start();
try {
  const run =
    root === 'floor'
      ? await floorOnPostgres(rx, url, n, k, postmaster)
      : await resthooksOnPostgres(rx, url, n, k, postmaster, (await import(pathToFileURL(join(root, 'src/index.ts')).href)) as ResthooksEntry);
  console.log(JSON.stringify(run));
} finally {
  rx.close();
}
