import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curlBlock, curlRows, hexdumpC, xxd } from '../../src/trace/hexdump.ts';
import { needTool, portOf, seededRandom } from '../_helpers.ts';

const test = suite('trace/hexdump');

const random = seededRandom(7);
const SAMPLES: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['one byte', Buffer.from([0x41])],
  ['15 bytes', Buffer.from('GET / HTTP/1.1\n')],
  ['16 bytes', Buffer.from('0123456789abcdef')],
  ['17 bytes', Buffer.from('0123456789abcdefg')],
  ['all 256 byte values', Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
  ['repeated rows (hexdump squeezes them)', Buffer.concat([Buffer.alloc(64, 0x41), Buffer.from('end'), Buffer.alloc(40, 0)])],
  ['1000 random bytes', Buffer.from(Array.from({ length: 1000 }, () => Math.floor(random() * 256)))],
];

test('golden rows in each layout', () => {
  const b = Buffer.from('GET / HTTP/1.1\r\n!');
  assert.equal(curlRows(b), ['0000: 47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a GET / HTTP/1.1..', '0010: 21                                              !']);
  assert.is(hexdumpC(b), '00000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  |GET / HTTP/1.1..|\n00000010  21                                                |!|\n00000011\n');
  assert.is(xxd(b), '00000000: 4745 5420 2f20 4854 5450 2f31 2e31 0d0a  GET / HTTP/1.1..\n00000010: 21                                       !\n');
  assert.is(curlBlock('send', Buffer.from('hi')), '=> Send data, 2 bytes (0x2)\n0000: 68 69                                           hi\n');
});

function realTool(cmd: string, args: string[], file: string): string {
  const r = spawnSync(cmd, [...args, file], { encoding: 'latin1' });
  assert.is(r.status, 0, `${cmd} failed: ${r.stderr}`);
  return r.stdout;
}

test('identical to the real xxd and hexdump -C for the same bytes', () => {
  const haveXxd = needTool('xxd', 'Debian package xxd');
  const haveHexdump = needTool('hexdump', 'Debian package bsdextrautils');
  if (!haveXxd && !haveHexdump) return;
  const dir = mkdtempSync(join(tmpdir(), 'wirelab-hexdump-'));
  try {
    for (const [name, bytes] of SAMPLES) {
      const file = join(dir, 'sample.bin');
      writeFileSync(file, bytes);
      if (haveXxd) assert.is(xxd(bytes), realTool('xxd', [], file), `xxd: ${name}`);
      if (haveHexdump) assert.is(hexdumpC(bytes), realTool('hexdump', ['-C'], file), `hexdump -C: ${name}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Parses `curl --trace` output into blocks: the header line, its rows, and the bytes the rows show. */
function parseCurlTrace(text: string): { head: string; rows: string[]; bytes: Buffer }[] {
  const blocks: { head: string; rows: string[]; bytes: Buffer }[] = [];
  for (const line of text.split('\n')) {
    if (/^(=>|<=) /.test(line)) blocks.push({ head: line, rows: [], bytes: Buffer.alloc(0) });
    else if (/^[0-9a-f]{4,}: /.test(line) && blocks.length) {
      const b = blocks.at(-1)!;
      b.rows.push(line);
      const hexPart = line.slice(line.indexOf(': ') + 2, line.indexOf(': ') + 2 + 48);
      b.bytes = Buffer.concat([b.bytes, Buffer.from(hexPart.replace(/ /g, ''), 'hex')]);
    }
  }
  return blocks;
}

test('rows identical to a real curl --trace of a request to a local server', async () => {
  if (!needTool('curl')) return;
  const body = Buffer.concat([Buffer.from('binary body: '), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
  const response = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]);
  let received = Buffer.alloc(0);
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.includes('\r\n\r\n')) socket.end(response);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'wirelab-curl-'));
  const traceFile = join(dir, 'trace.txt');
  try {
    await new Promise<void>((resolve, reject) =>
      execFile('curl', ['-s', '--max-time', '5', '--trace', traceFile, '-o', '/dev/null', `http://127.0.0.1:${portOf(server)}/wirelab`], (err) => (err ? reject(err) : resolve())),
    );
    const blocks = parseCurlTrace(readFileSync(traceFile, 'latin1'));
    assert.ok(blocks.length >= 3, 'curl printed send and receive blocks');
    for (const b of blocks) {
      assert.equal(curlRows(b.bytes), b.rows, `rows of "${b.head}"`);
      const dataHead = b.head.replace(/ (header|data),/, ' data,');
      assert.is(curlBlock(b.head.startsWith('=>') ? 'send' : 'recv', b.bytes).split('\n')[0], dataHead, 'header line layout');
    }
    const sent = Buffer.concat(blocks.filter((b) => b.head.startsWith('=>')).map((b) => b.bytes));
    const recv = Buffer.concat(blocks.filter((b) => b.head.startsWith('<=')).map((b) => b.bytes));
    assert.ok(sent.equals(received), 'the Send blocks are exactly the bytes the server received');
    assert.ok(recv.equals(response), 'the Recv blocks are exactly the bytes the server sent');
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
