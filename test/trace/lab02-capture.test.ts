// Lab 02's demo seen by tshark. One run of `labs/02-udp-query-id.ts --json --trace --pcap FILE --diagram`:
// the lab says which DNS messages it sent and received (its `wire` events, one unit per message), and the
// pcap it wrote itself must decode as exactly those messages, in order, over UDP and over TCP (the TC
// retry); its diagram draws one arrow per message.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../_helpers.ts';
import { fieldsOf, problemsOf } from './_tshark.ts';
import { endpointPort, runLabWithCapture, type CaptureRun, type LabWireEvent } from './_lab-json.ts';

const test = suite('lab 02 capture');
const dir = mkdtempSync(join(tmpdir(), 'wirelab-lab02-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const own = join(dir, 'own.pcap');
const FIELDS = ['udp.srcport', 'udp.dstport', 'tcp.srcport', 'tcp.dstport', 'dns.id', 'dns.flags.response', 'dns.flags.truncated', 'dns.qry.name'];

type Run = CaptureRun;
let ran: Promise<Run> | undefined;

/** The demo, once for all tests. Every UDP port it used and its TCP server ports are decoded as DNS. */
function run(): Promise<Run> {
  ran ??= (async () => {
    const { wire, arrows } = await runLabWithCapture('02-udp-query-id', [], own);
    const udpPorts = new Set(wire.filter((e) => e.transport === 'udp').flatMap((e) => [endpointPort(e.local), endpointPort(e.remote)]));
    const tcpServers = new Set(wire.filter((e) => e.transport === 'tcp' && e.side === 'server').map((e) => endpointPort(e.local)));
    return { wire, arrows, decodeAs: [...[...udpPorts].map((p) => `udp.port==${p},dns`), ...[...tcpServers].map((p) => `tcp.port==${p},dns`)] };
  })();
  return ran;
}

/** `SRC>DST id=0x1a2b` of each DNS message of a unit label such as `query id=0x1a2b hello.lab A`. */
const said = (src: string, dst: string, unit: string) => `${endpointPort(src)}>${endpointPort(dst)} id=${/id=(0x[0-9a-f]{4})/.exec(unit)![1]}`;

/**
 * Each message once, as the pcap holds it: from its sender's record, or from its receiver's when the
 * sender is not the lab's (the demo's forger sends from an untapped socket).
 */
function expected(wire: LabWireEvent[], transport?: 'udp' | 'tcp'): string[] {
  const events = wire.filter((e) => transport === undefined || e.transport === transport);
  const tapped = new Set(events.map((e) => e.local));
  return events.flatMap((e) => {
    if (e.kind === 'send') return (e.units ?? []).map((u) => said(e.local, e.remote, u));
    if (e.kind === 'recv' && !tapped.has(e.remote)) return (e.units ?? []).map((u) => said(e.remote, e.local, u));
    return [];
  });
}

/** `SRC>DST id=0x1a2b` of each DNS message tshark decodes, in packet order (a segment may hold several). */
function decoded(rows: Record<string, string>[], transport: 'udp' | 'tcp'): string[] {
  return rows.filter((r) => r[`${transport}.srcport`] && r['dns.id']).flatMap((r) =>
    r['dns.id']!.split('|').map((id) => `${r[`${transport}.srcport`]}>${r[`${transport}.dstport`]} id=${id}`));
}

test('the pcap opens cleanly: no malformed packet, no expert warning, good checksums, every UDP datagram decodes as DNS', async () => {
  if (!needTool('tshark', 'pcap of the DNS lab')) return;
  const r = await run();
  assert.equal(problemsOf(own, r.decodeAs), []);
  const udp = fieldsOf(own, r.decodeAs, FIELDS).filter((row) => row['udp.srcport']);
  assert.ok(udp.length >= 20, `${udp.length} datagrams`);
  assert.equal(udp.filter((row) => !row['dns.id']), [], 'datagrams tshark did not read as DNS');
});

test('UDP: the DNS ids tshark shows are exactly those the lab says it sent and received, in order, each once', async () => {
  if (!needTool('tshark', 'pcap of the DNS lab')) return;
  const r = await run();
  const want = expected(r.wire, 'udp');
  assert.ok(want.length >= 20, want.join('\n'));
  assert.equal(decoded(fieldsOf(own, r.decodeAs, FIELDS), 'udp'), want);
});

test('TCP: the retry after TC decodes as DNS over TCP, the same question, the ids the lab says', async () => {
  if (!needTool('tshark', 'pcap of the DNS lab')) return;
  const r = await run();
  const rows = fieldsOf(own, r.decodeAs, FIELDS);
  const want = expected(r.wire, 'tcp');
  assert.is(want.length, 2, 'one query and its reply over TCP');
  assert.equal(decoded(rows, 'tcp'), want);
  const truncated = rows.filter((row) => row['udp.srcport'] && row['dns.flags.truncated'] === '1');
  assert.is(truncated.length, 1, 'one UDP reply with TC set');
  const overTcp = rows.filter((row) => row['tcp.srcport'] && row['dns.id']);
  assert.equal(overTcp.map((row) => [row['dns.flags.response'], row['dns.qry.name']]), [['0', truncated[0]!['dns.qry.name']], ['1', truncated[0]!['dns.qry.name']]]);
});

test('--diagram: one arrow per DNS message, in the same order, labelled with its id and question', async () => {
  const r = await run();
  const data = r.arrows.filter((a) => a.kind === 'data');
  assert.equal(data.map((a) => `id=${/id=(0x[0-9a-f]{4})/.exec(a.label)?.[1]}`), expected(r.wire).map((m) => m.split(' ')[1]!));
  assert.ok(data.every((a) => /^(query|reply) id=0x[0-9a-f]{4} \S+ (A|AAAA|TXT)\b/.test(a.label)), data.map((a) => a.label).join('\n'));
});

test.run();
