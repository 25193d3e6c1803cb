import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decode, encode, encodingLength, emptyPacket, nameToLabels, annotateMessage, dnsAnnotator, summarizeMessage, DnsTcpDecoder, tcpPrefix, parseType,
  TYPE, CLASS_IN, FLAG_QR, FLAG_AA, FLAG_RD, FLAG_TC, FLAG_AD, EDNS_FLAG_DO, type DnsPacket,
} from '../../src/wire/dns.ts';
import { isCoded } from '../../src/errors.ts';
import { throwsCode } from '../_helpers.ts';
import { DIG_QUERY, DIG_REPLY } from '../fixtures/dns-golden.ts';

const test = suite('wire/dns');

const header = (id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0) => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
};
const msg = (...parts: (Buffer | number[] | string)[]) =>
  Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Array.isArray(p) ? Buffer.from(p) : Buffer.from(p.replace(/\s+/g, ''), 'hex'))));

test('golden: the query as dig sends it, with its EDNS0 OPT and COOKIE', () => {
  const q = decode(DIG_QUERY);
  assert.is(q.id, 0xe037);
  assert.is(q.flags, FLAG_RD | FLAG_AD);
  assert.equal(q.questions, [{ name: 'hello.lab', type: TYPE.A, class: CLASS_IN }]);
  assert.equal(q.additionals, []);
  assert.is(q.edns?.udpPayloadSize, 1232);
  assert.is(q.edns?.version, 0);
  assert.is(q.edns?.flags, 0);
  assert.is(q.edns?.options.length, 1);
  assert.is(q.edns?.options[0]?.code, 10);
  assert.is(q.edns?.options[0]?.data.toString('hex'), 'dc931824b0e07a1c');
  // One fixture drives decode and encode: re-encoding gives the same bytes.
  assert.is(encode(q).toString('hex'), DIG_QUERY.toString('hex'));
  assert.is(encodingLength(q), DIG_QUERY.length);
});

test('golden: the reply captured from dig against this server, compressed to offset 12', () => {
  const r = decode(DIG_REPLY);
  assert.is(r.id, 0xe037);
  assert.is(r.flags, FLAG_QR | FLAG_AA | FLAG_RD);
  assert.equal(r.answers, [{ name: 'hello.lab', type: TYPE.A, class: CLASS_IN, ttl: 300, data: '127.0.0.1' }]);
  assert.is(r.edns?.udpPayloadSize, 1232);
  const built: DnsPacket = {
    ...emptyPacket(0xe037, FLAG_QR | FLAG_AA | FLAG_RD),
    questions: [{ name: 'hello.lab', type: TYPE.A, class: CLASS_IN }],
    answers: [{ name: 'hello.lab', type: TYPE.A, class: CLASS_IN, ttl: 300, data: '127.0.0.1' }],
    edns: { udpPayloadSize: 1232, extendedRcode: 0, version: 0, flags: 0, options: [] },
  };
  assert.is(encode(built).toString('hex'), DIG_REPLY.toString('hex'));
  assert.is(DIG_REPLY.indexOf(Buffer.from([0xc0, 0x0c])), 27);
});

test('round trip at offset 10 of a bigger buffer: pointers are relative to the message start', () => {
  const p: DnsPacket = {
    ...emptyPacket(7, FLAG_QR | FLAG_AA),
    questions: [{ name: 'www.lab', type: TYPE.A, class: CLASS_IN }],
    answers: [
      { name: 'www.lab', type: TYPE.CNAME, class: CLASS_IN, ttl: 60, data: 'hello.lab' },
      { name: 'hello.lab', type: TYPE.A, class: CLASS_IN, ttl: 60, data: '127.0.0.1' },
      { name: 'hello.lab', type: TYPE.AAAA, class: CLASS_IN, ttl: 60, data: '2001:db8::1' },
      { name: 'hello.lab', type: TYPE.TXT, class: CLASS_IN, ttl: 60, data: [Buffer.from('a'), Buffer.from(''), Buffer.from('b c')] },
      { name: 'x.hello.lab', type: 99, class: CLASS_IN, ttl: 60, data: Buffer.from([1, 2, 3]) },
    ],
    edns: { udpPayloadSize: 4096, extendedRcode: 0, version: 0, flags: EDNS_FLAG_DO, options: [{ code: 65001, data: Buffer.from('hi') }] },
  };
  const len = encodingLength(p);
  const big = Buffer.alloc(len + 20, 0xee);
  const view = encode(p, big, 10);
  assert.is(view.length, len);
  assert.is(big[9], 0xee);
  assert.is(big[10 + len], 0xee);
  const back = decode(big, { offset: 10, end: 10 + len });
  assert.equal(back, decode(encode(p)));
  assert.is(encode(back).toString('hex'), view.toString('hex'));
  assert.ok(len < encodingLength(p, { compress: false }), 'compression saves bytes');
  assert.equal(decode(encode(p, undefined, 0, { compress: false })), back);
});

