import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { once } from 'node:events';
import { HttpServer, type HttpHandler, type HttpServerLimits } from '../../src/patterns/http-server.ts';
import { HttpClientConnection } from '../../src/patterns/http-client.ts';
import { waitFor } from '../_helpers.ts';

const test = suite('patterns/http-server');

const echo: HttpHandler = (req, res) => {
  if (req.path === '/stream') {
    res.setHeader('content-type', 'text/plain');
    res.write('one ');
    res.write('two');
    return res.end();
  }
  if (req.path.startsWith('/slow/')) {
    // Answers after a delay, so pipelined requests behind it must wait their turn.
    return new Promise<void>((resolve) => setTimeout(() => {
      res.send(200, req.path);
      resolve();
    }, Number(req.path.slice(6))));
  }
  if (req.path === '/throw') throw new Error('handler bug');
  res.send(200, `${req.method} ${req.path} ${req.body.toString()}`);
};

async function withServer(limits: Partial<HttpServerLimits>, fn: (port: number, server: HttpServer) => Promise<void>, handler = echo): Promise<void> {
  const server = new HttpServer(handler, { limits });
  const { port } = await server.listen(0);
  try {
    await fn(port, server);
  } finally {
    await server.close();
  }
}

/** Sends raw bytes, returns everything the server sent until it closed (bounded by timeoutMs). */
async function exchange(port: number, bytes: string, timeoutMs = 3000): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  s.on('data', (d) => parts.push(d));
  s.on('error', () => {});
  s.write(bytes);
  const timer = setTimeout(() => s.destroy(), timeoutMs);
  await once(s, 'close');
  clearTimeout(timer);
  return Buffer.concat(parts).toString('latin1');
}

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

test('keep-alive: two requests on one connection, Content-Length responses', async () => {
  await withServer({}, async (port) => {
    const c = await HttpClientConnection.connect('127.0.0.1', port);
    const a = await c.request('GET', '/a');
    const b = await c.request('POST', '/b', { body: 'hi' });
    assert.is(a.body.toString(), 'GET /a \n');
    assert.is(b.body.toString(), 'POST /b hi\n');
    assert.is(a.header('connection'), 'keep-alive');
    assert.is(c.requests, 2);
    c.destroy();
  });
});

test('pipelined requests are answered in request order even when the first is slowest (RFC 9112 section 9.3.2)', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port,
      'GET /slow/150 HTTP/1.1\r\nHost: h\r\n\r\nGET /slow/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    const bodies = [...text.matchAll(/\r\n\r\n([^\r]*?)\n/g)].map((m) => m[1]);
    assert.equal(bodies, ['/slow/150', '/slow/1', 'GET /last ']);
  });
});

test('HEAD gets the GET headers (Content-Length included) and no body', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'HEAD /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    assert.match(text, /content-length: 9\r\n/);
    assert.ok(text.endsWith('\r\n\r\n'), 'no body after the head');
  });
});

test('HEAD of a streaming response: chunked head, no body, and the handler may keep writing harmlessly', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'HEAD /stream HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    assert.equal(statuses(text), [200, 200]);
    assert.match(text, /transfer-encoding: chunked\r\n/);
    assert.not.match(text, /one/);
    assert.match(text, /GET \/after/);
  });
});

test('Connection: close is honoured: the server answers and closes', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\nHost: h\r\n\r\n');
    assert.equal(statuses(text), [200]);
    assert.match(text, /connection: close/);
  });
});

test('streaming response: chunked framing on the wire, reassembled by the client', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    assert.match(text, /transfer-encoding: chunked\r\n/);
    assert.ok(text.endsWith('\r\n\r\n4\r\none \r\n3\r\ntwo\r\n0\r\n\r\n'), JSON.stringify(text));
    const c = await HttpClientConnection.connect('127.0.0.1', port);
    assert.is((await c.request('GET', '/stream')).body.toString(), 'one two');
    c.destroy();
  });
});

