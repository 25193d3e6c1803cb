import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket, type Socket as DgramSocket, type RemoteInfo } from 'node:dgram';
import { DnsServer } from '../../src/patterns/dns-server.ts';
import { DnsClient, formatReportLine, reportLine, failedLine, type ClientEvent } from '../../src/patterns/dns-client.ts';
import { backoffBounds, type BackoffStrategy } from '../../src/client/retry.ts';
import { decode, encode, emptyPacket, TYPE, CLASS_IN, FLAG_QR, FLAG_AA, FLAG_RD, type DnsPacket } from '../../src/wire/dns.ts';
import { rejects, throwsCode, waitFor } from '../_helpers.ts';

const test = suite('patterns/dns-client');

let server: DnsServer;
const clients: DnsClient[] = [];
const extra: DnsServer[] = [];

test.before(async () => {
  server = await DnsServer.start();
});
test.after.each(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(extra.splice(0).map((s) => s.close()));
});
test.after(async () => {
  await server.close();
});

async function client(s: { address: string; port: number }, onEvent?: (e: ClientEvent) => void, maxPending?: number): Promise<DnsClient> {
  const c = await new DnsClient({ server: s, onEvent, maxPending }).start();
  clients.push(c);
  return c;
}
async function startServer(o: Parameters<typeof DnsServer.start>[0]): Promise<DnsServer> {
  const s = await DnsServer.start(o);
  extra.push(s);
  return s;
}

test('resolves A, AAAA, TXT and NXDOMAIN; the report line names id, attempts, rtt and answer', async () => {
  const c = await client(server.address);
  const a = await c.query('hello.lab');
  assert.equal(a.response.answers.map((x) => x.data), ['127.0.0.1']);
  assert.is(a.attempts, 1);
  assert.is(a.transport, 'udp');
  assert.equal((await c.query('hello.lab', { type: TYPE.AAAA })).response.answers.map((x) => x.data), ['::1']);
  const line = formatReportLine(reportLine(a));
  assert.match(line, new RegExp(`^A +hello\\.lab\\. +id=0x${a.id.toString(16).padStart(4, '0')} attempts=1 rtt=\\d+\\.\\d\\dms +udp  A: 127\\.0\\.0\\.1$`));
  assert.match(formatReportLine(reportLine(await c.query('nope.lab'))), /NXDOMAIN$/);
  assert.match(formatReportLine(failedLine('gone.lab', TYPE.A, 3, Object.assign(new Error('x'), { code: 'ERR_RETRIES_EXHAUSTED' }))), /attempts=3 .*<no response> \(ERR_RETRIES_EXHAUSTED\)$/);
});

test('a server given by name, not address, is refused: replies could not be matched against it', () => {
  throwsCode(() => new DnsClient({ server: { address: 'localhost', port: 53 } }), 'ERR_DNS_SERVER_ADDRESS');
});

test('ids are random and never reused while pending (200 in flight)', async () => {
  const slow = await startServer({ delayMs: [20, 60] });
  const c = await client(slow.address);
  const ids: number[] = [];
  await Promise.all(Array.from({ length: 200 }, () => c.query('hello.lab', { onEvent: (e) => { if (e.type === 'send') ids.push(e.id); } })));
  assert.is(ids.length, 200);
  assert.is(new Set(ids).size, 200, 'an id was reused while in flight');
  const steps = ids.slice(1).filter((id, i) => ((id - ids[i]!) & 0xffff) === 1).length;
  assert.ok(steps < 10, `${steps} sequential ids`);
  assert.is(c.pendingCount, 0);
});

/** A fake server we drive by hand: it hands each query to `onQuery` to answer however the test wants. */
async function fakeServer(onQuery: (q: DnsPacket, rinfo: RemoteInfo, sock: DgramSocket) => void): Promise<DgramSocket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  s.on('message', (m, rinfo) => onQuery(decode(m), rinfo, s));
  return s;
}

