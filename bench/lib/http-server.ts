// The node:http reference: a minimal keep-alive server answering every request with a fixed 32-byte
// body (the size of the frame benchmark's echo bodies), driven by wrk. Nothing else: no routing, no
// parsing of the body. node:http answers pipelined requests in order, one at a time (RFC 9112 §9.3.2).
// Run as its own process: node --import tsx bench/lib/http-server.ts [--port 0] [--host 127.0.0.1]
import { createServer } from 'node:http';
import { listenArgs, serveAsProcess } from './procs.ts';

const BODY = Buffer.from('abcdefghijklmnopqrstuvwxyz012345'); // 32 bytes
const server = createServer({ keepAlive: true }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 60_000;
const { port, host } = listenArgs();
server.listen(port, host, () => serveAsProcess(server));
