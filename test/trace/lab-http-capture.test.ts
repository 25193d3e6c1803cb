// An HTTP lab seen by tshark. One short run of `labs/08-polling-compared.ts --json --trace --pcap FILE
// --diagram` (a 1.2 s job watched by short polling, long polling and SSE) carries Content-Length responses
// (202, 200) and a chunked event stream that ends with its last chunk. The lab says which messages and
// chunks it sent (its `wire` events); the pcap it wrote itself, decoded by tshark's own HTTP dissector,
// must hold exactly those, in order, with the chunked body reassembled; --diagram draws one arrow each.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../_helpers.ts';
import { fieldsOf, problemsOf } from './_tshark.ts';
import { endpointPort, runLabWithCapture, type CaptureRun, type LabWireEvent } from './_lab-json.ts';

const test = suite('HTTP lab capture');
const dir = mkdtempSync(join(tmpdir(), 'wirelab-lab-http-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const own = join(dir, 'own.pcap');
const FIELDS = ['tcp.srcport', 'tcp.dstport', 'http.request.method', 'http.request.uri', 'http.response.code', 'http.response_for.uri', 'http.transfer_encoding', 'http.chunk_size', 'http.file_data'];

type Run = CaptureRun;
let ran: Promise<Run> | undefined;

function run(): Promise<Run> {
  ran ??= (async () => {
    const { events, wire, arrows } = await runLabWithCapture('08-polling-compared', ['--job-ms', '1200', '--interval', '300'], own);
    const port = endpointPort(String(events.find((e) => e.event === 'listening')!.url));
    return { wire, arrows, decodeAs: [`tcp.port==${port},http`] };
  })();
  return ran;
}

const dirOf = (e: LabWireEvent) => `${endpointPort(e.local)}>${endpointPort(e.remote)}`;

/** Per direction, the request lines (`GET /uri`) and statuses (`200`) the lab says it sent, in order. */
function said(wire: LabWireEvent[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const e of wire) {
    if (e.kind !== 'send') continue;
    for (const note of e.notes ?? []) {
      const req = /^(\S+) (\S+) HTTP\/1\.1 \(/.exec(note);
      const res = /^HTTP\/1\.1 (\d{3}) /.exec(note);
      if (!req && !res) continue;
      if (!m.has(dirOf(e))) m.set(dirOf(e), []);
      m.get(dirOf(e))!.push(req ? `${req[1]} ${req[2]}` : res![1]!);
    }
  }
  return m;
}

/** The same, as tshark decodes the pcap (a segment may hold several messages). */
function decoded(rows: Record<string, string>[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const r of rows) {
    const k = `${r['tcp.srcport']}>${r['tcp.dstport']}`;
    const uris = r['http.request.uri']!.split('|');
    const items = [
      ...(r['http.request.method'] ? r['http.request.method'].split('|').map((method, i) => `${method} ${uris[i]}`) : []),
      ...(r['http.response.code'] ? r['http.response.code'].split('|') : []),
    ];
    if (items.length === 0) continue;
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(...items);
  }
  return m;
}

test('the pcap opens cleanly: no malformed packet, no expert warning, no missing segment, good checksums', async () => {
  if (!needTool('tshark', 'pcap of an HTTP lab')) return;
  const r = await run();
  assert.equal(problemsOf(own, r.decodeAs), []);
});

test('every request and response the lab says it sent decodes as HTTP: method and URI, status, in order per direction', async () => {
  if (!needTool('tshark', 'pcap of an HTTP lab')) return;
  const r = await run();
  const want = said(r.wire);
  const requests = [...want.values()].flat().filter((x) => !/^\d{3}$/.test(x));
  // POST /jobs, several short polls, one long poll, one event stream
  assert.ok(requests.length >= 5 && requests.includes('POST /jobs') && requests.some((q) => q.endsWith('/events')), requests.join('\n'));
  const got = decoded(fieldsOf(own, r.decodeAs, FIELDS));
  assert.equal([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, items] of want) assert.equal(got.get(k), items, `direction ${k}`);
});

test('the chunked event stream is reassembled by tshark: the chunk sizes the lab sent, then the body', async () => {
  if (!needTool('tshark', 'pcap of an HTTP lab')) return;
  const r = await run();
  const chunked = fieldsOf(own, r.decodeAs, FIELDS).filter((row) => row['http.transfer_encoding'] === 'chunked');
  assert.is(chunked.length, 1, 'one chunked response');
  const row = chunked[0]!;
  assert.is(row['http.response.code'], '200');
  assert.ok(row['http.response_for.uri']!.endsWith('/events'), row['http.response_for.uri']);
  const sizes = r.wire.filter((e) => e.kind === 'send').flatMap((e) => (e.notes ?? []).flatMap((n) => {
    const m = /^chunk size 0x([0-9a-f]+)/.exec(n);
    return m ? [String(parseInt(m[1]!, 16))] : [];
  }));
  assert.ok(sizes.length >= 3 && sizes.at(-1) === '0', sizes.join(' '));
  assert.equal(row['http.chunk_size']!.split('|'), sizes);
  // The de-chunked body: the SSE events themselves, ending with the job's `done` event.
  assert.ok(row['http.file_data']!.startsWith('retry: '), row['http.file_data']!.slice(0, 80));
  assert.match(row['http.file_data']!, /event: done\\ndata: \{[^}]*"state":"done"/);
});

test('--diagram: one arrow per HTTP message and per chunk, in order, labelled `GET /jobs/ID`, `202 Accepted`, `chunk N`', async () => {
  const r = await run();
  const labels = r.arrows.filter((a) => a.kind === 'data').map((a) => a.label);
  const units = r.wire.filter((e) => e.kind === 'send').flatMap((e) => e.units ?? []);
  assert.equal(labels, units);
  const messages = [...said(r.wire).values()].flat().length;
  const chunks = units.filter((u) => /^(chunk \d+|last chunk)$/.test(u)).length;
  assert.is(labels.length, messages + chunks);
  for (const l of labels) assert.match(l, /^((GET|POST) \/\S*|\d{3} [A-Za-z ]+|chunk \d+|last chunk)$/);
  assert.ok(labels.includes('202 Accepted') && labels.includes('200 OK chunked') && labels.includes('last chunk'), labels.join('\n'));
});

test.run();
