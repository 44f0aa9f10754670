// The bench's webhook receiver, run as a child process (plain node, no TypeScript loader) so it has
// its own core: answers every POST with 200 on a keep-alive connection and counts requests.
//
// IPC protocol with the parent (bench/run.ts):
//   child → parent  { type: 'listening', port }
//   parent → child  { type: 'expect', id, count }   reset the counter, report when `count` arrive
//   child → parent  { type: 'reached', id, count, at, bytes, cpuUs }   `at` = performance.timeOrigin + now(),
//                   `cpuUs` = this process's CPU time (user + system) since the `expect`
//   GET /count      → { count, bytes }   (the same counter, over HTTP, for manual checks)
import { createServer } from 'node:http';

let count = 0;
let bytes = 0;
let expectation = null; // { id, count, cpu }

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ count, bytes }));
    return;
  }
  let size = 0;
  req.on('data', (chunk) => (size += chunk.length));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
    count++;
    bytes += size;
    if (expectation && count === expectation.count) {
      const at = performance.timeOrigin + performance.now();
      const cpu = process.cpuUsage(expectation.cpu);
      process.send({ type: 'reached', id: expectation.id, count, bytes, at, cpuUs: cpu.user + cpu.system });
      expectation = null;
    }
  });
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.requestTimeout = 0;

process.on('message', (message) => {
  if (message?.type === 'expect') {
    count = 0;
    bytes = 0;
    expectation = { id: message.id, count: message.count, cpu: process.cpuUsage() };
  } else if (message?.type === 'exit') {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  }
});
// The parent died without telling us: do not linger.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));
