import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { connect } from 'node:net';
import { once } from 'node:events';
import { DnsServer } from '../../src/patterns/dns-server.ts';
import { parseZone } from '../../src/wire/zone.ts';
import {
  decode, encode, emptyPacket, tcpPrefix, DnsTcpDecoder, rcodeOf, opcodeOf, TYPE, CLASS_IN, RCODE, OPCODE,
  FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD, type DnsPacket,
} from '../../src/wire/dns.ts';
import { seededRandom, waitFor } from '../_helpers.ts';
import { DIG_QUERY, DIG_REPLY } from '../fixtures/dns-golden.ts';

const test = suite('patterns/dns-server');

let server: DnsServer;
let sock: DgramSocket;

test.before(async () => {
  server = await DnsServer.start();
  sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
});
test.after(async () => {
  sock.close();
  await server.close();
});

/** Sends one datagram and waits up to waitMs for one reply (undefined when none comes). */
function ask(bytes: Buffer, port = server.address.port, waitMs = 1000, s = sock): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { s.off('message', on); resolve(undefined); }, waitMs);
    const on = (m: Buffer) => { clearTimeout(timer); s.off('message', on); resolve(m); };
    s.on('message', on);
    s.send(bytes, port, '127.0.0.1');
  });
}

function query(name: string, type: number = TYPE.A, extra: Partial<DnsPacket> = {}, flags = FLAG_RD): Buffer {
  return encode({ ...emptyPacket(0x1234, flags), questions: [{ name, type, class: CLASS_IN }], ...extra });
}
const EDNS = (size: number, version = 0) => ({ edns: { udpPayloadSize: size, extendedRcode: 0, version, flags: 0, options: [] } });

test('answers A with QR and AA set, RD copied, id and question echoed, the name compressed to offset 12', async () => {
  const raw = (await ask(query('hello.lab')))!;
  const r = decode(raw);
  assert.is(r.id, 0x1234);
  assert.is(r.flags, FLAG_QR | FLAG_AA | FLAG_RD);
  assert.equal(r.questions, [{ name: 'hello.lab', type: TYPE.A, class: CLASS_IN }]);
  assert.equal(r.answers.map((a) => a.data), ['127.0.0.1']);
  assert.is(raw.readUInt16BE(12 + 11 + 4), 0xc00c);
});

test('RD clear in the query is clear in the reply', async () => {
  const r = decode((await ask(query('hello.lab', TYPE.A, {}, 0)))!);
  assert.is(r.flags, FLAG_QR | FLAG_AA);
});

test('the reply to dig\'s captured query is byte for byte the captured reply', async () => {
  assert.is((await ask(DIG_QUERY))!.toString('hex'), DIG_REPLY.toString('hex'));
});

test('AAAA, TXT, and CNAME chased inside the zone; names match case-insensitively with case kept', async () => {
  assert.equal(decode((await ask(query('hello.lab', TYPE.AAAA)))!).answers.map((a) => a.data), ['::1']);
  assert.equal((decode((await ask(query('hello.lab', TYPE.TXT)))!).answers[0]!.data as Buffer[]).map(String), ['hello from the wirelab DNS subset']);
  const c = decode((await ask(query('WWW.Lab')))!);
  assert.equal(c.answers.map((a) => [a.name, a.type, a.data]), [['WWW.Lab', TYPE.CNAME, 'hello.lab'], ['hello.lab', TYPE.A, '127.0.0.1']]);
});

test('NXDOMAIN for a name in the zone without records, NODATA for a name without that type, REFUSED outside the zone', async () => {
  const rc = async (b: Buffer) => { const r = decode((await ask(b))!); return [rcodeOf(r.flags), r.answers.length, !!(r.flags & FLAG_AA)]; };
  assert.equal(await rc(query('nope.lab')), [RCODE.NXDOMAIN, 0, true]);
  assert.equal(await rc(query('empty.lab')), [RCODE.NOERROR, 0, true]);
  assert.equal(await rc(query('example.com')), [RCODE.REFUSED, 0, true]);
  assert.equal(await rc(encode({ ...emptyPacket(1, 0), questions: [{ name: 'hello.lab', type: TYPE.A, class: 3 }] })), [RCODE.REFUSED, 0, true]);
});