test('replies with a wrong id, from a wrong source, with a wrong question, not a response or malformed are ignored and counted', async () => {
  const impostor = createSocket('udp4');
  await new Promise<void>((r) => impostor.bind(0, '127.0.0.1', () => r()));
  const reply = (id: number, name: string, data: string, flags = FLAG_QR | FLAG_AA | FLAG_RD) =>
    encode({ ...emptyPacket(id, flags), questions: [{ name, type: TYPE.A, class: CLASS_IN }], answers: [{ name, type: TYPE.A, class: CLASS_IN, ttl: 1, data }] });
  const fake = await fakeServer((q, rinfo, s) => {
    const to = (b: Buffer, from = s) => from.send(b, rinfo.port, rinfo.address);
    to(reply((q.id + 1) & 0xffff, 'hello.lab', '6.6.6.1')); // wrong id
    to(reply(q.id, 'hello.lab', '6.6.6.2'), impostor); // right id, wrong source port
    to(reply(q.id, 'evil.lab', '6.6.6.3')); // right id and source, wrong question
    to(reply(q.id, 'hello.lab', '6.6.6.4', FLAG_RD)); // QR clear: not a response
    to(Buffer.from([0, 1, 2])); // too short for a header
    setTimeout(() => to(reply(q.id, 'hello.lab', '127.0.0.1')), 30); // the real one, last
  });
  const ignored: string[] = [];
  try {
    const c = await client({ address: '127.0.0.1', port: fake.address().port }, (e) => { if (e.type === 'ignored') ignored.push(e.reason); });
    const r = await c.query('hello.lab');
    assert.equal(r.response.answers.map((a) => a.data), ['127.0.0.1']);
    assert.equal(c.stats.ignored, { unknownId: 1, wrongSource: 1, wrongQuestion: 1, notResponse: 1, malformed: 1 });
    assert.equal(ignored.sort(), ['malformed', 'notResponse', 'unknownId', 'wrongQuestion', 'wrongSource']);
  } finally {
    fake.close();
    impostor.close();
  }
});

test('a TC reply is asked again over TCP and the whole answer comes back', async () => {
  const c = await client(server.address);
  const r = await c.query('big.lab', { type: TYPE.TXT });
  assert.is(r.transport, 'tcp');
  assert.is((r.response.answers[0]!.data as Buffer[]).length, 24);
  assert.is(c.stats.truncated, 1);
  assert.is(c.stats.tcpQueries, 1);
  const noFallback = await c.query('big.lab', { type: TYPE.TXT, tcpFallback: false });
  assert.is(noFallback.transport, 'udp');
  assert.is(noFallback.response.answers.length, 0);
  assert.is((await c.query('hello.lab', { tcp: true })).transport, 'tcp');
});

test('retry: with the first 2 queries dropped the client succeeds on attempt 3, within its deadline', async () => {
  const lossy = await startServer({ dropFirst: 2 });
  const c = await client(lossy.address);
  const r = await c.query('hello.lab', { strategy: 'full', baseMs: 10, capMs: 50, attemptTimeoutMs: 80, maxAttempts: 5, deadlineMs: 2000 });
  assert.is(r.attempts, 3);
  assert.ok(r.elapsedMs < 2000);
  assert.is(lossy.stats.dropped['drop-first'], 2);
  assert.equal(r.response.answers.map((a) => a.data), ['127.0.0.1']);
});

for (const strategy of ['full', 'equal', 'decorrelated', 'exponential'] as BackoffStrategy[]) {
  test(`retry: the waits between attempts follow ${strategy} jitter's bounds (4 queries dropped)`, async () => {
    const lossy = await startServer({ dropFirst: 4 });
    const c = await client(lossy.address);
    const o = { strategy, baseMs: 8, capMs: 60, attemptTimeoutMs: 40, maxAttempts: 6, deadlineMs: 5000 };
    const events: (ClientEvent & { at: number })[] = [];
    const r = await c.query('hello.lab', { ...o, onEvent: (e) => events.push({ ...e, at: performance.now() }) });
    assert.is(r.attempts, 5);
    const backoffs = events.filter((e) => e.type === 'backoff') as (ClientEvent & { type: 'backoff'; delayMs: number; at: number })[];
    assert.is(backoffs.length, 4);
    let prev = o.baseMs;
    backoffs.forEach((b, n) => {
      const [min, max] = backoffBounds(o, n, prev);
      assert.ok(b.delayMs >= min && b.delayMs <= max, `${strategy} wait ${n}: ${b.delayMs} not in [${min}, ${max}]`);
      prev = b.delayMs;
      // The next datagram really waited at least that long (timers never fire early by more than 1 ms).
      const nextSend = events.find((e) => e.type === 'send' && e.attempt === n + 2)!;
      assert.ok(nextSend.at - b.at >= b.delayMs - 1, `${strategy}: attempt ${n + 2} sent ${nextSend.at - b.at} ms after a ${b.delayMs} ms backoff`);
    });
  });
}

