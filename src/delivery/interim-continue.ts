/**
 * RFC 9110 §15.2: a client must parse any number of 1xx responses before the final one, even when it
 * did not ask for them. undici's HTTP/1.1 client passes other 1xx on, but drops the connection on a
 * `100 Continue` it did not ask for ("bad response"), so a receiver whose server sends one before its
 * 200 would be recorded as failing. This connector wrapper removes interim `100` responses from the
 * start of each response before undici's parser reads the socket.
 * @module
 */
import type { Duplex } from 'node:stream';
import type { buildConnector } from 'undici';

/** Bytes held while deciding whether a response starts with an interim `100`; beyond it, undici judges it. */
const MAX_INTERIM_BYTES = 16 * 1024;
const NOT_INTERIM = -1;
const UNDECIDED = 0;
// "HTTP/1.x 100" and the byte after it: the shortest prefix that tells a 100 from any other status line.
const STATUS_PREFIX = 'HTTP/1.';
const STATUS_100_LENGTH = 13;

/** Wraps an undici connector so that every socket it makes skips unsolicited interim `100` responses. */
export function skippingInterimContinue(connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connect(options, (...args) => {
      if (args[1]) skipInterimContinue(args[1]);
      callback(...args);
    });
}

/**
 * undici writes a request (synchronously: headers and a string body) and then reads its response with
 * `socket.read()`, one request at a time per connection. So the first bytes read after a write are a
 * status line: only there is an interim `100` looked for and removed.
 */
export function skipInterimContinue(socket: Duplex): void {
  const read = socket.read;
  const write = socket.write;
  let awaitingStatus = false;
  let held: Buffer | null = null;
  socket.write = function (this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
    awaitingStatus = true;
    return write.apply(this, args);
  } as Duplex['write'];
  socket.read = function (this: Duplex, size?: number): unknown {
    for (;;) {
      const chunk = read.call(this, size) as Buffer | null;
      if (!awaitingStatus || chunk === null) return chunk;
      let bytes = held ? Buffer.concat([held, chunk]) : chunk;
      held = null;
      for (;;) {
        const end = interimContinueEnd(bytes);
        if (end === NOT_INTERIM || (end === UNDECIDED && bytes.length > MAX_INTERIM_BYTES)) {
          awaitingStatus = false;
          return bytes;
        }
        if (end === UNDECIDED) {
          held = bytes;
          break;
        }
        bytes = bytes.subarray(end);
        if (bytes.length === 0) break;
      }
    }
  };
}

/**
 * Pure: where an interim `100` response at the start of `bytes` ends (after its blank line),
 * `NOT_INTERIM` (-1) when `bytes` start otherwise, `UNDECIDED` (0) when more bytes are needed to tell.
 */
export function interimContinueEnd(bytes: Uint8Array): number {
  const known = Math.min(bytes.length, STATUS_100_LENGTH);
  for (let i = 0; i < known; i++) {
    if (!statusByteFits(i, bytes[i]!)) return NOT_INTERIM;
  }
  if (bytes.length < STATUS_100_LENGTH) return UNDECIDED;
  for (let i = STATUS_100_LENGTH - 1; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i + 4;
  }
  return UNDECIDED;
}

function statusByteFits(index: number, byte: number): boolean {
  if (index < STATUS_PREFIX.length) return byte === STATUS_PREFIX.charCodeAt(index);
  switch (index) {
    case 7:
      return byte === 0x30 || byte === 0x31; // HTTP/1.0 or HTTP/1.1
    case 8:
      return byte === 0x20;
    case 9:
      return byte === 0x31;
    case 10:
    case 11:
      return byte === 0x30;
    default:
      return byte === 0x20 || byte === 0x0d; // "100 Continue" or a bare "100"
  }
}