test('NOTIMP for an opcode other than QUERY, opcode echoed', async () => {
  const r = decode((await ask(query('hello.lab', TYPE.A, {}, OPCODE.UPDATE << 11)))!);
  assert.is(rcodeOf(r.flags), RCODE.NOTIMP);
  assert.is(opcodeOf(r.flags), OPCODE.UPDATE);
});

test('EDNS version 1 gets BADVERS (extended rcode 1) with an OPT record', async () => {
  const r = decode((await ask(query('hello.lab', TYPE.A, EDNS(1232, 1))))!);
  assert.is(r.edns?.extendedRcode, 1);
  assert.is(r.answers.length, 0);
});

const h = (id: number, qd: number, ar = 0) => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(FLAG_RD, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(ar, 10);
  return b;
};
const formerr: [string, Buffer, string][] = [
  ['truncated header', h(0x0a0a, 1).subarray(0, 7), 'ERR_DNS_TRUNCATED'],
  ['QDCOUNT 0', h(0x0b0b, 0), 'ERR_DNS_BAD_QDCOUNT'],
  ['QDCOUNT 2', Buffer.concat([h(0x0c0c, 2), Buffer.from('0161000001000101620000010001', 'hex')]), 'ERR_DNS_BAD_QDCOUNT'],
  ['a label over 63 bytes', Buffer.concat([h(0x0d0d, 1), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from('0000010001', 'hex')]), 'ERR_DNS_LABEL_TOO_LONG'],
  ['a name over 255 bytes', Buffer.concat([h(0x0e0e, 1), ...Array(5).fill(Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)])), Buffer.from('0000010001', 'hex')]), 'ERR_DNS_NAME_TOO_LONG'],
  ['a compression pointer in a query', Buffer.concat([h(0x0f0f, 1, 1), Buffer.from('0161000001000 1c00c00010001000000000004 7f000001'.replace(/ /g, ''), 'hex')]), 'ERR_DNS_POINTER_IN_QUERY'],
  ['trailing garbage', Buffer.concat([query('hello.lab'), Buffer.from('garbage')]), 'ERR_DNS_TRAILING_BYTES'],
];
for (const [what, bytes, code] of formerr) {
  test(`FORMERR with the id echoed for ${what}, counted as ${code}`, async () => {
    const before = server.stats.malformed[code] ?? 0;
    const r = decode((await ask(bytes))!);
    assert.is(r.id, bytes.readUInt16BE(0));
    assert.is(rcodeOf(r.flags), RCODE.FORMERR);
    assert.ok(r.flags & FLAG_QR);
    assert.is(server.stats.malformed[code], before + 1);
  });
}

test('the largest UDP datagram (65,507 bytes) of a question and junk: FORMERR, the id echoed', async () => {
  const big = Buffer.concat([query('hello.lab'), Buffer.alloc(65507 - query('hello.lab').length, 0xc0)]);
  const r = decode((await ask(big))!);
  assert.is(r.id, 0x1234);
  assert.is(rcodeOf(r.flags), RCODE.FORMERR);
});

test('a datagram too short to hold an id is dropped and counted; so is a response sent to the server', async () => {
  const short = server.stats.dropped['too-short'] ?? 0;
  assert.is(await ask(Buffer.from([7]), undefined, 100), undefined);
  assert.is(server.stats.dropped['too-short'], short + 1);
  assert.ok((server.stats.malformed.ERR_DNS_TOO_SHORT ?? 0) >= 1);
  assert.is(await ask(query('hello.lab', TYPE.A, {}, FLAG_QR), undefined, 100), undefined);
  assert.ok((server.stats.dropped.response ?? 0) >= 1);
  // Still answering after all that.
  assert.is(decode((await ask(query('hello.lab')))!).answers.length, 1);
});

