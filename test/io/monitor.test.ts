import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LoopMonitor, renderTimeline, gapHistogram, type LoopReport } from '../../src/io/monitor.ts';

const test = suite('io/monitor');

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('a blocked loop is seen by both the ticker and monitorEventLoopDelay', async () => {
  const m = new LoopMonitor();
  await m.begin();
  busy(80);
  const r = await m.end();
  assert.ok(r.maxGapMs >= 75, `max gap ${r.maxGapMs}`);
  assert.ok(r.loopDelayMaxMs >= 75, `histogram max ${r.loopDelayMaxMs}`);
  assert.ok(r.ticksMissed >= 70, `ticks missed ${r.ticksMissed}`);
  assert.match(renderTimeline(r), /stalled/);
});

function report(ticks: number[], durationMs: number): LoopReport {
  return { startMs: 1000, endMs: 1000 + durationMs, ticks, ticksMissed: 0, maxGapMs: 0, loopDelayMaxMs: 0, loopDelayP50Ms: 0, loopDelayP99Ms: 0, loopDelaySamples: 0, loopDelayPercentilesMs: [], gc: { count: 0, totalMs: 0, maxMs: 0 }, cpu: null, calmWaitMs: 0 };
}

test('timeline: one row per 10 ms, a mark per ms with a tick, repeated rows folded', () => {
  const ticks = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5];
  const text = renderTimeline(report(ticks, 50), { mark: '#', gap: '.' });
  assert.equal(text.split('\n').filter(Boolean), [
    '     0 ms |##########| 10 ticks',
    '    10 ms |..........| stalled',
    '                       (3 more rows like this)',
  ]);
});

test('gap histogram buckets the time between ticks', () => {
  const rows = gapHistogram(report([1, 2, 3, 40], 41));
  const byLabel = Object.fromEntries(rows.map((r) => [r.label, r.count]));
  assert.is(byLabel['1-2 ms'], 4); // 0->1, 1->2, 2->3, 40->41
  assert.is(byLabel['20-50 ms'], 1); // 3->40
});

test.run();
