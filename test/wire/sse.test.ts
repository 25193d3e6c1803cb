import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeEvent, encodeComment, encodeRetry, SseParser } from '../../src/wire/sse.ts';
import { throwsCode } from '../_helpers.ts';

const test = suite('wire/sse');

test('encodeEvent: id, event, one data line per line of data, blank line', () => {
  assert.is(encodeEvent({ id: '7', event: 'tick', data: 'a\nb\r\nc' }), 'id: 7\nevent: tick\ndata: a\ndata: b\ndata: c\n\n');
  assert.is(encodeEvent({ data: '' }), 'data: \n\n');
  assert.is(encodeEvent({ data: 'x', retry: 1500 }), 'retry: 1500\ndata: x\n\n');
});

test('encodeEvent refuses line breaks in id and event, NUL in id', () => {
  throwsCode(() => encodeEvent({ id: '1\n2', data: '' }), 'ERR_SSE_BAD_FIELD');
  throwsCode(() => encodeEvent({ event: 'a\rb', data: '' }), 'ERR_SSE_BAD_FIELD');
  throwsCode(() => encodeEvent({ id: 'a\0', data: '' }), 'ERR_SSE_BAD_FIELD');
  throwsCode(() => encodeRetry(-1), 'ERR_SSE_BAD_FIELD');
});

test('comments start with a colon', () => {
  assert.is(encodeComment('heartbeat'), ': heartbeat\n\n');
});

test('parser: round trip fed whole and byte by byte, sticky last id, CR/LF/CRLF line ends', () => {
  const text = '\ufeffretry: 300\n' + encodeEvent({ id: '1', event: 'tick', data: 'a\nb' }) + ': hb\r\n\r\n' + 'data: no id\r\rdata: x\r\n\r\n';
  for (const step of [text.length, 1]) {
    const p = new SseParser();
    const bytes = Buffer.from(text);
    const got = [];
    for (let i = 0; i < bytes.length; i += step) got.push(...p.push(bytes.subarray(i, i + step)));
    assert.equal(got, [
      { lastEventId: '1', type: 'tick', data: 'a\nb' },
      { lastEventId: '1', type: 'message', data: 'no id' },
      { lastEventId: '1', type: 'message', data: 'x' },
    ]);
    assert.is(p.retry, 300);
    assert.is(p.comments, 1);
  }
});

test.run();
