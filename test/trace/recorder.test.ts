import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Recorder, tapDgram, tapSocket, type WireEvent } from '../../src/trace/recorder.ts';
import { formatTraceEvent } from '../../src/trace/printer.ts';
import { encodeFrame, FrameType, frameAnnotator, requestPayload } from '../../src/wire/frame.ts';
import { portOf, waitFor } from '../_helpers.ts';

const test = suite('trace/recorder');

test('a tapped socket records open, each write, each read and close, with frame notes', async () => {
  const recorder = new Recorder(true);
  const server = createServer((s) => s.on('data', (c) => s.end(c)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = portOf(server);
  const sock: Socket = connect({ port, host: '127.0.0.1' });
  tapSocket(sock, recorder, { side: 'client', annotate: frameAnnotator() });
  await once(sock, 'connect');
  const frame = encodeFrame(FrameType.REQUEST, 9, requestPayload('echo', 'x'));
  sock.write(frame[0]!.subarray(0, 5));
  sock.write(Buffer.concat([frame[0]!.subarray(5), ...frame.slice(1)]));
  sock.resume();
  await once(sock, 'close');
  server.close();
  await waitFor(() => recorder.events.some((e) => e.kind === 'close'));
  const kinds = recorder.events.map((e) => e.kind);
  assert.is(kinds[0], 'open');
  assert.is(kinds.at(-1), 'close');
  const sends = recorder.events.filter((e) => e.kind === 'send');
  assert.equal(sends.map((e) => e.data!.length), [5, 13]);
  assert.equal(sends[0]!.notes, [], 'no frame yet after 5 bytes');
  assert.equal(sends[1]!.notes, ['version=1 type=REQUEST id=9 length=6 method=echo body="x"']);
  const recvBytes = Buffer.concat(recorder.events.filter((e) => e.kind === 'recv').map((e) => e.data!));
  assert.is(recvBytes.length, 18);
  const e = sends[1] as WireEvent;
  assert.ok(e.local.port > 0 && e.remote.port === port);
  const text = formatTraceEvent(e);
  assert.match(text, /=> Send data, 13 bytes \(0xd\)\n0000: /);
  assert.match(text, /\^ version=1 type=REQUEST id=9/);
});

test('an inactive recorder taps nothing (no cost when tracing is off)', async () => {
  const recorder = new Recorder(false);
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sock = connect({ port: portOf(server), host: '127.0.0.1' });
  const write = sock.write;
  tapSocket(sock, recorder, { side: 'client' });
  assert.is(sock.write, write);
  sock.resume();
  await once(sock, 'close');
  server.close();
});

test('a datagram sent on a socket not bound yet is recorded once, with the local port Node bound it to', async () => {
  const recorder = new Recorder(true);
  const server = createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  const client = createSocket('udp4'); // unbound: send() binds it, then Node calls send() again
  tapDgram(client, recorder, { side: 'client', annotate: () => (d) => [`${d.length} bytes`] });
  const got = once(server, 'message');
  const serverPort = server.address().port;
  client.send(Buffer.from('hi'), serverPort, '127.0.0.1');
  const [, rinfo] = (await got) as [Buffer, { port: number }];
  const port = client.address().port;
  client.close();
  server.close();
  const sends = recorder.events.filter((e) => e.kind === 'send');
  assert.equal(sends.map((e) => [e.local.port, e.remote.port, e.data!.toString(), e.notes]), [[port, serverPort, 'hi', ['2 bytes']]]);
  assert.is(rinfo.port, port);
});

test.run();
