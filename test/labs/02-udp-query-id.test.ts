// The lab's command line: the server from a zone file, a bad zone refusing to start, the client's report.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const test = suite('labs/02-udp-query-id');
const LAB = fileURLToPath(new URL('../../labs/02-udp-query-id.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wirelab-lab02-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function lab(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', LAB, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); }));
  return { child, done };
}

test('the demo exits 0 and tells each part of the story', async () => {
  const { code, stdout, stderr } = await lab([]).done;
  assert.is(code, 0, stderr);
  for (const heading of ['1. One query, one reply', '2. Ten queries in flight', '3. Lost datagrams recovered by retry', '4. Forged replies ignored', '5. A large answer', '6. What UDP did not need']) {
    assert.ok(stdout.includes(heading), heading);
  }
  assert.match(stdout, /\^ 001b {2}answer name=hello\.lab\. {2}\[pointer c0 0c -> offset 12/);
  assert.match(stdout, /ignored: wrongSource id=0x[0-9a-f]{4}/);
  assert.match(stdout, /ignored: unknownId id=0x[0-9a-f]{4}/);
  assert.match(stdout, /flags=0x8700 QR=1 opcode=QUERY AA=1 TC=1/);
  assert.match(stdout, /"udpPerClientEntries":0/);
});

test('a bad zone line is one error naming file and line, and the server does not start', async () => {
  const file = join(dir, 'bad.zone');
  writeFileSync(file, 'ok.test A 10.0.0.1\nbroken.test A 10.0.0\n');
  const { code, stdout, stderr } = await lab(['server', '--zone', file]).done;
  assert.is(code, 1);
  assert.match(stderr, new RegExp(`error ERR_DNS_ZONE_SYNTAX: ${file.replace(/[.]/g, '\\.')}:2: '10\\.0\\.0' is not an IPv4 address`));
  assert.not.match(stdout, /listening/);
});

test('server --zone FILE, then client: dnspeep-style lines; SIGINT stops the server cleanly', async () => {
  const file = join(dir, 'good.zone');
  writeFileSync(file, 'svc.test A 10.0.0.7\nsvc.test TXT "v=1"\n');
  const srv = lab(['server', '--zone', file]);
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    srv.child.stdout!.on('data', (c) => {
      out += c;
      const m = /listening on udp:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    srv.done.then(() => reject(new Error(`server ended: ${out}`)));
  });
  try {
    const cl = await lab(['client', '--port', String(port), 'svc.test', 'A', 'svc.test', 'TXT', 'nope.test']).done;
    assert.is(cl.code, 0, cl.stderr);
    assert.match(cl.stdout, /^A +svc\.test\. +id=0x[0-9a-f]{4} attempts=1 rtt=\S+ +udp  A: 10\.0\.0\.7$/m);
    assert.match(cl.stdout, /^TXT +svc\.test\. .* TXT: "v=1"$/m);
    assert.match(cl.stdout, /^A +nope\.test\. .* NXDOMAIN$/m);
    const bad = await lab(['client', '--port', String(port), '--backoff', 'sideways', 'svc.test']).done;
    assert.is(bad.code, 2);
    assert.is(bad.stderr.trim().split('\n').length, 1);
  } finally {
    srv.child.kill('SIGINT');
  }
  const end = await srv.done;
  assert.is(end.code, 0);
  assert.match(end.stdout, /stopped \(SIGINT\): 3 queries, 3 replies/);
});

test.run();
