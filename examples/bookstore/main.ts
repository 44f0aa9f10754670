/**
 * `npm start`: the bookstore demo on 127.0.0.1:${PORT:-3000}, then a short tour.
 * Ctrl-C drains in-flight deliveries and exits.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from 'resthooks/node';
import { createBookstore } from './bookstore.js';
import { readConfig } from './config.js';
import { runTour } from './tour.js';

const config = readConfig();
const bookstore = await createBookstore(config);
const server = createServer(toNodeHandler(bookstore.app));
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, config.host, resolve);
});
const url = `http://${config.host}:${(server.address() as AddressInfo).port}`;
const { alice, bob } = bookstore.keys;

console.log(`resthooks bookstore demo — ${url}
  database:   ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : config.db}
  delivery:   ${config.redisUrl ? `BullMQ on REDIS_URL${config.embeddedWorker ? ', with a worker in this process' : ' (run `resthooks worker`)'}` : 'in this process'}
  admin page: ${url}/admin   (user admin, password ${bookstore.adminKey})
  API:        ${url}/api   (OpenAPI: ${url}/api/openapi.json)
  operations: ${url}/healthz, ${url}/readyz, ${url}/metrics
  secrets:    ${config.plaintextSecrets ? 'stored unencrypted (set RESTHOOKS_SECRET_KEYS to encrypt them)' : 'encrypted at rest (RESTHOOKS_SECRET_KEYS)'}
  users:      alice  ${alice}
              bob    ${bob}
`);
if (config.allowPrivateTargets) {
  console.warn('⚠ Private and loopback targets are ALLOWED (RESTHOOKS_ALLOW_PRIVATE_TARGETS=1, the demo default) so local receivers work.\n  Production keeps the library default: refused. Set RESTHOOKS_ALLOW_PRIVATE_TARGETS=0 to see it.\n');
}
console.log(`Try it:
  npx resthooks listen --port 4000
  curl -s -X POST ${url}/api/hooks -H 'authorization: Bearer ${alice}' -H 'content-type: application/json' \\
       -d '{"event":"book.added","target":"http://127.0.0.1:4000/"}'
  curl -s -X POST ${url}/api/books -H 'authorization: Bearer ${alice}' -H 'content-type: application/json' \\
       -d '{"title":"Dune","pages":412,"fiction":true}'
  curl -s ${url}/api/hooks -H 'authorization: Bearer ${alice}'
`);

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  console.log(`\n${signal}: finishing in-flight deliveries…`);
  server.close();
  server.closeAllConnections();
  await bookstore.close();
  console.log('Bye.');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

if (config.tour) {
  await runTour(url, alice, (line) => console.log(line)).catch((error) => console.error('Tour failed:', error instanceof Error ? error.message : error));
  console.log(`\nThe demo keeps serving at ${url} (Ctrl-C to stop; --no-tour skips the tour).`);
}
