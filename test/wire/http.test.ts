import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RequestParser, ResponseParser, HttpError, encodeResponseHead, httpAnnotator, type HttpRequest, type ResponseEvent } from '../../src/wire/http.ts';
import { seededRandom } from '../_helpers.ts';

const test = suite('wire/http');

function feedWhole(bytes: string | Buffer, limits = {}): HttpRequest[] {
  return new RequestParser(limits).push(Buffer.from(bytes as string, 'latin1'));
}

function feedBytewise(bytes: string | Buffer, limits = {}): HttpRequest[] {
  const p = new RequestParser(limits);
  const buf = Buffer.from(bytes as string, 'latin1');
  const out: HttpRequest[] = [];
  for (let i = 0; i < buf.length; i++) out.push(...p.push(buf.subarray(i, i + 1)));
  return out;
}

/** Feeds the bytes whole and one at a time; both must throw this code (and map to this status). */
function rejectsWith(bytes: string, code: string, status: number, limits = {}): void {
  for (const feed of [feedWhole, feedBytewise]) {
    try {
      feed(bytes, limits);
    } catch (err) {
      assert.instance(err, HttpError, `${JSON.stringify(bytes.slice(0, 60))}: not an HttpError: ${err}`);
      assert.is((err as HttpError).code, code, `${JSON.stringify(bytes.slice(0, 60))} (${feed.name})`);
      assert.is((err as HttpError).status, status, `${JSON.stringify(bytes.slice(0, 60))} status`);
      continue;
    }
    assert.unreachable(`${JSON.stringify(bytes.slice(0, 60))} (${feed.name}) was accepted`);
  }
}

interface Golden {
  name: string;
  bytes: string;
  expect: (Partial<Omit<HttpRequest, 'query' | 'body'>> & { body?: string; query?: Record<string, string> })[];
}

const GOLDEN: Golden[] = [
  {
    name: 'curl GET',
    bytes: 'GET /jobs/abc HTTP/1.1\r\n' + // request-line: method SP target SP version CRLF
      'Host: 127.0.0.1:8080\r\n' + // Host is required in HTTP/1.1 (RFC 9112 section 3.2)
      'User-Agent: curl/7.88.1\r\n' +
      'Accept: */*\r\n' +
      '\r\n', // empty line: end of the header section, no body (no Content-Length, no Transfer-Encoding)
    expect: [{ method: 'GET', target: '/jobs/abc', path: '/jobs/abc', version: 'HTTP/1.1', keepAlive: true, body: '',
      headers: [['host', '127.0.0.1:8080'], ['user-agent', 'curl/7.88.1'], ['accept', '*/*']] }],
  },
  {
    name: 'POST with Content-Length body and a query',
    bytes: 'POST /publish?x=1&y=two HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello\nworld',
    expect: [{ method: 'POST', path: '/publish', body: 'hello\nworld', query: { x: '1', y: 'two' } }],
  },
  {
    name: 'chunked request body with an extension and a trailer',
    bytes: 'POST /publish HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;note=first\r\nhello\r\n' + // size 5 with a chunk extension
      '6\r\n world\r\n' +
      '0\r\nX-Checksum: 1\r\n\r\n', // last chunk, one trailer field, end
    expect: [{ method: 'POST', body: 'hello world' }],
  },
  {
    name: 'pipelined: three requests in one write, answered in order',
    bytes: 'GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\nPOST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    expect: [{ path: '/a', keepAlive: true }, { method: 'HEAD', path: '/b' }, { path: '/c', body: 'hi', keepAlive: false }],
  },
  {
    name: 'HTTP/1.0 closes by default, keep-alive opts in; Host optional',
    bytes: 'GET /x HTTP/1.0\r\n\r\nGET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
    expect: [{ version: 'HTTP/1.0', keepAlive: false }, { keepAlive: true }],
  },
  {
    name: 'an empty line before the request line is ignored (RFC 9112 section 2.2); OWS trimmed; identical Content-Length list',
    bytes: '\r\nGET / HTTP/1.1\r\nHost:   h  \r\nContent-Length: 3, 3\r\n\r\nabc',
    expect: [{ path: '/', body: 'abc', headers: [['host', 'h'], ['content-length', '3, 3']] }],
  },
];

function check(got: HttpRequest[], g: Golden): void {
  assert.is(got.length, g.expect.length, `${g.name}: request count`);
  g.expect.forEach((e, i) => {
    const r = got[i]!;
    const { body, query, ...rest } = e;
    for (const [k, v] of Object.entries(rest)) assert.equal((r as unknown as Record<string, unknown>)[k], v, `${g.name}: ${k}`);
    if (body !== undefined) assert.is(r.body.toString('latin1'), body, `${g.name}: body`);
    if (query) assert.equal(Object.fromEntries(r.query), query, `${g.name}: query`);
  });
}

