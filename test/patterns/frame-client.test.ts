import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server, type Socket } from 'node:net';
import { FrameClient } from '../../src/patterns/frame-client.ts';
import { FrameDecoder, FrameType, encodeFrame, errorPayload, type Frame } from '../../src/wire/frame.ts';
import { portOf, rejects, waitFor } from '../_helpers.ts';

const test = suite('patterns/frame-client');

const sockets = new Set<Socket>();

/** A scripted server: hands each decoded frame to `on` with a way to reply. */
async function scripted(on: (f: Frame, socket: Socket) => void): Promise<Server> {
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const d = new FrameDecoder();
    socket.on('data', (c: Buffer) => d.push(c).forEach((f) => on(f, socket)));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function stop(server: Server): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((r) => server.close(() => r()));
}

test('ids are unique among pending requests and never 0', async () => {
  const ids: number[] = [];
  const server = await scripted((f, s) => {
    ids.push(f.id);
    if (ids.length === 3) for (const id of ids) s.write(Buffer.concat(encodeFrame(FrameType.RESPONSE, id, Buffer.from('ok'))));
  });
  const c = await FrameClient.connect({ port: portOf(server) });
  await Promise.all([c.request('a'), c.request('b'), c.request('c')]);
  assert.is(new Set(ids).size, 3);
  assert.not.ok(ids.includes(0));
  await c.close();
  await stop(server);
});

test('a protocol error from the server (ERROR id 0) rejects every pending request', async () => {
  const server = await scripted((_f, s) => s.write(Buffer.concat(encodeFrame(FrameType.ERROR, 0, errorPayload(1, 'bad version')))));
  const c = await FrameClient.connect({ port: portOf(server) });
  const err = await rejects(c.request('echo', 'x'), 'ERR_CONNECTION_CLOSED');
  assert.is(((err as Error).cause as { remoteCode?: number }).remoteCode, 1);
  await c.close();
  await stop(server);
});

test('garbage from the server fails the client with the decoder code and closes it', async () => {
  const server = await scripted((_f, s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
  const c = await FrameClient.connect({ port: portOf(server) });
  await rejects(c.request('echo', 'x'), 'ERR_BAD_VERSION');
  await waitFor(() => c.socket.destroyed);
  await stop(server);
});

test('a response for an unknown id is counted as stray, not delivered', async () => {
  const server = await scripted((f, s) => {
    s.write(Buffer.concat(encodeFrame(FrameType.RESPONSE, f.id + 1000, Buffer.from('not yours'))));
    s.write(Buffer.concat(encodeFrame(FrameType.RESPONSE, f.id, Buffer.from('yours'))));
  });
  const c = await FrameClient.connect({ port: portOf(server) });
  assert.is((await c.request('echo')).toString(), 'yours');
  assert.is(c.stats.stray, 1);
  await c.close();
  await stop(server);
});

test('maxPending refuses more with ERR_TOO_MANY_PENDING; an aborted signal refuses at once', async () => {
  const server = await scripted(() => {});
  const c = await FrameClient.connect({ port: portOf(server), maxPending: 2, timeoutMs: 10_000 });
  const a = c.request('x');
  const b = c.request('y');
  await rejects(c.request('z'), 'ERR_TOO_MANY_PENDING');
  await rejects(c.request('z', '', { signal: AbortSignal.abort() }), 'ERR_ABORTED');
  await c.close();
  await rejects(a, 'ERR_CONNECTION_CLOSED');
  await rejects(b, 'ERR_CONNECTION_CLOSED');
  await stop(server);
});

test('a timed-out id is not reused while its cancel is unanswered', async () => {
  const seen: Frame[] = [];
  const server = await scripted((f) => seen.push(f));
  const c = await FrameClient.connect({ port: portOf(server) });
  await rejects(c.request('sleep', '1', { timeoutMs: 10 }), 'ERR_TIMEOUT');
  const first = seen[0]!.id;
  (c as unknown as { nextId: number }).nextId = first; // force the counter back onto the cancelled id
  void c.request('echo', '', { timeoutMs: 10_000 }).catch(() => {});
  await waitFor(() => seen.length === 3);
  assert.is(seen[1]!.type, FrameType.CANCEL);
  assert.is(seen[1]!.id, first);
  assert.is.not(seen[2]!.id, first);
  await c.close();
  await stop(server);
});

test('connect to a closed port rejects with ECONNREFUSED', async () => {
  const server = await scripted(() => {});
  const port = portOf(server);
  await stop(server);
  await rejects(FrameClient.connect({ port }), 'ECONNREFUSED');
});

test.run();
