import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkedDecoder, encodeChunk, chunkEncodingLength, LAST_CHUNK } from '../../src/wire/chunked.ts';
import { throwsCode } from '../_helpers.ts';

const test = suite('wire/chunked');

test('encodeChunk: hex size line, payload, CRLF; length matches chunkEncodingLength', () => {
  const parts = encodeChunk(Buffer.alloc(300, 0x61));
  assert.is(parts[0]!.toString(), '12c\r\n');
  assert.is(parts[2]!.toString(), '\r\n');
  assert.is(Buffer.concat(parts).length, chunkEncodingLength(300));
  assert.is(LAST_CHUNK.toString(), '0\r\n\r\n');
});

test('encodeChunk refuses an empty chunk (it would end the body)', () => {
  throwsCode(() => encodeChunk(Buffer.alloc(0)), 'ERR_HTTP_BAD_CHUNK');
});

test('round trip: encoded chunks decode whole and byte by byte, leaving the bytes after the body', () => {
  const wire = Buffer.concat([...encodeChunk(Buffer.from('hello')), ...encodeChunk(Buffer.from(' world')), LAST_CHUNK, Buffer.from('NEXT')]);
  for (const step of [wire.length, 1]) {
    const d = new ChunkedDecoder();
    const data: Buffer[] = [];
    let consumed = 0;
    for (let i = 0; i < wire.length && !d.done; i += step) {
      const r = d.push(wire.subarray(i, i + step));
      consumed += r.consumed;
      for (const e of r.events) if (e.type === 'data') data.push(Buffer.from(e.data));
    }
    assert.is(Buffer.concat(data).toString(), 'hello world');
    assert.is(wire.subarray(consumed).toString(), 'NEXT');
  }
});

const HOSTILE: [string, string][] = [
  ['non-hex size', 'g\r\n'],
  ['empty size', '\r\n'],
  ['bare LF after the size', '5\nhello\r\n'],
  ['missing CRLF after data', '5\r\nhelloX'],
  ['size with too many digits', '1' + '0'.repeat(20) + '\r\n'],
  ['size line over the limit', '5;' + 'x'.repeat(2000)],
  ['trailer without colon', '0\r\nbad trailer\r\n\r\n'],
];
for (const [name, bytes] of HOSTILE) {
  test(`hostile chunk framing: ${name}`, () => {
    throwsCode(() => new ChunkedDecoder().push(Buffer.from(bytes)), 'ERR_HTTP_BAD_CHUNK');
  });
}

test.run();
