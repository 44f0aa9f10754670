// The latency scenario's receiver, run as a child process (plain node) so it has its own core: answers
// every POST with 200 on a keep-alive connection and stamps when each request's body ended, with the
// book id the body carries (`"data":{"id":N`), on a clock comparable across processes.
//
// IPC: child → parent { type: 'listening', port }; parent → child { type: 'collect' } → child → parent
// { type: 'stamps', ids: number[], at: number[] } (and the stamps are cleared); { type: 'exit' }.
import { createServer } from 'node:http';

const BOOK_ID = /"data":\{"id":(\d+)/;
let ids = [];
let at = [];

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const arrived = performance.timeOrigin + performance.now();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
    const match = BOOK_ID.exec(Buffer.concat(chunks).toString('latin1'));
    ids.push(match ? Number(match[1]) : -1);
    at.push(arrived);
  });
});
server.keepAliveTimeout = 60_000;

process.on('message', (message) => {
  if (message?.type === 'collect') {
    process.send({ type: 'stamps', ids, at });
    ids = [];
    at = [];
  } else if (message?.type === 'exit') {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));