test('names: case kept (compression matches exact bytes only), escapes for dots and bytes outside printable ASCII', () => {
  const p: DnsPacket = {
    ...emptyPacket(1, 0),
    questions: [{ name: 'a\\.b.\\000x.LAB', type: TYPE.A, class: CLASS_IN }],
    answers: [{ name: 'Other.lab', type: TYPE.A, class: CLASS_IN, ttl: 1, data: '1.2.3.4' }],
  };
  const bytes = encode(p);
  const d = decode(bytes);
  assert.is(d.questions[0]!.name, 'a\\.b.\\000x.LAB');
  assert.is(d.answers[0]!.name, 'Other.lab', 'lab is not compressed to the question\'s LAB');
  assert.equal(nameToLabels('a\\.b.\\000x.LAB.').map((l) => l.toString('latin1')), ['a.b', '\0x', 'LAB']);
});

test('IPv6 text: RFC 5952 on decode, embedded IPv4 accepted on encode', () => {
  const cases: [string, string][] = [['::1', '::1'], ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'], ['::ffff:1.2.3.4', '::ffff:102:304'], ['fe80::', 'fe80::'], ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8']];
  for (const [input, want] of cases) {
    const p = { ...emptyPacket(0, 0), answers: [{ name: 'a', type: TYPE.AAAA, class: CLASS_IN, ttl: 0, data: input }] };
    assert.is(decode(encode(p)).answers[0]!.data, want, input);
  }
});