test('3,000 seeded random and mutated datagrams: every one counted (reply, drop or malformed), the server still answers', async () => {
  const random = seededRandom(7);
  const int = (n: number) => Math.floor(random() * n);
  const seeds = [DIG_QUERY, query('hello.lab'), query('big.lab', TYPE.TXT, EDNS(1232))];
  const before = { received: server.stats.received, replies: server.stats.replies };
  const dropsBefore = Object.values(server.stats.dropped).reduce((a, b) => a + b, 0);
  const junk = createSocket('udp4');
  await new Promise<void>((r) => junk.bind(0, '127.0.0.1', () => r()));
  let got = 0;
  junk.on('message', () => got++);
  const N = 3000;
  try {
    for (let i = 0; i < N; i++) {
      let b: Buffer;
      if (i % 3 === 0) b = Buffer.from(Array.from({ length: int(80) }, () => int(256)));
      else {
        b = Buffer.from(seeds[i % seeds.length]!);
        for (let k = 0; k < 1 + int(3); k++) b[int(b.length)] = int(256);
        if (random() < 0.3) b = b.subarray(0, int(b.length));
      }
      junk.send(b, server.address.port, '127.0.0.1');
      // Batches of 50, well under the receive buffer, so the kernel drops none and the count is exact.
      if (i % 50 === 49) await waitFor(() => server.stats.received - before.received === i + 1, 5000, `datagram ${i + 1} to be read`);
    }
    const drops = Object.values(server.stats.dropped).reduce((a, b) => a + b, 0) - dropsBefore;
    assert.is(server.stats.replies - before.replies + drops, N, 'every datagram was answered or dropped, none lost inside');
    await waitFor(() => got === server.stats.replies - before.replies, 5000, 'every reply to arrive');
  } finally {
    junk.close();
  }
  assert.equal(decode((await ask(query('hello.lab')))!).answers.map((a) => a.data), ['127.0.0.1']);
});

test('over UDP a reply over 512 bytes is truncated: TC set, no answers, question kept', async () => {
  const raw = (await ask(query('big.lab', TYPE.TXT)))!;
  const r = decode(raw);
  assert.ok(r.flags & FLAG_TC);
  assert.is(r.answers.length, 0);
  assert.is(r.questions[0]!.name, 'big.lab');
  assert.ok(raw.length <= 512);
});

test('the EDNS0 size the query advertises sets the limit (and below 512 counts as 512)', async () => {
  const big = decode((await ask(query('big.lab', TYPE.TXT, EDNS(4096))))!);
  assert.is(big.flags & FLAG_TC, 0);
  assert.is((big.answers[0]!.data as Buffer[]).length, 24);
  assert.ok(decode((await ask(query('big.lab', TYPE.TXT, EDNS(1232))))!).flags & FLAG_TC);
  const small = decode((await ask(query('hello.lab', TYPE.TXT, EDNS(100))))!);
  assert.is(small.flags & FLAG_TC, 0);
  assert.is(small.edns?.udpPayloadSize, 1232);
});

async function tcpExchange(port: number, messages: Buffer[], bytewise = false): Promise<DnsPacket[]> {
  const s = connect({ port, host: '127.0.0.1' });
  await once(s, 'connect');
  const stream = Buffer.concat(messages.flatMap((m) => [tcpPrefix(m.length), m]));
  if (bytewise) for (let i = 0; i < stream.length; i++) s.write(stream.subarray(i, i + 1));
  else s.write(stream);
  const decoder = new DnsTcpDecoder();
  const replies: DnsPacket[] = [];
  await new Promise<void>((resolve, reject) => {
    s.on('data', (c: Buffer) => {
      for (const m of decoder.push(c)) replies.push(decode(m));
      if (replies.length === messages.length) resolve();
    });
    s.on('error', reject);
    setTimeout(() => reject(new Error('no TCP reply')), 2000);
  });
  s.destroy();
  return replies;
}

test('TCP on the same port: the whole large answer, length-prefixed', async () => {
  const [r] = await tcpExchange(server.address.port, [query('big.lab', TYPE.TXT)]);
  assert.is(r!.flags & FLAG_TC, 0);
  assert.is((r!.answers[0]!.data as Buffer[]).length, 24);
});

test('TCP: pipelined queries sent one byte at a time are all answered, in order', async () => {
  const q1 = query('hello.lab');
  const q2 = Buffer.from(query('hello.lab', TYPE.AAAA));
  q2.writeUInt16BE(0x5678, 0);
  const replies = await tcpExchange(server.address.port, [q1, q2], true);
  assert.equal(replies.map((r) => r.id), [0x1234, 0x5678]);
  assert.equal(replies.map((r) => r.answers[0]!.data), ['127.0.0.1', '::1']);
});

