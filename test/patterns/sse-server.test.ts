import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { startSseServer, type SseApp } from '../../src/patterns/sse-app.ts';
import { HttpClientConnection } from '../../src/patterns/http-client.ts';
import { SseParser, type ParsedSseEvent } from '../../src/wire/sse.ts';
import { waitFor } from '../_helpers.ts';

const test = suite('patterns/sse-server');

async function stream(app: SseApp, headers: Record<string, string> = {}) {
  const conn = await HttpClientConnection.connect('127.0.0.1', app.address.port);
  const parser = new SseParser();
  const events: ParsedSseEvent[] = [];
  const raw: Buffer[] = [];
  let head: { status: number; headers: [string, string][] } | undefined;
  conn.request('GET', '/events', {
    headers,
    onHead: (h) => (head = h),
    onData: (d) => {
      raw.push(Buffer.from(d));
      events.push(...parser.push(d));
    },
  }).catch(() => {});
  await waitFor(() => head !== undefined, 2000, 'the stream head');
  return { conn, parser, events, raw, head: head! };
}

test('headers: text/event-stream, no-cache, chunked, no compression even when asked', async () => {
  const app = await startSseServer({ heartbeatMs: 0 });
  const s = await stream(app, { 'accept-encoding': 'gzip, br' });
  const h = new Map(s.head.headers);
  assert.is(h.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.is(h.get('cache-control'), 'no-cache');
  assert.is(h.get('transfer-encoding'), 'chunked');
  assert.not.ok(h.has('content-encoding'));
  s.conn.destroy();
  await app.close();
});

test('published events arrive with increasing ids, event names and multi-line data; retry is sent', async () => {
  const app = await startSseServer({ heartbeatMs: 0, retryMs: 1234 });
  const s = await stream(app);
  await waitFor(() => app.hub.clientCount === 1);
  app.hub.publish('tick', '{"n":1}');
  app.hub.publish(undefined, 'a\nb');
  await waitFor(() => s.events.length === 2);
  assert.equal(s.events, [
    { lastEventId: '1', type: 'tick', data: '{"n":1}' },
    { lastEventId: '2', type: 'message', data: 'a\nb' },
  ]);
  assert.is(s.parser.retry, 1234);
  assert.ok(Buffer.concat(s.raw).toString().includes('id: 2\ndata: a\ndata: b\n\n'));
  s.conn.destroy();
  await app.close();
});

test('heartbeat comments arrive on the named interval', async () => {
  const app = await startSseServer({ heartbeatMs: 30 });
  const s = await stream(app);
  await waitFor(() => s.parser.comments >= 2, 2000, 'two heartbeats');
  assert.is(s.events.length, 0);
  s.conn.destroy();
  await app.close();
});

test('Last-Event-ID replays exactly the missed events from the ring', async () => {
  const app = await startSseServer({ heartbeatMs: 0, ringSize: 10 });
  for (let i = 0; i < 6; i++) app.hub.publish('tick', String(i + 1));
  const s = await stream(app, { 'last-event-id': '3' });
  await waitFor(() => s.events.length === 3);
  assert.equal(s.events.map((e) => e.lastEventId), ['4', '5', '6']);
  s.conn.destroy();
  await app.close();
});

test('Last-Event-ID older than the ring (or not ours) gets a reset event carrying the current id', async () => {
  const app = await startSseServer({ heartbeatMs: 0, ringSize: 3 });
  for (let i = 0; i < 10; i++) app.hub.publish('tick', String(i + 1));
  for (const last of ['2', 'garbage', '999']) {
    const s = await stream(app, { 'last-event-id': last });
    await waitFor(() => s.events.length === 1);
    assert.is(s.events[0]!.type, 'reset');
    assert.is(s.events[0]!.lastEventId, '10');
    assert.is(JSON.parse(s.events[0]!.data).oldest, 8);
    s.conn.destroy();
  }
  assert.is(app.hub.stats.resets, 3);
  await app.close();
});

test('cleanup on disconnect: the hub forgets a client as soon as its connection closes', async () => {
  const app = await startSseServer({ heartbeatMs: 0 });
  const a = await stream(app);
  const b = await stream(app);
  await waitFor(() => app.hub.clientCount === 2);
  a.conn.destroy();
  await waitFor(() => app.hub.clientCount === 1, 1000, 'one client left');
  b.conn.destroy();
  await waitFor(() => app.hub.clientCount === 0, 1000, 'no client left');
  await app.close();
});

test('a client that does not read is dropped at the buffered-bytes limit; others keep receiving', async () => {
  const app = await startSseServer({ heartbeatMs: 0, maxBufferedBytes: 64 * 1024 });
  const fast = await stream(app);
  const slow = net.connect(app.address.port, '127.0.0.1');
  slow.write('GET /events HTTP/1.1\r\nHost: h\r\n\r\n');
  slow.pause();
  slow.on('error', () => {});
  await waitFor(() => app.hub.clientCount === 2);
  const big = 'x'.repeat(16 * 1024);
  for (let i = 0; i < 400 && app.hub.stats.droppedSlow === 0; i++) {
    app.hub.publish('bulk', big);
    await new Promise((r) => setImmediate(r));
  }
  assert.is(app.hub.stats.droppedSlow, 1);
  await waitFor(() => app.hub.clientCount === 1);
  const before = fast.events.length;
  app.hub.publish('after', 'still here');
  await waitFor(() => fast.events.length > before && fast.events.at(-1)!.type === 'after', 3000, 'the fast client');
  fast.conn.destroy();
  slow.destroy();
  await app.close();
});

test('POST /publish sends its body as one event to every client', async () => {
  const app = await startSseServer({ heartbeatMs: 0 });
  const a = await stream(app);
  const b = await stream(app);
  await waitFor(() => app.hub.clientCount === 2);
  const pub = await HttpClientConnection.connect('127.0.0.1', app.address.port);
  const res = await pub.request('POST', '/publish', { body: 'hello\nworld' });
  assert.equal(res.json(), { id: 1, clients: 2 });
  await waitFor(() => a.events.length === 1 && b.events.length === 1);
  assert.is(a.events[0]!.data, 'hello\nworld');
  for (const c of [a.conn, b.conn, pub]) c.destroy();
  await app.close();
});

test.run();
