import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameServer } from '../../src/patterns/frame-server.ts';
import { FrameClient } from '../../src/patterns/frame-client.ts';
import { FrameType, WireError, encodeFrame, encodeHeader, parseError, requestPayload } from '../../src/wire/frame.ts';
import { rawPeer } from './_frame-raw.ts';
import { rejects, waitFor } from '../_helpers.ts';

const test = suite('patterns/frame-server');
let server: FrameServer;
let port: number;
const open: { close(): unknown }[] = [];

test.before.each(async () => {
  server = new FrameServer({ idleTimeoutMs: 5000 });
  port = (await server.listen(0)).port;
});
test.after.each(async () => {
  for (const c of open.splice(0)) await c.close();
  await server.close();
});

async function client(): Promise<FrameClient> {
  const c = await FrameClient.connect({ port });
  open.push(c);
  return c;
}

function request(id: number, method: string, body = ''): Buffer {
  return Buffer.concat(encodeFrame(FrameType.REQUEST, id, requestPayload(method, body)));
}

test('echo answers with the body', async () => {
  const c = await client();
  assert.is((await c.request('echo', 'hello')).toString(), 'hello');
  assert.is((await c.request('echo')).toString(), '');
});

test('1,000 pipelined requests are answered with the right ids', async () => {
  const c = await client();
  const bodies = Array.from({ length: 1000 }, (_, i) => `request number ${i}`);
  const answers = await Promise.all(bodies.map((b) => c.request('echo', b)));
  answers.forEach((a, i) => assert.is(a.toString(), bodies[i]));
  assert.is(c.stats.stray, 0);
});

test('responses come in completion order, matched by id', async () => {
  const c = await client();
  const order: string[] = [];
  await Promise.all(['60', '5', '30'].map((ms) => c.request('sleep', ms).then((r) => order.push(r.toString()))));
  assert.equal(order, ['slept 5', 'slept 30', 'slept 60']);
});

test('a sleep cancelled by the client timeout never answers later', async () => {
  const c = await client();
  const seen: { type: number; id: number }[] = [];
  c.on('frame', (f) => seen.push({ type: f.type, id: f.id }));
  await rejects(c.request('sleep', '300', { timeoutMs: 50 }), 'ERR_TIMEOUT');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(seen.map((s) => s.type), [FrameType.ERROR], 'only the ERROR 6 for the cancel');
  assert.is(server.stats.cancelled, 1);
  assert.is(c.stats.cancelsSent, 1);
  assert.is(c.stats.lateAnswers, 1);
  assert.is((await c.request('echo', 'still fine')).toString(), 'still fine');
});

