// The hand-written server against clients no one here wrote: curl, Node's fetch (undici), the eventsource package.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { EventSource } from 'eventsource';
import { HttpServer } from '../../src/patterns/http-server.ts';
import { startSseServer } from '../../src/patterns/sse-app.ts';
import { startJobsServer } from '../../src/patterns/jobs-api.ts';
import { needTool, waitFor } from '../_helpers.ts';

const test = suite('patterns/http-interop');

function run(cmd: string, args: string[], timeoutMs = 5000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('curl -N receives SSE events byte for byte as sent', async () => {
  if (!needTool('curl')) return;
  const app = await startSseServer({ heartbeatMs: 0, retryMs: 500 });
  const child = spawn('curl', ['-sN', '--max-time', '5', `http://127.0.0.1:${app.address.port}/events`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  child.stdout.on('data', (d) => (got += d));
  try {
    await waitFor(() => app.hub.clientCount === 1, 3000, 'curl to connect');
    app.hub.publish('tick', '{"n":1}');
    app.hub.publish(undefined, 'two\nlines');
    const expected = 'retry: 500\n\nid: 1\nevent: tick\ndata: {"n":1}\n\nid: 2\ndata: two\ndata: lines\n\n';
    await waitFor(() => got.length >= expected.length, 3000, 'curl to print the events');
    assert.is(got, expected);
  } finally {
    child.kill('SIGKILL');
    await app.close();
  }
});

test('curl reuses one keep-alive connection for two URLs, and HEAD -I works', async () => {
  if (!needTool('curl')) return;
  const server = new HttpServer((req, res) => res.send(200, `hello ${req.path}`));
  const { port } = await server.listen(0);
  try {
    const r = await run('curl', ['-s', `http://127.0.0.1:${port}/a`, `http://127.0.0.1:${port}/b`]);
    assert.is(r.stdout, 'hello /a\nhello /b\n');
    assert.is(server.stats.connections, 1);
    const h = await run('curl', ['-sI', `http://127.0.0.1:${port}/c`]);
    assert.match(h.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(h.stdout, /content-length: 9\r\n/);
  } finally {
    await server.close();
  }
});

test('curl gets 431 for an oversized header and 400 for a smuggling shape', async () => {
  if (!needTool('curl')) return;
  const server = new HttpServer((_req, res) => res.send(200, 'ok'), { limits: { maxHeaderBytes: 512 } });
  const { port } = await server.listen(0);
  try {
    const big = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `X-Big: ${'a'.repeat(1000)}`, `http://127.0.0.1:${port}/`]);
    assert.is(big.stdout, '431');
    const smuggle = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Transfer-Encoding: chunked', '-H', 'Content-Length: 3', '--data-binary', 'abc', `http://127.0.0.1:${port}/`]);
    assert.is(smuggle.stdout, '400');
  } finally {
    await server.close();
  }
});

test("Node's fetch (undici) reads a chunked streaming response, piece by piece", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = new HttpServer(async (_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.write('first,');
    await gate; // the second chunk only after the client has read the first: it really streams
    res.write('second,');
    res.end('third');
  });
  const { port } = await server.listen(0);
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`);
    assert.is(r.headers.get('transfer-encoding'), 'chunked');
    const reader = r.body!.getReader();
    const first = await reader.read();
    assert.is(new TextDecoder().decode(first.value), 'first,');
    release();
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.is(rest, 'second,third');
  } finally {
    await server.close();
  }
});

test("Node's fetch: POST /jobs 202 + Location, GET the job, JSON bodies by Content-Length", async () => {
  const srv = await startJobsServer({ jobMs: 5000 });
  try {
    const base = `http://127.0.0.1:${srv.address.port}`;
    const created = await fetch(`${base}/jobs`, { method: 'POST' });
    assert.is(created.status, 202);
    const { id } = (await created.json()) as { id: string };
    assert.is(created.headers.get('location'), `/jobs/${id}`);
    const job = (await (await fetch(`${base}${created.headers.get('location')}`)).json()) as { state: string };
    assert.is(job.state, 'running');
    assert.is((await fetch(`${base}/jobs/aaaaaaaaaaaa`)).status, 404);
  } finally {
    await srv.close();
  }
});

test('eventsource (npm, v4): after the server drops the connection it reconnects with Last-Event-ID, no loss, no duplicates', async () => {
  const app = await startSseServer({ heartbeatMs: 0, retryMs: 50, everyMs: 15 });
  const ids: number[] = [];
  let opens = 0;
  const es = new EventSource(`http://127.0.0.1:${app.address.port}/events`);
  es.addEventListener('open', () => opens++);
  es.addEventListener('tick', (e) => ids.push(Number(e.lastEventId)));
  try {
    await waitFor(() => ids.length >= 5, 3000, 'the first events');
    for (const c of app.hub.clients) c.res.socket.destroy(); // the server drops every stream
    await waitFor(() => opens >= 2 && ids.length >= 15, 4000, 'a reconnect and more events');
    assert.ok(opens >= 2, 'reconnected');
    assert.ok(app.hub.stats.replayed >= 1, 'the missed events were replayed from Last-Event-ID');
    const expected = Array.from({ length: ids.length }, (_, i) => ids[0]! + i);
    assert.equal(ids, expected, 'consecutive ids: no loss, no duplicate');
    assert.is(ids[0], 1);
  } finally {
    es.close();
    await app.close();
  }
});

test.run();