test('retry: attempts run out with ERR_RETRIES_EXHAUSTED after exactly maxAttempts datagrams', async () => {
  const lossy = await startServer({ dropFirst: 1000 });
  const c = await client(lossy.address);
  await rejects(c.query('hello.lab', { strategy: 'none', attemptTimeoutMs: 30, maxAttempts: 3 }), 'ERR_RETRIES_EXHAUSTED');
  assert.is(lossy.stats.dropped['drop-first'], 3);
  assert.is(c.pendingCount, 0);
});

test('retry: the deadline ends it with ERR_DEADLINE', async () => {
  const lossy = await startServer({ dropFirst: 1000 });
  const c = await client(lossy.address);
  await rejects(c.query('hello.lab', { strategy: 'none', attemptTimeoutMs: 50, maxAttempts: 100, deadlineMs: 180 }), 'ERR_DEADLINE');
  const sent = lossy.stats.received;
  assert.ok(sent >= 1);
  await new Promise((r) => setTimeout(r, 120));
  assert.is(lossy.stats.received, sent, 'nothing sent after the deadline');
});

test('abort during an attempt stops all further sends at once', async () => {
  const lossy = await startServer({ dropFirst: 1000 });
  const c = await client(lossy.address);
  const controller = new AbortController();
  let sends = 0;
  const p = c.query('hello.lab', {
    strategy: 'none', attemptTimeoutMs: 40, maxAttempts: 50, signal: controller.signal,
    // Abort just after the second datagram is handed to the socket (a microtask: no attempt timeout can race it).
    onEvent: (e) => { if (e.type === 'send' && ++sends === 2) queueMicrotask(() => controller.abort()); },
  });
  await rejects(p, 'ERR_ABORTED');
  assert.is(c.pendingCount, 0);
  await waitFor(() => lossy.stats.received === 2, 1000, 'the two datagrams to arrive');
  await new Promise((r) => setTimeout(r, 150));
  assert.is(lossy.stats.received, 2, 'a datagram was sent after abort');
  assert.is(sends, 2);
});

test('abort during a backoff wait: no further send', async () => {
  const lossy = await startServer({ dropFirst: 1000 });
  const c = await client(lossy.address);
  const controller = new AbortController();
  const p = c.query('hello.lab', {
    strategy: 'exponential', baseMs: 400, capMs: 400, attemptTimeoutMs: 20, maxAttempts: 5, signal: controller.signal,
    onEvent: (e) => { if (e.type === 'backoff') setTimeout(() => controller.abort(), 10); },
  });
  await rejects(p, 'ERR_ABORTED');
  await new Promise((r) => setTimeout(r, 100));
  assert.is(lossy.stats.received, 1);
});

test('a late reply to a timed-out attempt is ignored as an unknown id', async () => {
  const slow = await startServer({ delayMs: [120, 120] });
  const c = await client(slow.address);
  await rejects(c.query('hello.lab', { strategy: 'none', attemptTimeoutMs: 40, maxAttempts: 2 }), 'ERR_RETRIES_EXHAUSTED');
  await waitFor(() => c.stats.ignored.unknownId === 2, 1000, 'the two late replies');
});

test('closing the client fails the queries in flight with ERR_NOT_CONNECTED, without retrying', async () => {
  const silent = await startServer({ dropFirst: 1000 });
  const c = await client(silent.address);
  const p = c.query('hello.lab', { attemptTimeoutMs: 1000, maxAttempts: 3 });
  await waitFor(() => silent.stats.received === 1, 1000, 'the query');
  c.close();
  await rejects(p, 'ERR_NOT_CONNECTED');
  assert.is(c.pendingCount, 0);
  await rejects(c.query('hello.lab'), 'ERR_NOT_CONNECTED');
});

test('more queries than maxPending in flight: ERR_TOO_MANY_PENDING, not retried', async () => {
  const silent = await startServer({ dropFirst: 1000 });
  const c = await client(silent.address, undefined, 2);
  const slow = [c.query('a.lab', { attemptTimeoutMs: 100, maxAttempts: 1 }), c.query('b.lab', { attemptTimeoutMs: 100, maxAttempts: 1 })];
  await rejects(c.query('c.lab', { attemptTimeoutMs: 100, maxAttempts: 3 }), 'ERR_TOO_MANY_PENDING');
  for (const p of slow) await rejects(p, 'ERR_RETRIES_EXHAUSTED');
});

test.run();
