import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const test = suite('io/lab 03');
const LAB = fileURLToPath(new URL('../../labs/03-sync-vs-async.ts', import.meta.url));
const lab = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', LAB, ...args], { encoding: 'utf8', timeout: 60_000 });

test('--json prints one line per mode and per threadpool size with the documented fields', () => {
  const r = lab(['demo', '--json', '--size', '2MiB', '--files', '4', '--pool-sizes', '1,2', '--slow-reads', '2', '--slow-read-ms', '5']);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const modes = lines.filter((l) => l.event === 'result' && l.mode !== 'threadpool');
  assert.equal(modes.map((l) => l.mode), ['sync', 'promises', 'stream', 'workers', 'hash-main', 'hash-workers']);
  for (const l of modes) {
    for (const k of ['bytes', 'wallMs', 'bytesPerSec', 'loopDelayMaxMs', 'loopDelayP99Ms', 'ticksMissed', 'echoLatencyMaxMs']) assert.type(l[k], 'number', `${l.mode}.${k}`);
    assert.is(l.bytes, 2 * 1024 * 1024 + 4 * 16 * 1024);
  }
  const pools = lines.filter((l) => l.mode === 'threadpool');
  assert.equal(pools.map((l) => l.size), [1, 2]);
  for (const l of pools) for (const k of ['lookupDelayMs', 'smallReadDelayMs']) assert.type(l[k], 'number');
  assert.ok(lines.some((l) => l.event === 'same-bytes' && l.equal === true));
});

test('a bad --size is a one-line usage error with exit code 2', () => {
  const r = lab(['--size', 'lots']);
  assert.is(r.status, 2);
  assert.is(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /--size/);
});

test.run();
