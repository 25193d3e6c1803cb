import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildDiagram, renderDiagram, shortLabel } from '../../src/trace/diagram.ts';
import { Recorder } from '../../src/trace/recorder.ts';
import { DnsServer } from '../../src/patterns/dns-server.ts';
import { DnsClient } from '../../src/patterns/dns-client.ts';
import { TYPE } from '../../src/wire/dns.ts';
import { conversation } from './_traffic.ts';

const test = suite('trace/diagram');

test('short labels: type, id and method of a REQUEST; the code of an ERROR; other notes kept', () => {
  assert.is(shortLabel('version=1 type=REQUEST id=3 length=9 method=echo body="hello"'), 'REQUEST id=3 echo');
  assert.is(shortLabel('version=1 type=ERROR id=0 length=13 code=1 message="bad version"'), 'ERROR id=0 code=1');
  assert.is(shortLabel('version=1 type=RESPONSE id=7 length=5 payload="hello"'), 'RESPONSE id=7');
  assert.is(shortLabel('id=0xbeef QUERY A example.com'), 'id=0xbeef QUERY A example.com');
});

const expected = [
  ['client', 'open', 'connect'],
  ['client', 'data', 'REQUEST id=1 echo'],
  ['server', 'data', 'RESPONSE id=1'],
  ['client', 'data', 'REQUEST id=2 echo (in N writes)'],
  ['server', 'data', 'RESPONSE id=2'],
  ['client', 'data', 'REQUEST id=3 echo (1/3 in one write)'],
  ['client', 'data', 'REQUEST id=4 sleep (2/3 in one write)'],
  ['client', 'data', 'REQUEST id=5 fail (3/3 in one write)'],
];

for (const [name, opts] of [['both ends tapped', {}], ['only the server tapped', { tapClient: false }]] as const) {
  test(`one arrow per frame, from the recorded events, ${name}`, async () => {
    const rec = new Recorder(true);
    await conversation(rec, opts);
    const { servers, arrows } = buildDiagram(rec.events);
    assert.is(servers.length, 1);
    const got = arrows.map((a) => [a.from, a.kind, a.label.replace(/^connect .*/, 'connect').replace(/in \d+ (writes|reads)/, 'in N writes').replace('in one read', 'in one write')]);
    assert.equal(got.slice(0, expected.length), expected);
    // The rest: the three responses in some chunking, then one close.
    assert.equal(got.slice(expected.length, -1).map((a) => a[2]), ['RESPONSE id=3', 'RESPONSE id=4', 'RESPONSE id=5']);
    assert.equal(got.at(-1)!.slice(1), ['close', 'close']);
    const times = arrows.map((a) => a.t);
    assert.equal(times, [...times].sort((a, b) => a - b), 'time offsets in order');
    assert.is(times[0], 0);
  });
}