test('encode rejects what the wire cannot carry, by code', () => {
  const q = (name: string) => ({ ...emptyPacket(0, 0), questions: [{ name, type: TYPE.A, class: CLASS_IN }] });
  throwsCode(() => encode(q('x'.repeat(64) + '.lab')), 'ERR_DNS_LABEL_TOO_LONG');
  throwsCode(() => encode(q(Array(4).fill('y'.repeat(63)).join('.'))), 'ERR_DNS_NAME_TOO_LONG');
  throwsCode(() => encode(q('a..lab')), 'ERR_DNS_EMPTY_LABEL');
  const rr = (type: number, data: string | Buffer[]) => ({ ...emptyPacket(0, 0), answers: [{ name: 'a', type, class: CLASS_IN, ttl: 0, data }] });
  throwsCode(() => encode(rr(TYPE.A, '1.2.3')), 'ERR_DNS_BAD_RDATA');
  throwsCode(() => encode(rr(TYPE.AAAA, '1::2::3')), 'ERR_DNS_BAD_RDATA');
  throwsCode(() => encode(rr(TYPE.TXT, [Buffer.alloc(256)])), 'ERR_DNS_BAD_RDATA');
  throwsCode(() => encode(q('a'), Buffer.alloc(10)), 'ERR_DNS_MESSAGE_TOO_LARGE');
  // 63-byte labels and a 255-byte name are the limits themselves, so they pass.
  assert.is(nameToLabels(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.')).length, 4);
});

// Every way a length, pointer or count can lie, with its code (dns-packet's hostile-name tables, extended).
const Q = '0001 0001'; // QTYPE A, QCLASS IN
const hostile: [string, Buffer, string, object?][] = [
  ['empty datagram', Buffer.alloc(0), 'ERR_DNS_TRUNCATED'],
  ['header cut at 11 bytes', header(1, 0, 1).subarray(0, 11), 'ERR_DNS_TRUNCATED'],
  ['QDCOUNT 1 and nothing after the header', header(1, 0, 1), 'ERR_DNS_TRUNCATED'],
  ['label length past the end', msg(header(1, 0, 1), '05 6162'), 'ERR_DNS_TRUNCATED'],
  ['name without its root byte', msg(header(1, 0, 1), '01 61'), 'ERR_DNS_TRUNCATED'],
  ['question without QTYPE/QCLASS', msg(header(1, 0, 1), '01 61 00 00'), 'ERR_DNS_TRUNCATED'],
  ['pointer cut to one byte', msg(header(1, 0, 1), 'c0'), 'ERR_DNS_TRUNCATED'],
  ['pointer to itself', msg(header(1, 0, 1), 'c00c', Q), 'ERR_DNS_POINTER_FORWARD'],
  ['pointer forward', msg(header(1, 0, 1), 'c010', Q, '00'), 'ERR_DNS_POINTER_FORWARD'],
  ['pointer past the end', msg(header(1, 0, 1), 'ffff', Q), 'ERR_DNS_POINTER_FORWARD'],
  ['pointer loop a -> back to a', msg(header(1, 0, 1), '01 61 c00c', Q), 'ERR_DNS_POINTER_LOOP'],
  // 12: a 13-byte label hiding a label at 17 and a pointer at 22; 26 jumps back to 17, 22 back to 12: a cycle.
  ['two-pointer cycle hidden inside a label', msg(header(1, 0, 1), '0d 61616161 04 61616161 c00c 6161', 'c011', Q), 'ERR_DNS_POINTER_LOOP'],
  ['label length 64', msg(header(1, 0, 1), '40', Buffer.alloc(64, 0x61), '00', Q), 'ERR_DNS_LABEL_TOO_LONG'],
  ['reserved label type 0x80', msg(header(1, 0, 1), '81 61 00', Q), 'ERR_DNS_LABEL_TOO_LONG'],
  ['name over 255 bytes', msg(header(1, 0, 1), ...Array(4).fill(msg([63], Buffer.alloc(63, 0x61))), '00', Q), 'ERR_DNS_NAME_TOO_LONG'],
  ['name over 255 bytes through pointers', msg(header(1, 0, 2), ...Array(3).fill(msg([63], Buffer.alloc(63, 0x61))), '00', Q, '3f', Buffer.alloc(63, 0x62), 'c00c', Q), 'ERR_DNS_NAME_TOO_LONG'],
  ['trailing garbage', msg(header(1, 0, 1), '01 61 00', Q, 'ff'), 'ERR_DNS_TRAILING_BYTES'],
  ['A with RDLENGTH 5', msg(header(1, FLAG_QR, 0, 1), '00 0001 0001 00000000 0005 0102030405'), 'ERR_DNS_BAD_RDATA'],
  ['AAAA with RDLENGTH 4', msg(header(1, FLAG_QR, 0, 1), '00 001c 0001 00000000 0004 01020304'), 'ERR_DNS_BAD_RDATA'],
  ['RDLENGTH past the end', msg(header(1, FLAG_QR, 0, 1), '00 0010 0001 00000000 0010 0161'), 'ERR_DNS_TRUNCATED'],
  ['TXT string past RDLENGTH', msg(header(1, FLAG_QR, 0, 1), '00 0010 0001 00000000 0002 0561'), 'ERR_DNS_BAD_RDATA'],
  ['TXT with no string', msg(header(1, FLAG_QR, 0, 1), '00 0010 0001 00000000 0000'), 'ERR_DNS_BAD_RDATA'],
  ['CNAME name shorter than RDLENGTH', msg(header(1, FLAG_QR, 0, 1), '00 0005 0001 00000000 0003 00 0000'), 'ERR_DNS_BAD_RDATA'],
  ['CNAME name longer than RDLENGTH', msg(header(1, FLAG_QR, 0, 1), '00 0005 0001 00000000 0001 0161 00'), 'ERR_DNS_BAD_RDATA'],
  ['two OPT records', msg(header(1, 0, 0, 0, 0, 2), '00 0029 0200 00000000 0000', '00 0029 0200 00000000 0000'), 'ERR_DNS_BAD_OPT'],
  ['OPT with a name', msg(header(1, 0, 0, 0, 0, 1), '0161 00 0029 0200 00000000 0000'), 'ERR_DNS_BAD_OPT'],
  ['OPT in the answer section', msg(header(1, 0, 0, 1), '00 0029 0200 00000000 0000'), 'ERR_DNS_BAD_OPT'],
  ['EDNS option past RDLENGTH', msg(header(1, 0, 0, 0, 0, 1), '00 0029 0200 00000000 0006 000a 0008 0000'), 'ERR_DNS_BAD_OPT'],
  ['QDCOUNT 65535 in a 65,535-byte datagram', msg(header(1, 0, 65535), Buffer.alloc(65535 - 12)), 'ERR_DNS_TRUNCATED'],
  ['a 65,535-byte datagram of one question and zeros', msg(header(1, 0, 1), '01 61 00', Q, Buffer.alloc(65535 - 12 - 7)), 'ERR_DNS_TRAILING_BYTES'],
  ['a 65,535-byte datagram of 0xc0', Buffer.alloc(65535, 0xc0), 'ERR_DNS_POINTER_FORWARD'],
  ['pointer in a query when pointers are forbidden', msg(header(1, 0, 1, 0, 0, 1), '01 61 00', Q, 'c00c 0001 0001 00000000 0004 01020304'), 'ERR_DNS_POINTER_IN_QUERY', { forbidPointers: true }],
];

for (const [what, bytes, code, options] of hostile) {
  test(`hostile: ${what} -> ${code}`, () => {
    let thrown: unknown;
    try {
      decode(bytes, options);
    } catch (err) {
      thrown = err;
    }
    assert.ok(isCoded(thrown), `${what}: expected a coded error, got ${String(thrown)}`);
    assert.is((thrown as { code: string }).code, code, what);
    // The annotator never throws either: it names the error instead.
    const lines = annotateMessage(bytes);
    assert.ok(lines.length > 0 && lines[lines.length - 1]!.startsWith('malformed:') || options !== undefined, what);
  });
}

test('a long chain of backward pointers decodes', () => {
  // Names at 12 (a), then b->12, c->(b), d->(c): each pointer goes back past the previous target.
  const p = msg(header(1, 0, 4), '01 61 00', Q, '01 62 c00c', Q, '01 63 c013', Q, '01 64 c01b', Q);
  assert.equal(decode(p).questions.map((q) => q.name), ['a', 'b.a', 'c.b.a', 'd.c.b.a']);
});

test('annotation names every header field, each flag bit and the compression pointer', () => {
  const lines = annotateMessage(DIG_REPLY);
  assert.is(lines[0], '0000  id=0xe037 (57399)');
  assert.is(lines[1], '0002  flags=0x8500 QR=1 opcode=QUERY AA=1 TC=0 RD=1 RA=0 Z=0 AD=0 CD=0 rcode=NOERROR');
  assert.is(lines[2], '0004  qdcount=1 ancount=1 nscount=0 arcount=1');
  assert.ok(lines.some((l) => l.startsWith('001b  answer name=hello.lab.  [pointer c0 0c -> offset 12 (0x000c)')), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('rdata 127.0.0.1')));
  assert.ok(lines.some((l) => l.includes('OPT udp-payload-size=1232')));
});

test('TCP framing: each fixture fed whole, and one byte at a time, gives the same messages', () => {
  const stream = Buffer.concat([tcpPrefix(DIG_QUERY.length), DIG_QUERY, tcpPrefix(DIG_REPLY.length), DIG_REPLY, tcpPrefix(0)]);
  const whole = new DnsTcpDecoder().push(stream);
  assert.equal(whole.map((m) => m.toString('hex')), [DIG_QUERY.toString('hex'), DIG_REPLY.toString('hex'), '']);
  const d = new DnsTcpDecoder();
  const bytewise: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) bytewise.push(...d.push(stream.subarray(i, i + 1)));
  assert.equal(bytewise.map((m) => m.toString('hex')), whole.map((m) => m.toString('hex')));
  assert.is(d.bufferedBytes, 0);
  // Within one chunk the messages are views, not copies.
  assert.is(whole[0]!.buffer, stream.buffer);
  throwsCode(() => tcpPrefix(65536), 'ERR_DNS_MESSAGE_TOO_LARGE');
});

