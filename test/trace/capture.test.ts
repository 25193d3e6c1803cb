// The dissector against the real tools: traffic over real loopback TCP, captured by tcpdump, decoded by
// tshark with native-notes/wireshark/wirelab.lua.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect } from 'node:net';
import { startCapture, tshark, type Capture } from '../../src/trace/capture.ts';
import { encodePcap } from '../../src/trace/pcap.ts';
import { Recorder } from '../../src/trace/recorder.ts';
import { FrameType } from '../../src/wire/frame.ts';
import { needTool } from '../_helpers.ts';
import { conversation, frameBytes, request, sleep } from './_traffic.ts';
import { framesOf, problemsOf } from './_tshark.ts';

const test = suite('trace/capture');
const dir = mkdtempSync(join(tmpdir(), 'wirelab-capture-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const tools = () => needTool('tcpdump', 'loopback capture') && needTool('tshark', 'dissector');

/** Sends raw bytes over a real connection while tcpdump captures it; returns the capture file and port. */
async function captureRaw(name: string, chunks: Buffer[]): Promise<{ file: string; port: number }> {
  const server = createServer((s) => {
    s.on('data', () => {});
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const file = join(dir, `${name}.pcap`);
  const capture = await startCapture({ file, filter: `tcp port ${port}` });
  try {
    const c = connect({ port, host: '127.0.0.1', noDelay: true });
    await new Promise((r) => c.once('connect', r));
    for (const chunk of chunks) {
      c.write(chunk);
      await sleep(5);
    }
    await new Promise<void>((r) => c.end(() => r()));
    await sleep(20);
    c.destroy();
  } finally {
    await sleep(50);
    await capture.stop();
    await new Promise<void>((r) => server.close(() => r()));
  }
  return { file, port };
}

test('tcpdump capture of whole, split (one byte per segment) and coalesced frames: tshark lists exactly the frames sent', async () => {
  if (!tools()) return;
  let capture: Capture | undefined;
  const file = join(dir, 'conversation.pcap');
  const conv = await conversation(undefined, {
    beforeConnect: async (port) => {
      capture = await startCapture({ file, filter: `tcp port ${port}` });
    },
  });
  await sleep(50);
  await capture!.stop();
  const frames = framesOf(file, [`tcp.port==${conv.port},wirelab`], { checksums: false });
  const requests = frames.filter((f) => f.srcport !== conv.port);
  assert.equal(requests.map((f) => [f.type, f.id, f.method]), conv.sent.map(([id, m]) => [FrameType.REQUEST, id, m]));
  assert.equal(frames.filter((f) => f.srcport === conv.port).map((f) => [f.type, f.id]), [[2, 1], [2, 2], [2, 3], [2, 4], [2, 5]]);
  assert.equal(problemsOf(file, [`tcp.port==${conv.port},wirelab`], { checksums: false }), []);
  // The split frame really was split: some segments carried a single byte.
  const lens = tshark(file, { dissector: false, args: ['-Y', `tcp.srcport != ${conv.port} && tcp.len == 1`, '-T', 'fields', '-e', 'frame.number'] });
  assert.ok(lens.stdout.trim().split('\n').length > 5, 'one-byte segments in the capture');
});

test('without Decode As, the heuristic finds wirelab on an ephemeral port, split frames included', async () => {
  if (!tools()) return;
  const { file } = await captureRaw('heuristic', [request(1, 'echo', 'a'), ...[...request(2, 'echo', 'split')].map((b) => Buffer.from([b])), request(3, 'sleep', '5')]);
  assert.equal(framesOf(file, [], { checksums: false }).map((f) => [f.id, f.method]), [[1, 'echo'], [2, 'echo'], [3, 'sleep']]);
});

test('a bad-version frame is an expert-info error and nothing after it is decoded as frames', async () => {
  if (!tools()) return;
  const bad = request(2, 'echo', 'v2');
  bad[0] = 2;
  const { file, port } = await captureRaw('bad-version', [request(1, 'echo', 'ok'), bad, request(3, 'echo', 'after')]);
  const r = tshark(file, { decodeAs: [`tcp.port==${port},wirelab`], args: ['-Y', '_ws.expert.severity == 0x00800000', '-T', 'fields', '-e', 'wirelab.version', '-e', '_ws.expert.message', '-e', '_ws.expert.group'] });
  // One packet carries the error: version field 2, group PI_PROTOCOL (0x09000000).
  assert.equal(r.stdout.trim().split('\n').map((l) => l.split('\t')), [['2', 'Bad frame version 2 (expected 1)', String(0x09000000)]]);
  assert.equal(framesOf(file, [`tcp.port==${port},wirelab`], { checksums: false }).map((f) => f.id), [1, 2]);
  const after = tshark(file, { decodeAs: [`tcp.port==${port},wirelab`], args: ['-Y', 'wirelab.undecoded', '-T', 'fields', '-e', '_ws.expert.message'] });
  assert.match(after.stdout, /Not decoded: this direction broke the protocol/);
});

test('unknown type and length over the limit are expert-info errors too (from a --pcap file)', () => {
  if (!needTool('tshark', 'dissector')) return;
  const rec = new Recorder(true);
  const ep = (port: number) => ({ address: '127.0.0.1', port });
  const unknown = frameBytes(FrameType.PING, 1, Buffer.from('x'));
  unknown[1] = 9;
  const tooLarge = request(1, 'echo');
  tooLarge.writeUInt32BE(0xffffffff, 8);
  const base = { transport: 'tcp' as const, side: 'client' as const, local: ep(40000), remote: ep(7070) };
  rec.record({ ...base, conn: 1, kind: 'open' });
  rec.record({ ...base, conn: 1, kind: 'send', data: unknown });
  const base2 = { ...base, local: ep(40001) };
  rec.record({ ...base2, conn: 2, kind: 'open' });
  rec.record({ ...base2, conn: 2, kind: 'send', data: tooLarge });
  const file = join(dir, 'violations.pcap');
  writeFileSync(file, encodePcap(rec.events));
  // Port 7070 is the dissector's default port: no -d needed.
  const r = tshark(file, { args: ['-Y', '_ws.expert.severity == 0x00800000', '-T', 'fields', '-e', '_ws.expert.message'] });
  assert.equal(r.stdout.trim().split('\n'), ['Unknown frame type 9', 'Length 4294967295 over the limit of 1048576']);
});
test.run();
