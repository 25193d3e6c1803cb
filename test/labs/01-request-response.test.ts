// Lab 01 as a user runs it: `server` in one process, `client` in another.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { runLabProcess, startLabServer } from './_spawn.ts';

const test = suite('labs/01-request-response');
let server: { child: ChildProcess; port: number; output: () => string };

test.before(async () => {
  server = await startLabServer('01-request-response');
});
test.after(async () => {
  if (server.child.exitCode === null) {
    server.child.kill('SIGKILL');
    await once(server.child, 'close');
  }
});

test('server prints listening on tcp://127.0.0.1:PORT', () => {
  assert.match(server.output(), /^listening on tcp:\/\/127\.0\.0\.1:\d+$/m);
});

test('client echo prints the payload and exits 0; fail prints the error and exits 1; bad usage exits 2', async () => {
  const port = String(server.port);
  const [echo, fail, missing, refused] = await Promise.all([
    runLabProcess('01-request-response', ['client', '--port', port, 'echo', 'hello', 'wire']),
    runLabProcess('01-request-response', ['client', '--port', port, 'fail', 'out of cheese']),
    runLabProcess('01-request-response', ['client', '--port', port]),
    runLabProcess('01-request-response', ['client', '--port', port, 'sleep', '2000', '--timeout', '100']),
  ]);
  assert.is(echo.code, 0);
  assert.is(echo.stdout, 'hello wire\n');
  assert.is(fail.code, 1);
  assert.match(fail.stdout, /^error 100: out of cheese$/m);
  assert.is(missing.code, 2);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /ERR_TIMEOUT/);
});

test('client --json --trace prints one JSON object per line, with the frames on the wire', async () => {
  const r = await runLabProcess('01-request-response', ['client', '--port', String(server.port), '--json', '--trace', 'echo', 'hi']);
  assert.is(r.code, 0);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; notes?: string[]; payload?: string });
  assert.ok(events.some((e) => e.event === 'wire' && e.notes?.includes('version=1 type=REQUEST id=1 length=7 method=echo body="hi"')));
  assert.equal(events.find((e) => e.event === 'response'), { event: 'response', method: 'echo', payload: 'hi', bytes: 2 });
});

test('SIGTERM stops the server cleanly with exit code 0', async () => {
  server.child.kill('SIGTERM');
  const [code] = await once(server.child, 'close');
  assert.is(code, 0);
});

test.run();