test('rendered: a header with both columns, one line per arrow with its time offset, right arrows and left arrows', async () => {
  const rec = new Recorder(true);
  const conv = await conversation(rec);
  const text = renderDiagram(rec.events, { width: 78 });
  const lines = text.trimEnd().split('\n');
  assert.ok(lines[0]!.includes('client') && lines[0]!.includes(`server 127.0.0.1:${conv.port}`), lines[0]);
  const arrowLines = lines.slice(2);
  assert.is(arrowLines.length, buildDiagram(rec.events).arrows.length);
  assert.ok(arrowLines.every((l) => /^\s*\d+\.\d{3}ms #1 /.test(l) && l.length <= 78), text);
  assert.match(arrowLines[1]!, /\|-+ REQUEST id=1 echo -+>\|$/);
  assert.match(arrowLines[2]!, /\|<-+ RESPONSE id=1 -+\|$/);
  assert.match(arrowLines[0]!, /\|=+ connect 127\.0\.0\.1:\d+ =+>\|$/);
});

test('chunks without an annotator draw one arrow per chunk with its size', () => {
  const rec = new Recorder(true);
  const ep = (port: number) => ({ address: '127.0.0.1', port });
  rec.record({ kind: 'send', transport: 'udp', side: 'client', conn: 1, local: ep(5000), remote: ep(53), data: Buffer.alloc(29) });
  rec.record({ kind: 'recv', transport: 'udp', side: 'client', conn: 1, local: ep(5000), remote: ep(53), data: Buffer.alloc(45) });
  assert.equal(buildDiagram(rec.events).arrows.map((a) => [a.from, a.label]), [['client', '29 bytes'], ['server', '45 bytes']]);
});

test('events recorded in one synchronous run share a batch number; a timer tick starts a new batch', async () => {
  const rec = new Recorder(true);
  const ep = { address: '127.0.0.1', port: 1 };
  const send = () => rec.record({ kind: 'send', transport: 'tcp', side: 'client', conn: 1, local: ep, remote: ep, data: Buffer.from('x') });
  send();
  send();
  await new Promise((r) => setTimeout(r, 1));
  send();
  const [a, b, c] = rec.events.map((e) => e.batch);
  assert.is(a, b);
  assert.ok(c! > a!);
});

const hex = (id: number) => `0x${id.toString(16).padStart(4, '0')}`;

test('DNS: one arrow per datagram or message, labelled with its id and question; the TC retry over TCP in the same server column', async () => {
  const rec = new Recorder(true);
  const server = await DnsServer.start({ host: '127.0.0.1', recorder: rec });
  const client = await new DnsClient({ server: server.address, recorder: rec }).start();
  try {
    const a = await client.query('hello.lab', { type: TYPE.A });
    const big = await client.query('big.lab', { type: TYPE.TXT });
    assert.is(big.transport, 'tcp');
    const { servers, arrows } = buildDiagram(rec.events);
    assert.is(servers.length, 1, 'UDP and TCP on one port: one column');
    const data = arrows.filter((x) => x.kind === 'data').map((x) => [x.from, x.label] as const);
    const truncated = data[2]?.[1] ?? '';
    assert.match(truncated, /^query id=0x[0-9a-f]{4} big\.lab TXT$/);
    assert.equal(data, [
      ['client', `query id=${hex(a.id)} hello.lab A`],
      ['server', `reply id=${hex(a.id)} hello.lab A an=1`],
      ['client', truncated],
      ['server', truncated.replace('query', 'reply') + ' an=0 TC'],
      ['client', `query id=${hex(big.id)} big.lab TXT`],
      ['server', `reply id=${hex(big.id)} big.lab TXT an=1`],
    ]);
    assert.is(arrows.filter((x) => x.kind === 'open').length, 1, 'one TCP connect, for the retry');
  } finally {
    client.close();
    await server.close();
  }
});

test('rendered with many servers: short column names and a legend; a label too long for its arrow follows the arrowhead', () => {
  const rec = new Recorder(true);
  const ep = (port: number) => ({ address: '127.0.0.1', port });
  for (let i = 0; i < 6; i++) {
    rec.record({ kind: 'send', transport: 'udp', side: 'client', conn: 1, local: ep(5000), remote: ep(40000 + i), data: Buffer.alloc(29), units: [`query id=0x000${i} hello.lab A`] });
  }
  const lines = renderDiagram(rec.events, { width: 78 }).trimEnd().split('\n');
  assert.equal(lines.slice(0, 6).map((l) => l.trim()), [0, 1, 2, 3, 4, 5].map((i) => `s${i + 1} = server 127.0.0.1:${40000 + i}`));
  assert.match(lines[6]!, /client +s1 +s2 +s3 +s4 +s5 +s6$/);
  assert.match(lines[8]!, /\|-+>\| query id=0x0000 hello\.lab A/);
  assert.ok(lines.every((l) => l.length <= 78), lines.join('\n'));
});

test('no traffic: says so', () => {
  assert.is(renderDiagram([]), '(no traffic recorded)\n');
});
test.run();