test('the TCP annotator follows messages split across chunks', () => {
  const annotate = dnsAnnotator('tcp')();
  const stream = Buffer.concat([tcpPrefix(DIG_QUERY.length), DIG_QUERY]);
  assert.equal(annotate(stream.subarray(0, 5)), { notes: [], units: [] });
  const { notes, units } = annotate(stream.subarray(5));
  assert.ok(notes[0]!.startsWith(`length prefix=${DIG_QUERY.length} `), notes[0]);
  assert.is(notes[1], '0000  id=0xe037 (57399)');
  assert.equal(units, ['query id=0xe037 hello.lab A']);
});

test('one summary line per message, for --diagram: query, reply with its answer count or rcode, TC, malformed', () => {
  const annotate = dnsAnnotator('udp')();
  assert.equal(annotate(DIG_REPLY).units, ['reply id=0xe037 hello.lab A an=1']);
  const tc = Buffer.from(DIG_REPLY);
  tc.writeUInt16BE(tc.readUInt16BE(2) | FLAG_TC, 2);
  assert.match(annotate(tc).units[0]!, / TC$/);
  const nx = Buffer.from(DIG_REPLY);
  nx.writeUInt16BE((nx.readUInt16BE(2) & ~0xf) | 3, 2);
  assert.match(summarizeMessage(nx), /^reply id=0xe037 hello\.lab A NXDOMAIN/);
  assert.is(summarizeMessage(DIG_QUERY.subarray(0, 14)), 'query id=0xe037 malformed (ERR_DNS_TRUNCATED)');
  assert.is(summarizeMessage(Buffer.from([1, 2, 3])), 'malformed: 3 bytes (ERR_DNS_TRUNCATED)');
});

test('parseType accepts names, TYPEnn and numbers', () => {
  assert.is(parseType('aaaa'), TYPE.AAAA);
  assert.is(parseType('TYPE99'), 99);
  assert.is(parseType('16'), TYPE.TXT);
  assert.is(parseType('nope'), undefined);
});

test.run();