test('an AbortSignal cancels the request on the server', async () => {
  const c = await client();
  const ac = new AbortController();
  const p = c.request('sleep', '1000', { signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await rejects(p, 'ERR_ABORTED');
  await waitFor(() => server.stats.cancelled === 1, 1000, 'the server to see the CANCEL');
});

test('fail answers ERROR 100 with the body as message; the connection stays open', async () => {
  const c = await client();
  const err = await rejects(c.request('fail', 'disk on fire'), 'ERR_REMOTE');
  assert.is((err as unknown as { remoteCode: number }).remoteCode, 100);
  assert.is((err as unknown as { remoteMessage: string }).remoteMessage, 'disk on fire');
  assert.is((await c.request('echo', 'ok')).toString(), 'ok');
});

test('unknown method and bad sleep argument are ERROR 4', async () => {
  const c = await client();
  for (const [m, b] of [['nope', ''], ['sleep', 'abc'], ['sleep', '60001']] as const) {
    const err = await rejects(c.request(m, b), 'ERR_REMOTE');
    assert.is((err as unknown as { remoteCode: number }).remoteCode, WireError.BAD_REQUEST, `${m} ${b}`);
  }
});

test('PING is answered by PONG with the same payload', async () => {
  const c = await client();
  assert.is((await c.ping('are you there')).toString(), 'are you there');
  const err = await rejects(c.ping('x'.repeat(65)), 'ERR_REMOTE');
  assert.is((err as unknown as { remoteCode: number }).remoteCode, WireError.BAD_REQUEST);
});

test('a duplicate id in flight is refused with ERROR 7; the first request still answers', async () => {
  const peer = await rawPeer(port);
  open.push({ close: () => peer.socket.destroy() });
  peer.socket.write(Buffer.concat([request(5, 'sleep', '100'), request(5, 'echo', 'again')]));
  await waitFor(() => peer.frames.length === 2, 2000, 'two answers');
  const [dup, first] = peer.frames;
  assert.is(dup!.type, FrameType.ERROR);
  assert.is(dup!.id, 5);
  assert.is(parseError(dup!.payload).code, WireError.DUPLICATE_ID);
  assert.is(first!.type, FrameType.RESPONSE);
  assert.is(first!.payload.toString(), 'slept 100');
});

test('garbage gets ERROR id 0 and a close, while another client is still served', async () => {
  const good = await client();
  const slow = good.request('sleep', '150');
  const bad = await rawPeer(port);
  bad.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await bad.closed;
  assert.is(bad.frames.length, 1);
  assert.is(bad.frames[0]!.type, FrameType.ERROR);
  assert.is(bad.frames[0]!.id, 0);
  assert.is(parseError(bad.frames[0]!.payload).code, WireError.BAD_VERSION);
  assert.is((await slow).toString(), 'slept 150');
  assert.is((await good.request('echo', 'after')).toString(), 'after');
  assert.is(server.stats.protocolErrors, 1);
});

test('an unknown type gets ERROR 2 with id 0 and a close', async () => {
  const peer = await rawPeer(port);
  peer.socket.write(Buffer.from('010900000000000100000000', 'hex'));
  await peer.closed;
  assert.is(parseError(peer.frames[0]!.payload).code, WireError.UNKNOWN_TYPE);
});

test('a length of 2^32-1 is refused from the header alone, without allocating it', async () => {
  const before = process.memoryUsage().arrayBuffers;
  const peer = await rawPeer(port);
  peer.socket.write(encodeHeader(FrameType.REQUEST, 1, 0xffffffff));
  await peer.closed;
  assert.is(peer.frames.length, 1);
  assert.is(peer.frames[0]!.id, 0);
  assert.is(parseError(peer.frames[0]!.payload).code, WireError.FRAME_TOO_LARGE);
  assert.ok(process.memoryUsage().arrayBuffers - before < 4 * 2 ** 20, 'memory grew');
});

test('one frame written a byte at a time decodes exactly once', async () => {
  const peer = await rawPeer(port);
  open.push({ close: () => peer.socket.destroy() });
  const bytes = request(3, 'echo', 'split');
  for (const b of bytes) {
    peer.socket.write(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => peer.frames.length === 1, 2000, 'the answer');
  assert.is(peer.frames[0]!.payload.toString(), 'split');
  await new Promise((r) => setTimeout(r, 20));
  assert.is(peer.frames.length, 1);
});

test('three frames coalesced in one write are three answers', async () => {
  const peer = await rawPeer(port);
  open.push({ close: () => peer.socket.destroy() });
  peer.socket.write(Buffer.concat([request(1, 'echo', 'a'), request(2, 'echo', 'b'), request(3, 'echo', 'c')]));
  await waitFor(() => peer.frames.length === 3, 2000, 'three answers');
  assert.equal(peer.frames.map((f) => `${f.id}:${f.payload}`), ['1:a', '2:b', '3:c']);
});

test('when the connection drops, every pending request is rejected with ERR_CONNECTION_CLOSED', async () => {
  const c = await client();
  const a = c.request('sleep', '5000');
  const b = c.request('sleep', '5000');
  await waitFor(() => server.connectionCount === 1);
  await server.close();
  await rejects(a, 'ERR_CONNECTION_CLOSED');
  await rejects(b, 'ERR_CONNECTION_CLOSED');
  await rejects(c.request('echo', 'x'), 'ERR_NOT_CONNECTED');
  server = new FrameServer(); // after.each closes it
});

test.run();

const limits = suite('patterns/frame-server limits');

limits('connections past maxConnections are dropped', async () => {
  const s = new FrameServer({ maxConnections: 2 });
  const { port: p } = await s.listen(0);
  const a = await FrameClient.connect({ port: p });
  const b = await FrameClient.connect({ port: p });
  const third = await rawPeer(p);
  await third.closed;
  assert.is(s.stats.dropped, 1);
  assert.is((await a.request('echo', 'a')).toString(), 'a');
  await a.close();
  await b.close();
  await s.close();
});

limits('an idle connection is closed after idleTimeoutMs, one with work in flight is not', async () => {
  const s = new FrameServer({ idleTimeoutMs: 80 });
  const { port: p } = await s.listen(0);
  const idle = await rawPeer(p);
  const busy = await FrameClient.connect({ port: p });
  const work = busy.request('sleep', '250');
  await idle.closed;
  assert.is((await work).toString(), 'slept 250');
  assert.ok(s.stats.idleClosed >= 1);
  await busy.close();
  await s.close();
});

limits('requests over maxInFlight get ERROR 4', async () => {
  const s = new FrameServer({ maxInFlight: 2 });
  const { port: p } = await s.listen(0);
  const c = await FrameClient.connect({ port: p });
  const ok = [c.request('sleep', '50'), c.request('sleep', '50')];
  const err = await rejects(c.request('sleep', '50'), 'ERR_REMOTE');
  assert.is((err as unknown as { remoteCode: number }).remoteCode, WireError.BAD_REQUEST);
  await Promise.all(ok);
  await c.close();
  await s.close();
});

limits('maxPayload is enforced by the server', async () => {
  const s = new FrameServer({ maxPayload: 16 });
  const { port: p } = await s.listen(0);
  const c = await FrameClient.connect({ port: p });
  await rejects(c.request('echo', 'x'.repeat(100)), 'ERR_CONNECTION_CLOSED');
  await s.close();
});

limits.run();