test('TCP: a zero-length message is a framing error: the connection is closed', async () => {
  const s = connect({ port: server.address.port, host: '127.0.0.1' });
  await once(s, 'connect');
  s.write(tcpPrefix(0));
  await once(s, 'close');
});

test('state: nothing per UDP client before or after a burst; a TCP connection is state while open', async () => {
  const perClient = () => { const { replyCacheEntries: _c, ...rest } = server.state(); return rest; };
  assert.equal(perClient(), { udpPerClientEntries: 0, delayedReplies: 0, tcpConnections: 0, tcpBufferedBytes: 0 });
  // 20 clients (20 source ports) asking the same question: one cache entry, keyed by the question, not the client.
  const cacheBefore = server.state().replyCacheEntries;
  const socks = await Promise.all(Array.from({ length: 20 }, async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return s;
  }));
  const q = query('hello.lab', TYPE.A, {}, 0);
  await Promise.all(socks.map((s) => ask(q, server.address.port, 1000, s)));
  for (const s of socks) s.close();
  assert.equal(perClient(), { udpPerClientEntries: 0, delayedReplies: 0, tcpConnections: 0, tcpBufferedBytes: 0 });
  assert.ok(server.state().replyCacheEntries <= cacheBefore + 1);
  const s = connect({ port: server.address.port, host: '127.0.0.1' });
  await once(s, 'connect');
  s.write(Buffer.from([0x00, 0x40, 0x12]));
  await waitFor(() => server.state().tcpBufferedBytes === 1, 2000, 'the partial message to be buffered');
  assert.is(server.state().tcpConnections, 1);
  s.destroy();
  await waitFor(() => server.state().tcpConnections === 0, 2000, 'the connection to go');
});

test('knobs: --loss 1 drops every query; --delay holds the reply; --spoof sends a forged reply with a wrong id first', async () => {
  const lossy = await DnsServer.start({ loss: 1 });
  const delayed = await DnsServer.start({ delayMs: [150, 150] });
  const spoofing = await DnsServer.start({ spoof: true });
  try {
    assert.is(await ask(query('hello.lab'), lossy.address.port, 150), undefined);
    assert.is(lossy.stats.dropped.loss, 1);
    const p = ask(query('hello.lab'), delayed.address.port, 2000);
    await waitFor(() => delayed.state().delayedReplies === 1, 1000, 'a delayed reply');
    assert.ok(await p);
    assert.is(delayed.state().delayedReplies, 0);
    const got: DnsPacket[] = [];
    await new Promise<void>((resolve) => {
      const on = (m: Buffer) => { got.push(decode(m)); if (got.length === 2) { sock.off('message', on); resolve(); } };
      sock.on('message', on);
      sock.send(query('hello.lab'), spoofing.address.port, '127.0.0.1');
    });
    assert.not.equal(got[0]!.id, 0x1234);
    assert.is(got[0]!.answers[0]!.data, '6.6.6.6');
    assert.is(got[1]!.id, 0x1234);
    assert.is(got[1]!.answers[0]!.data, '127.0.0.1');
  } finally {
    await Promise.all([lossy.close(), delayed.close(), spoofing.close()]);
  }
});

test('a zone given to the server replaces the defaults; TCP connections over the limit are closed', async () => {
  const z = await DnsServer.start({ zone: parseZone('svc.test A 10.1.2.3\n'), maxTcpConnections: 1 });
  try {
    assert.equal(decode((await ask(query('svc.test'), z.address.port))!).answers.map((a) => a.data), ['10.1.2.3']);
    assert.is(rcodeOf(decode((await ask(query('hello.lab'), z.address.port))!).flags), RCODE.REFUSED);
    const a = connect({ port: z.address.port, host: '127.0.0.1' });
    await once(a, 'connect');
    await waitFor(() => z.state().tcpConnections === 1, 2000, 'first connection');
    const b = connect({ port: z.address.port, host: '127.0.0.1' });
    await once(b, 'close');
    assert.is(z.stats.tcpRejected, 1);
    a.destroy();
  } finally {
    await z.close();
  }
});

test.run();
