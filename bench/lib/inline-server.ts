// The ceiling for Node: a frame-protocol echo server hand-inlined into one buffer loop per 'data' event,
// with no classes, no promises and no per-frame objects. It answers `echo` (RESPONSE = body), PING
// (PONG), and anything else with ERROR 4; a protocol error gets ERROR id 0 and a close (issue 2 spec).
// Every response a chunk completes goes out in ONE write: the fewest syscalls Node can manage.
// Run as its own process: node --import tsx bench/lib/inline-server.ts [--port 0] [--host 127.0.0.1]
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { listenArgs, serveAsProcess } from './procs.ts';

const HEADER = 12;
const MAX_PAYLOAD = 1024 * 1024; // the protocol's default maxPayload
const T_REQUEST = 1;
const T_RESPONSE = 2;
const T_ERROR = 3;
const T_PING = 5;
const T_PONG = 6;
// 'e' 'c' 'h' 'o'
const E = 0x65, C = 0x63, H = 0x68, O = 0x6f;

function writeHeader(out: Buffer, at: number, type: number, id: number, length: number): void {
  out[at] = 1;
  out[at + 1] = type;
  out[at + 2] = 0;
  out[at + 3] = 0;
  out.writeUInt32BE(id, at + 4);
  out.writeUInt32BE(length, at + 8);
}

function protocolError(socket: Socket, code: number): void {
  const out = Buffer.allocUnsafe(HEADER + 2);
  writeHeader(out, 0, T_ERROR, 0, 2);
  out.writeUInt16BE(code, HEADER);
  socket.end(out);
}

function onConnection(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer | null = null; // bytes of a frame that spans chunks
  let failed = false; // after a protocol error: never resynchronise, read nothing more
  socket.on('data', (chunk: Buffer) => {
    if (failed) return;
    let buf = chunk;
    if (pending !== null) {
      buf = Buffer.concat([pending, chunk]);
      pending = null;
    }
    // A response is at most 2 bytes longer than its request (ERROR 4, 14 bytes, to an empty 12-byte
    // REQUEST); echo responses are 5 bytes shorter. So this bound always holds every response.
    const out = Buffer.allocUnsafe(buf.length + Math.ceil(buf.length / HEADER) * 2);
    let o = 0;
    let off = 0;
    const end = buf.length;
    while (end - off >= HEADER) {
      const type = buf[off + 1]!;
      const length = buf.readUInt32BE(off + 8);
      const bad = buf[off] !== 1 ? 1 : type < 1 || type > 7 ? 2 : length > MAX_PAYLOAD ? 3 : 0;
      if (bad !== 0) {
        failed = true;
        if (o > 0) socket.write(out.subarray(0, o));
        return protocolError(socket, bad);
      }
      if (end - off - HEADER < length) break;
      const id = buf.readUInt32BE(off + 4);
      const p = off + HEADER;
      if (type === T_REQUEST) {
        if (length >= 4 && buf[p] === E && buf[p + 1] === C && buf[p + 2] === H && buf[p + 3] === O && (length === 4 || buf[p + 4] === 0x20)) {
          const bodyStart = length === 4 ? p + 4 : p + 5;
          const bodyLength = p + length - bodyStart;
          writeHeader(out, o, T_RESPONSE, id, bodyLength);
          buf.copy(out, o + HEADER, bodyStart, bodyStart + bodyLength);
          o += HEADER + bodyLength;
        } else {
          writeHeader(out, o, T_ERROR, id, 2);
          out.writeUInt16BE(4, o + HEADER);
          o += HEADER + 2;
        }
      } else if (type === T_PING) {
        writeHeader(out, o, T_PONG, id, length);
        buf.copy(out, o + HEADER, p, p + length);
        o += HEADER + length;
      }
      // Anything else (CANCEL: echo never waits; RESPONSE/ERROR/PUSH/PONG from a client) needs no answer.
      off = p + length;
    }
    if (off < end) pending = Buffer.from(buf.subarray(off)); // copy: a view would pin the whole chunk
    if (o > 0) socket.write(out.subarray(0, o));
  });
  socket.on('error', () => socket.destroy());
}

/** Starts the inline server in this process (the tests use this; the bench runs it as a process). */
export function startInlineServer(port = 0, host = '127.0.0.1'): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true }, onConnection);
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { port, host } = listenArgs();
  serveAsProcess(await startInlineServer(port, host));
}
