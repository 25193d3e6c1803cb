import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { once } from 'node:events';
import { PushServer, PUSH_DEFAULTS } from '../../src/patterns/push-server.ts';
import { FrameClient } from '../../src/patterns/frame-client.ts';
import { FrameType, HEADER_SIZE, parseError } from '../../src/wire/frame.ts';
import { rawPeer } from './_frame-raw.ts';
import { waitFor } from '../_helpers.ts';

const test = suite('patterns/push-server');
const EVENT = 16 * 1024;
const event = (seq: number) => Buffer.concat([Buffer.from(`${seq}`.padStart(10, '0')), Buffer.alloc(EVENT - 10, 0x2e)]);
const seqOf = (b: Buffer) => Number(b.toString('latin1', 0, 10));

/** Publishes until the predicate holds (bounded: at most `max` events), yielding so sockets move. */
async function publishUntil(srv: PushServer, predicate: () => boolean, max = 4000): Promise<number> {
  let seq = 0;
  while (!predicate() && seq < max) {
    for (let i = 0; i < 16; i++) srv.publish(event(++seq));
    await new Promise((r) => setImmediate(r));
  }
  return seq;
}

test('a client that keeps up receives every event, in order', async () => {
  const srv = new PushServer();
  const { port } = await srv.listen(0);
  const c = await FrameClient.connect({ port });
  const got: number[] = [];
  c.on('push', (f) => {
    assert.is(f.type, FrameType.PUSH);
    assert.is(f.id, 0);
    got.push(seqOf(f.payload));
  });
  await waitFor(() => srv.clientCount === 1);
  // 500 small events fit the socket buffer even when published in one tick.
  for (let i = 1; i <= 500; i++) srv.publish(Buffer.from(`${i}`.padStart(10, '0')));
  await waitFor(() => got.length === 500, 5000, '500 events');
  assert.equal(got, Array.from({ length: 500 }, (_, i) => i + 1));
  await c.close();
  await srv.close();
});

test('drop-oldest: a client that stops reading costs at most the bound; on resuming it sees exactly the drops as gaps', async () => {
  const maxQueue = 32;
  const srv = new PushServer({ policy: 'drop-oldest', maxQueue });
  const { port } = await srv.listen(0);
  const c = await FrameClient.connect({ port });
  const got: number[] = [];
  c.on('push', (f) => got.push(seqOf(f.payload)));
  c.socket.pause();
  await waitFor(() => srv.clientCount === 1);
  const stats = srv.history[0]!;
  const published = await publishUntil(srv, () => stats.dropped >= 200);
  assert.ok(stats.dropped >= 200, `dropped ${stats.dropped} of ${published}`);
  assert.ok(stats.peakQueued <= maxQueue);
  assert.ok(stats.peakBufferedBytes <= PUSH_DEFAULTS.socketHighWaterMark + (maxQueue + 1) * (EVENT + HEADER_SIZE), `held ${stats.peakBufferedBytes} bytes`);
  c.socket.resume();
  await waitFor(() => got.length === stats.written, 5000, 'every written event');
  let missed = 0;
  for (let i = 1; i < got.length; i++) missed += got[i]! - got[i - 1]! - 1;
  assert.is(missed + (got[0]! - 1), stats.dropped, 'gaps seen by the client = drops counted by the server');
  assert.is(got.at(-1), published, 'the newest event is kept');
  assert.not.ok(stats.disconnected);
  await c.close();
  await srv.close();
});

test('disconnect: the slow client is dropped when its queue is full; a fast one keeps everything', async () => {
  const srv = new PushServer({ policy: 'disconnect', maxQueue: 16 });
  const { port } = await srv.listen(0);
  const slow = await FrameClient.connect({ port });
  const fast = await FrameClient.connect({ port });
  let fastGot = 0;
  fast.on('push', () => fastGot++);
  slow.socket.pause();
  await waitFor(() => srv.clientCount === 2);
  const published = await publishUntil(srv, () => srv.history[0]!.disconnected);
  assert.ok(srv.history[0]!.disconnected, 'the slow client was disconnected');
  await waitFor(() => fastGot === published, 5000, 'the fast client got every event');
  assert.is(srv.clientCount, 1);
  slow.socket.resume();
  await fast.close();
  await srv.close();
});

test('a push client may PING; garbage gets ERROR id 0 and a close', async () => {
  const srv = new PushServer();
  const { port } = await srv.listen(0);
  const c = await FrameClient.connect({ port });
  assert.is((await c.ping('hi')).toString(), 'hi');
  const bad = await rawPeer(port);
  bad.socket.write('hello?');
  await bad.closed;
  assert.is(bad.frames[0]!.id, 0);
  assert.is(parseError(bad.frames[0]!.payload).code, 1);
  await c.close();
  await srv.close();
});

test('a PING with a length over 64 is refused before any payload is buffered', async () => {
  const srv = new PushServer();
  const { port } = await srv.listen(0);
  const bad = await rawPeer(port);
  bad.socket.write(Buffer.from('010500000000000100100000', 'hex'));
  await bad.closed;
  assert.is(parseError(bad.frames[0]!.payload).code, 3);
  await srv.close();
});

test('a peer that sends garbage and never closes its side is destroyed, not kept half-open', async () => {
  const srv = new PushServer();
  const { port } = await srv.listen(0);
  // allowHalfOpen: this peer does not answer the server's FIN, as a hostile one would not.
  const peer = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  peer.on('error', () => {});
  peer.resume();
  await once(peer, 'connect');
  peer.write('garbage');
  await once(peer, 'end'); // the server's ERROR, then its FIN
  // close() resolves only once the server holds no socket: bounded, so a kept half-open socket fails the test.
  const closed = await Promise.race([srv.close().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000).unref())]);
  peer.destroy();
  assert.ok(closed, 'the server still held the half-open socket after 3 s');
});

test.run();