for (const g of GOLDEN) {
  test(`golden, fed whole: ${g.name}`, () => check(feedWhole(g.bytes), g));
  test(`golden, fed byte by byte: ${g.name}`, () => check(feedBytewise(g.bytes), g));
}

test('golden: every split point of a request gives the same request', () => {
  const bytes = Buffer.from(GOLDEN[2]!.bytes, 'latin1');
  for (let cut = 1; cut < bytes.length; cut++) {
    const p = new RequestParser();
    const got = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
    check(got, GOLDEN[2]!);
  }
});

test('wireBytes counts the request as it was on the wire', () => {
  const [a, b] = feedWhole(GOLDEN[3]!.bytes);
  assert.is(a!.wireBytes, 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n'.length);
  assert.is(b!.wireBytes, 'HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n'.length);
});

const H = 'Host: h\r\n';
// Every way a request line or header can lie, each with its code and the status the server answers.
const HOSTILE: [name: string, bytes: string, code: string, status: number, limits?: object][] = [
  ['no CRLF at all, line past the limit', 'GET /' + 'a'.repeat(100), 'ERR_HTTP_URI_TOO_LONG', 414, { maxRequestLine: 64 }],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: h\n\n', 'ERR_HTTP_MALFORMED', 400],
  ['bare LF in a header', `GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['bare CR', `GET / HTTP/1.1\r\n${H}X: a\rb\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['header without colon', `GET / HTTP/1.1\r\n${H}NoColonHere\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['space before colon (RFC 9112 section 5.1)', `GET / HTTP/1.1\r\n${H}Content-Length : 0\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['obs-fold (RFC 9112 section 5.2)', `GET / HTTP/1.1\r\n${H}X-Long: a\r\n  continued\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['NUL in a header value', `GET / HTTP/1.1\r\n${H}X: a\0b\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['control character in a value', `GET / HTTP/1.1\r\n${H}X: a\x01b\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['two different Content-Length values', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 'ERR_HTTP_BAD_CONTENT_LENGTH', 400],
  ['a Content-Length list that disagrees', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 4\r\n\r\nabcd`, 'ERR_HTTP_BAD_CONTENT_LENGTH', 400],
  ['negative Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 'ERR_HTTP_BAD_CONTENT_LENGTH', 400],
  ['Content-Length with a sign', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 'ERR_HTTP_BAD_CONTENT_LENGTH', 400],
  ['hex Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 0x10\r\n\r\n`, 'ERR_HTTP_BAD_CONTENT_LENGTH', 400],
  ['huge Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n`, 'ERR_HTTP_BODY_TOO_LARGE', 413],
  ['Content-Length over the body limit', `POST / HTTP/1.1\r\n${H}Content-Length: 1048577\r\n\r\n`, 'ERR_HTTP_BODY_TOO_LARGE', 413],
  ['chunked body over the body limit', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n20\r\n`, 'ERR_HTTP_BODY_TOO_LARGE', 413, { maxBodyBytes: 16 }],
  ['header section over the limit', `GET / HTTP/1.1\r\n${H}X: ${'a'.repeat(200)}\r\n\r\n`, 'ERR_HTTP_HEADER_TOO_LARGE', 431, { maxHeaderBytes: 128 }],
  ['too many header fields', `GET / HTTP/1.1\r\n${H}${'X: y\r\n'.repeat(5)}\r\n`, 'ERR_HTTP_HEADER_TOO_LARGE', 431, { maxHeaderCount: 4 }],
  ['request line over the limit', `GET /${'a'.repeat(100)} HTTP/1.1\r\n${H}\r\n`, 'ERR_HTTP_URI_TOO_LONG', 414, { maxRequestLine: 64 }],
  ['smuggling: Content-Length with Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'ERR_HTTP_SMUGGLING', 400],
  ['smuggling: Transfer-Encoding then Content-Length', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`, 'ERR_HTTP_SMUGGLING', 400],
  ['smuggling: chunked not the final coding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n`, 'ERR_HTTP_SMUGGLING', 400],
  ['smuggling: obfuscated coding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n`, 'ERR_HTTP_SMUGGLING', 400],
  ['smuggling: Transfer-Encoding in HTTP/1.0', `POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'ERR_HTTP_SMUGGLING', 400],
  ['smuggling: space before the colon of Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['transfer coding we do not implement', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n`, 'ERR_HTTP_UNSUPPORTED_TRANSFER_ENCODING', 501],
  ['bad chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\n`, 'ERR_HTTP_BAD_CHUNK', 400],
  ['chunk data longer than its size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n`, 'ERR_HTTP_BAD_CHUNK', 400],
  ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 'ERR_HTTP_MALFORMED', 400],
  ['two Host headers', `GET / HTTP/1.1\r\n${H}${H}\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['two spaces in the request line', `GET  / HTTP/1.1\r\n${H}\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['absolute-form target (we are not a proxy)', `GET http://evil/ HTTP/1.1\r\n${H}\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['lower-case version', `GET / http/1.1\r\n${H}\r\n`, 'ERR_HTTP_MALFORMED', 400],
  ['HTTP/2.0 over this parser', `GET / HTTP/2.0\r\n${H}\r\n`, 'ERR_HTTP_VERSION_NOT_SUPPORTED', 505],
  ['binary garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', 'ERR_HTTP_MALFORMED', 400],
  ['a flood of empty lines', '\r\n'.repeat(20) + `GET / HTTP/1.1\r\n${H}\r\n`, 'ERR_HTTP_MALFORMED', 400],
];

for (const [name, bytes, code, status, limits] of HOSTILE) {
  test(`hostile: ${name} -> ${status} ${code}`, () => rejectsWith(bytes, code, status, limits));
}

test('the parser is dead after an error (never resynced)', () => {
  const p = new RequestParser();
  assert.throws(() => p.push(Buffer.from('GET / HTTP/1.1\nHost: h\n\n')));
  assert.throws(() => p.push(Buffer.from(`GET / HTTP/1.1\r\n${H}\r\n`)));
});

test('fuzz: random mutations of golden requests never throw anything but HttpError', () => {
  const random = seededRandom(6);
  for (let n = 0; n < 2000; n++) {
    const g = Buffer.from(GOLDEN[n % GOLDEN.length]!.bytes, 'latin1');
    for (let k = 0; k < 3; k++) g[Math.floor(random() * g.length)] = Math.floor(random() * 256);
    const p = new RequestParser({ maxBodyBytes: 64 });
    try {
      let i = 0;
      while (i < g.length) {
        const step = 1 + Math.floor(random() * 8);
        p.push(g.subarray(i, i + step));
        i += step;
      }
    } catch (err) {
      assert.instance(err, HttpError, `seed 6 iteration ${n}: ${err}`);
    }
  }
});

function responseEvents(bytes: string, method = 'GET', bytewise = false): ResponseEvent[] {
  const p = new ResponseParser();
  p.expect(method);
  const buf = Buffer.from(bytes, 'latin1');
  if (!bytewise) return p.push(buf);
  const out: ResponseEvent[] = [];
  for (let i = 0; i < buf.length; i++) out.push(...p.push(buf.subarray(i, i + 1)));
  return out;
}

const CHUNKED_RESPONSE = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n';

test('response parser: chunked body reassembled whole and byte by byte, chunk sizes reported', () => {
  for (const bytewise of [false, true]) {
    const ev = responseEvents(CHUNKED_RESPONSE, 'GET', bytewise);
    const data = Buffer.concat(ev.flatMap((e) => (e.type === 'data' ? [e.data] : []))).toString();
    assert.is(data, 'hello!');
    assert.equal(ev.filter((e) => e.type === 'chunk').map((e) => (e as { size: number }).size), [5, 1, 0]);
    assert.is(ev[ev.length - 1]!.type, 'end');
  }
});

test('response parser: a HEAD response has no body even with Content-Length', () => {
  const ev = responseEvents('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 'HEAD');
  assert.equal(ev.map((e) => e.type), ['head', 'end']);
});

test('encodeResponseHead: status line, fields, empty line', () => {
  assert.is(encodeResponseHead(202, [['location', '/jobs/1']]).toString(), 'HTTP/1.1 202 Accepted\r\nlocation: /jobs/1\r\n\r\n');
});

test('annotator: request line, status line with header count, every chunk size', () => {
  const a = httpAnnotator();
  assert.equal(a()(Buffer.from(GOLDEN[0]!.bytes)).notes, ['GET /jobs/abc HTTP/1.1 (3 headers, body 0 bytes)']);
  assert.equal(a()(Buffer.from(CHUNKED_RESPONSE)).notes, [
    'HTTP/1.1 200 OK (1 headers, chunked)', 'chunk size 0x5 (5 bytes)', 'chunk size 0x1 (1 bytes)', 'chunk size 0x0: last chunk',
  ]);
});

test('annotator units (--diagram): one short label per message, in the write that completes it', () => {
  const a = httpAnnotator();
  assert.equal(a()(Buffer.from(GOLDEN[0]!.bytes)).units, ['GET /jobs/abc']);
  const res = a();
  // A Content-Length response is one unit, complete with the last byte of its body.
  assert.equal(res(Buffer.from('HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\n')).units, []);
  assert.equal(res(Buffer.from('{}')).units, []);
  assert.equal(res(Buffer.from('}\n')).units, ['202 Accepted']);
  // Chunked: the head, then each chunk once its CRLF is in (written in three pieces, as the SSE server does).
  const units = ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\n', 'hello', '\r\n', '1\r\n!\r\n0\r\n', '\r\n']
    .map((piece) => res(Buffer.from(piece)).units);
  assert.equal(units, [['200 OK chunked'], [], [], ['chunk 5'], ['chunk 1'], ['last chunk']]);
});

test.run();
