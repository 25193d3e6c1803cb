// --pcap and --diagram, which runLab gives every lab, and `npm run capture`, end to end on a real lab.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../_helpers.ts';
import { framesOf, problemsOf } from '../trace/_tshark.ts';

const test = suite('cli/lab --pcap --diagram');
const dir = mkdtempSync(join(tmpdir(), 'wirelab-labwire-test-'));
chmodSync(dir, 0o777); // the not-permitted test runs as nobody
test.after(() => rmSync(dir, { recursive: true, force: true }));

const STORM = ['labs/13-retry-storm.ts', '--clients', '3', '--scale', '0.05', '--strategy', 'full', '--seed', '1'];
const lab = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
const events = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('--pcap and --diagram in one run: tshark finds no problem in the pcap, one REQUEST per call the lab counted, one arrow per frame', () => {
  const file = join(dir, 'storm.pcap');
  const r = lab([...STORM, '--json', '--pcap', file, '--diagram']);
  assert.is(r.status, 0, r.stderr);
  const ev = events(r.stdout);
  const strategy = ev.find((e) => e.event === 'strategy')!;
  const pcap = ev.find((e) => e.event === 'pcap')!;
  assert.is(pcap.file, file);
  const diagram = ev.find((e) => e.event === 'diagram') as { arrows: { label: string; kind: string }[] };
  assert.is(diagram.arrows.filter((a) => /^REQUEST id=\d+ work/.test(a.label)).length, strategy.totalCalls);
  assert.is(diagram.arrows.filter((a) => a.kind === 'open').length, 3, 'one connect per client');
  if (!needTool('tshark', 'pcap interop')) return;
  assert.equal(problemsOf(file), []);
  const frames = framesOf(file);
  const requests = frames.filter((f) => f.type === 1);
  assert.is(requests.length, strategy.totalCalls);
  assert.ok(requests.every((f) => f.method === 'work'));
  assert.is(frames.length, 2 * (strategy.totalCalls as number), 'each request answered once');
});

test('--diagram in text: the drawing after the run', () => {
  const text = lab([...STORM, '--diagram', '--no-color']);
  assert.is(text.status, 0, text.stderr);
  assert.match(text.stdout, /sequence diagram\n\s+time conn  client\s+server 127\.0\.0\.1:\d+/);
  // Header and payload are two write() calls under cork(), in one synchronous run: one arrow, no "(in N writes)".
  assert.match(text.stdout, /\|-+ REQUEST id=1 work -+>\|/);
});

test('--pcap into a folder that does not exist: exit 1 with ERR_PCAP_WRITE; an empty --pcap is a usage error', () => {
  const r = lab([...STORM, '--pcap', join(dir, 'no/such/dir/x.pcap')]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /ERR_PCAP_WRITE/);
  const u = lab([...STORM, '--pcap=']);
  assert.is(u.status, 2);
  assert.is(u.stderr.trim().split('\n').length, 1);
});

test('npm run capture: tcpdump captures the lab\'s ports, the kept packets hold the lab\'s frames, tshark summary printed', () => {
  if (!needTool('tcpdump', 'loopback capture') || !needTool('tshark', 'dissector')) return;
  if (process.getuid?.() !== 0) return; // capturing on lo needs root here; the next test covers the other case
  const file = join(dir, 'captured.pcap');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/capture.ts', '13', file, '--', ...STORM.slice(1), '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  const strategy = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((e) => e.event === 'strategy');
  assert.match(r.stdout, /== tshark summary of/);
  assert.match(r.stdout, /WIRELAB .*REQUEST id=1 work/);
  assert.match(r.stderr, /tcpdump is listening on lo/); // of its own network namespace where unshare is allowed
  const requests = framesOf(file, [], { checksums: false }).filter((f) => f.type === 1);
  assert.is(requests.length, strategy.totalCalls);
  assert.equal(problemsOf(file, [], { checksums: false }), []);
});

test('npm run capture as a user who may not capture: a clear message pointing at --pcap, exit 1', () => {
  if (!needTool('tcpdump', 'loopback capture') || !needTool('setpriv', 'run as nobody')) return;
  if (process.getuid?.() !== 0) return;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', 'scripts/capture.ts', '13', join(dir, 'never.pcap'), '--', ...STORM.slice(1)],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: dir, TMPDIR: dir } });
  assert.is(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stderr, /may not capture on lo/);
  assert.match(r.stderr, /setcap cap_net_raw,cap_net_admin=eip/);
  assert.match(r.stderr, /--pcap/);
  assert.not.ok(existsSync(join(dir, 'never.pcap')));
});
test.run();
