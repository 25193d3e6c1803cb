// Lab 01's demo seen by the real tools. One run of `npm run capture -- 01 REAL -- --json --trace --pcap OWN`
// gives three accounts of the same traffic: what the lab says it sent (its --trace --json `wire` events,
// one note per completed frame), what tcpdump captured on lo, and the pcap the lab wrote itself. tshark,
// with the dissector, must read the same frames, in order, from both files.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tshark } from '../../src/trace/capture.ts';
import { needTool } from '../_helpers.ts';
import { framesOf, problemsOf, type DecodedFrame } from './_tshark.ts';
import { endpointPort, parseLabJson } from './_lab-json.ts';

const test = suite('lab 01 capture');
const dir = mkdtempSync(join(tmpdir(), 'wirelab-lab01-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const real = join(dir, 'real.pcap');
const own = join(dir, 'own.pcap');
let said: Map<string, string[]> | undefined;
let serverPort = 0;
let badStream = '';
let ran = false;

/** `SRC>DST` port pair of one direction of one connection. */
const dirKey = (a: number, b: number) => `${a}>${b}`;
const frameText = (f: DecodedFrame) => `${f.type}:${f.id}${f.method ? ` ${f.method}` : ''}`;
const TYPES: Record<string, number> = { REQUEST: 1, RESPONSE: 2, ERROR: 3, PUSH: 4, PING: 5, PONG: 6, CANCEL: 7 };

/** Per direction, the frames tshark decoded, as `type:id method`. */
function streams(file: string, checksums: boolean): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const f of framesOf(file, [`tcp.port==${serverPort},wirelab`], { checksums })) {
    const k = dirKey(f.srcport, f.dstport);
    if (k === badStream) continue; // the wrong-protocol peer: checked through its expert error
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(frameText(f));
  }
  return m;
}

function run(): boolean {
  if (ran) return said !== undefined;
  ran = true;
  if (!needTool('tcpdump', 'capture of the lab') || !needTool('tshark', 'dissector')) return false;
  if (process.getuid?.() !== 0) {
    process.stderr.write('\n!!! SKIPPED: lab 01 capture test needs root to capture on lo\n');
    return false;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/capture.ts', '01', real, '--', '--json', '--trace', '--pcap', own], { encoding: 'utf8', timeout: 90_000 });
  assert.is(r.status, 0, r.stderr);
  said = new Map();
  const { events, wire } = parseLabJson(r.stdout);
  const listening = events.filter((e) => e.event === 'listening').at(-1);
  if (listening) serverPort = endpointPort(String(listening.url));
  for (const e of wire) {
    if (e.kind !== 'send') continue;
    const k = dirKey(endpointPort(e.local), endpointPort(e.remote));
    for (const note of e.notes ?? []) {
      if (note.startsWith('framing error')) {
        badStream = k;
        continue;
      }
      const m = /^version=1 type=(\w+) id=(\d+) length=\d+(?: method=(\S+))?/.exec(note)!;
      if (!said.has(k)) said.set(k, []);
      said.get(k)!.push(`${TYPES[m[1]!]}:${m[2]}${m[1] === 'REQUEST' && m[3] ? ` ${m[3]}` : ''}`);
    }
  }
  assert.ok(serverPort > 0, 'the demo announced its port');
  assert.ok(badStream !== '', 'the demo sent its wrong-protocol bytes');
  return true;
}

test('tcpdump capture of the demo, decoded by tshark with the dissector: exactly the frames the lab says it sent, in order', () => {
  if (!run()) return;
  const got = streams(real, false);
  assert.equal([...got.keys()].sort(), [...said!.keys()].sort());
  for (const [k, frames] of said!) assert.equal(got.get(k), frames, `direction ${k}`);
  // The fragmentation part really reached the wire as one-byte segments, and the coalesced part as one.
  const one = tshark(real, { dissector: false, args: ['-Y', `tcp.dstport == ${serverPort} && tcp.len == 1`, '-T', 'fields', '-e', 'frame.number'] });
  assert.ok(one.stdout.trim().split('\n').length >= 20, 'one-byte segments of the fragmented frame');
  assert.equal(problemsOf(real, [`tcp.port==${serverPort},wirelab`], { checksums: false, allow: /^Bad frame version 71 \(expected 1\)$/ }), []);
});

test('the wrong-protocol peer\'s bytes show the bad-version expert error, in both captures', () => {
  if (!run()) return;
  for (const file of [real, own]) {
    const r = tshark(file, { decodeAs: [`tcp.port==${serverPort},wirelab`], args: ['-Y', '_ws.expert.severity == error', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', '_ws.expert.message'] });
    const [src, dst] = badStream.split('>');
    assert.equal(r.stdout.trim().split('\n'), [`${src}\t${dst}\tBad frame version 71 (expected 1)`], file);
  }
});

test('the lab\'s own --pcap of the same run: no malformed packet, no TCP analysis warning, good checksums, the same frames as the tcpdump capture', () => {
  if (!run()) return;
  assert.equal(problemsOf(own, [`tcp.port==${serverPort},wirelab`], { allow: /^Bad frame version 71 \(expected 1\)$/ }), []);
  const mine = streams(own, true);
  const theirs = streams(real, false);
  assert.equal([...mine.keys()].sort(), [...theirs.keys()].sort());
  for (const [k, frames] of theirs) assert.equal(mine.get(k), frames, `direction ${k}`);
  // Reassembled: no frame left in parts.
  const parts = tshark(own, { decodeAs: [`tcp.port==${serverPort},wirelab`], args: ['-Y', 'wirelab && _ws.expert.message contains "Part of a frame"'] });
  assert.is(parts.stdout.trim(), '');
});
test.run();
