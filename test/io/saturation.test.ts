import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runSaturation } from '../../src/io/saturation.ts';
import { needTool } from '../_helpers.ts';

const test = suite('io/saturation');

test('with one threadpool thread, a lookup and a small read wait for every slow read before them', async () => {
  if (!needTool('mkfifo', 'the slow files are FIFOs')) return;
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) return;
  const [r] = await runSaturation({ sizes: [1], slowReads: 6, slowReadMs: 20 });
  // Six reads that each block their thread for >= 20 ms, one after another on the only thread: a lower
  // bound set by the mechanism, not a timing guess.
  assert.is(r!.size, 1);
  assert.is(r!.slowReads, 6);
  assert.ok(r!.lookupDelayMs >= 6 * 20 * 0.95, `lookup waited ${r!.lookupDelayMs} ms`);
  assert.ok(r!.smallReadDelayMs >= 6 * 20 * 0.95, `small read waited ${r!.smallReadDelayMs} ms`);
});

test('with as many threads as slow reads, the lookup no longer waits for all of them in turn', async () => {
  if (!needTool('mkfifo', 'the slow files are FIFOs')) return;
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) return;
  const [r] = await runSaturation({ sizes: [8], slowReads: 6, slowReadMs: 50 });
  // Served in parallel: well under the 300 ms the six would take one after another.
  assert.ok(r!.slowReadsTotalMs < 6 * 50 * 0.8, `slow reads took ${r!.slowReadsTotalMs} ms`);
});

test.run();
