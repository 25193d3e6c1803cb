import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EchoProbe, wallNow, pingAnnotator } from '../../src/io/echo.ts';

const test = suite('io/echo');

test('the child process sees a stall of this loop as echo latency', async () => {
  const probe = await EchoProbe.start({ pingMs: 2 });
  try {
    await new Promise((r) => setTimeout(r, 30)); // a few pings answered normally first
    const from = wallNow();
    const until = performance.now() + 100;
    while (performance.now() < until); // block the loop that runs the echo server
    const to = wallNow();
    const r = await probe.report(from, to);
    assert.ok(r.count > 0, 'pings were answered');
    assert.ok(r.maxMs >= 80, `echo max ${r.maxMs} ms for a 100 ms stall`);
    assert.is(r.lost, false);
  } finally {
    await probe.stop();
  }
  assert.ok(probe.child.exitCode !== null || probe.child.signalCode !== null, 'child process stopped');
  assert.is(probe.server.listening, false);
});

test('ping annotator names whole pings and carries a split one to the next chunk', () => {
  const a = pingAnnotator();
  const b = Buffer.alloc(32);
  b.writeUInt32BE(7, 0);
  b.writeUInt32BE(8, 16);
  assert.equal(a(b.subarray(0, 20)).map((s) => s.split(' ')[1]), ['seq=7', 'bytes']);
  assert.equal(a(b.subarray(20)).map((s) => s.split(' ')[1]), ['seq=8']);
});

test.run();