test('HTTP/1.0 streaming response is close-delimited (no chunked coding in 1.0)', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'GET /stream HTTP/1.0\r\n\r\n');
    assert.not.match(text, /transfer-encoding/);
    assert.ok(text.endsWith('\r\n\r\none two'));
  });
});

test('a malformed request gets 400 with a reason, then the connection closes', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 0\r\n\r\n');
    assert.equal(statuses(text), [400]);
    assert.match(text, /whitespace before the colon/);
  });
});

test('an error behind a good pipelined request: the good one is answered first, then 400 and close', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'GET /slow/50 HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\nHost: h\n\n');
    assert.equal(statuses(text), [200, 400]);
  });
});

test('limits map to status codes on the wire: 431, 414, 413, 501', async () => {
  await withServer({ maxHeaderBytes: 256, maxRequestLine: 64, maxBodyBytes: 10 }, async (port) => {
    assert.equal(statuses(await exchange(port, `GET / HTTP/1.1\r\nHost: h\r\nX: ${'a'.repeat(300)}\r\n\r\n`)), [431]);
    assert.equal(statuses(await exchange(port, `GET /${'a'.repeat(100)} HTTP/1.1\r\n`)), [414]);
    assert.equal(statuses(await exchange(port, 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n')), [413]);
    assert.equal(statuses(await exchange(port, 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')), [501]);
  });
});

test('a chunked request body is decoded', async () => {
  await withServer({}, async (port) => {
    const text = await exchange(port, 'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.match(text, /POST \/c abc/);
  });
});

test('header timeout: a request that never completes gets 408 and the connection closes', async () => {
  await withServer({ headerTimeoutMs: 200 }, async (port, server) => {
    const text = await exchange(port, 'GET / HTTP/1.1\r\nHost: h\r\n');
    assert.equal(statuses(text), [408]);
    assert.is(server.stats.rejected.ERR_HTTP_HEADER_TIMEOUT, 1);
  });
});

test('idle keep-alive timeout closes a quiet connection without a response', async () => {
  await withServer({ idleTimeoutMs: 150 }, async (port) => {
    const text = await exchange(port, 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n');
    assert.equal(statuses(text), [200]);
  });
});

test('max connections: one more is answered 503 and closed, the others keep working', async () => {
  await withServer({ maxConnections: 2 }, async (port, server) => {
    const a = await HttpClientConnection.connect('127.0.0.1', port);
    const b = await HttpClientConnection.connect('127.0.0.1', port);
    await waitFor(() => server.connectionCount === 2);
    const text = await exchange(port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    assert.equal(statuses(text), [503]);
    assert.is((await a.request('GET', '/ok')).status, 200);
    a.destroy();
    b.destroy();
  });
});

test('a handler that throws gets 500, and the connection stays usable', async () => {
  await withServer({}, async (port) => {
    const c = await HttpClientConnection.connect('127.0.0.1', port);
    assert.is((await c.request('GET', '/throw')).status, 500);
    assert.is((await c.request('GET', '/after')).status, 200);
    c.destroy();
  });
});

test('back-pressure: write() returns false for a client that does not read, drained() waits, memory stays bounded', async () => {
  let sawFalse = false;
  let written = 0;
  const big = Buffer.alloc(64 * 1024, 0x61);
  const server = new HttpServer(async (_req, res) => {
    for (let i = 0; i < 400 && !res.aborted; i++) {
      written += big.length;
      if (!res.write(big)) {
        sawFalse = true;
        await res.drained();
      }
    }
    if (!res.aborted) res.end();
  });
  const { port } = await server.listen(0);
  const s = net.connect(port, '127.0.0.1');
  s.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  s.pause(); // never reads
  await waitFor(() => sawFalse, 3000, 'write() to return false');
  await new Promise((r) => setTimeout(r, 100));
  // The server stopped producing: far less than the 25 MiB it would write without back-pressure.
  assert.ok(written < 8 * 1024 * 1024, `server kept writing: ${written} bytes`);
  s.destroy();
  await server.close();
});

test.run();
