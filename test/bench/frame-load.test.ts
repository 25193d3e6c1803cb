// The load client of the benchmarks must be right before its figures mean anything: these check, at a
// tiny scale, that it counts every response, matches ids, and notices loss and wrong ids. Behaviour only,
// never speed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server, type Socket } from 'node:net';
import { runLoad } from '../../bench/lib/frame-load.ts';
import { startInlineServer } from '../../bench/lib/inline-server.ts';
import { freePort, startServer, stopServer } from '../../bench/lib/procs.ts';
import { decodeFrame, encodeFrame, FrameType, HEADER_SIZE } from '../../src/wire/frame.ts';
import { needTool, portOf } from '../_helpers.ts';

const test = suite('bench/frame-load');

let inline: Server;
test.before(async () => {
  inline = await startInlineServer(0);
});
test.after(() => new Promise<void>((resolve) => inline.close(() => resolve())));

const close = (server: Server, sockets: Set<Socket>): Promise<void> =>
  new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });

/** A frame echo server with a fault: `mangle` may rewrite or drop (null) each response. */
async function faultyServer(mangle: (id: number, n: number) => number | null): Promise<{ server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  let n = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= HEADER_SIZE && pending.length >= HEADER_SIZE + pending.readUInt32BE(8)) {
        const f = decodeFrame(pending);
        pending = pending.subarray(HEADER_SIZE + f.payload.length);
        const id = mangle(f.id, n++);
        if (id !== null) socket.write(Buffer.concat(encodeFrame(FrameType.RESPONSE, id, f.payload.subarray(5))));
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, sockets };
}

test('lockstep on one connection: every request answered, none lost', async () => {
  const r = await runLoad({ port: portOf(inline), connections: 1, depth: 1, maxRequests: 300, durationMs: 1500, verify: true });
  assert.is(r.sent, 300);
  assert.is(r.received, 300);
  assert.is(r.lost, 0);
  assert.is(r.errors, 0, r.errorSamples.join('; '));
  assert.is(r.writes, 300, 'lockstep sends one request per write');
});

test('pipelined on several connections: ids matched, bodies verified, writes batched', async () => {
  const r = await runLoad({ port: portOf(inline), connections: 4, depth: 50, maxRequests: 5000, durationMs: 1500, verify: true });
  assert.is(r.sent, 5000);
  assert.is(r.received, 5000);
  assert.is(r.lost, 0);
  assert.is(r.errors, 0, r.errorSamples.join('; '));
  assert.is(r.errorResponses, 0);
  assert.ok(r.writes < r.sent / 5, `${r.writes} writes for ${r.sent} requests: not batched`);
});

test('a timed run stops sending at the end of its window and drains what is in flight', async () => {
  const r = await runLoad({ port: portOf(inline), connections: 2, depth: 10, warmupMs: 50, durationMs: 200 });
  assert.ok(r.requests > 0);
  assert.ok(r.windowMs >= 190, `window of ${r.windowMs} ms`);
  assert.is(r.lost, 0);
  assert.is(r.received, r.sent);
  assert.is(r.errors, 0, r.errorSamples.join('; '));
});

test('a response with an id not in flight is counted as an error', async () => {
  const { server, sockets } = await faultyServer((id, n) => (n === 5 ? id + 1000 : id));
  try {
    const r = await runLoad({ port: portOf(server), connections: 1, depth: 4, maxRequests: 20, warmupMs: 0, durationMs: 100, drainTimeoutMs: 200 });
    assert.is(r.errors, 1);
    assert.match(r.errorSamples[0]!, /not in flight/);
    assert.is(r.lost, 1, 'the request whose answer carried the wrong id is never answered');
  } finally {
    await close(server, sockets);
  }
});

test('a dropped response is counted as lost', async () => {
  const { server, sockets } = await faultyServer((id, n) => (n === 7 ? null : id));
  try {
    const r = await runLoad({ port: portOf(server), connections: 1, depth: 4, maxRequests: 20, warmupMs: 0, durationMs: 100, drainTimeoutMs: 200 });
    assert.is(r.lost, 1);
    assert.is(r.received, r.sent - 1);
    assert.is(r.errors, 0);
  } finally {
    await close(server, sockets);
  }
});

test('RESP mode against redis-server counts every +PONG', async () => {
  if (!needTool('redis-server', 'calibration target of the load bench')) return;
  const port = await freePort();
  const redis = await startServer('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { ready: /Ready to accept connections/, port });
  try {
    const r = await runLoad({ port, protocol: 'resp', connections: 2, depth: 10, maxRequests: 1000, durationMs: 1500 });
    assert.is(r.sent, 1000);
    assert.is(r.received, 1000);
    assert.is(r.lost, 0);
    assert.is(r.errors, 0, r.errorSamples.join('; '));
  } finally {
    await stopServer(redis);
  }
});

test.run();
