import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffBounds, BACKOFF_STRATEGIES } from '../../src/client/retry.ts';
import { FULL_STORM, runStorm, scaleStorm, sparkline, type StormConfig, type StormResult } from '../../src/patterns/retry-storm.ts';
import { renderStormSvg } from '../../src/patterns/retry-storm-chart.ts';
import { needTool, seededRandom } from '../_helpers.ts';

const test = suite('patterns/retry-storm');
const dir = mkdtempSync(join(tmpdir(), 'wirelab-storm-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// A small storm: 20 clients, 100 ms outage, 10 ms buckets, 5 calls per bucket after it.
const SMALL: StormConfig = { ...scaleStorm(FULL_STORM, 0.05), clients: 20, capacityPerBucket: 5, maxAttempts: 10_000 };
const results = new Map<string, StormResult>();

for (const strategy of BACKOFF_STRATEGIES) {
  test(`${strategy}: every client gets through, every wait within its formula's bounds, no call after success`, async () => {
    const r = await runStorm(strategy, SMALL, { random: seededRandom(7) });
    results.set(strategy, r);
    assert.is(r.failedClients, 0);
    assert.ok(r.allSucceededMs !== undefined && r.allSucceededMs >= SMALL.outageMs, 'nobody succeeds during the outage');
    assert.is(r.lateAttempts, 0);
    assert.is(r.successes.reduce((a, b) => a + b, 0), SMALL.clients);
    assert.is(r.arrivals.reduce((a, b) => a + b, 0), r.totalCalls);
    assert.ok(r.totalCalls >= SMALL.clients * 2, 'everyone failed at least once during the outage');
    // Replay each client's waits against the formula: decorrelated depends on the previous wait.
    const o = { strategy, baseMs: SMALL.baseMs, capMs: SMALL.capMs };
    const prev = new Map<number, number>();
    for (const w of r.waits) {
      const [min, max] = backoffBounds(o, w.attempt - 1, prev.get(w.client) ?? SMALL.baseMs);
      assert.ok(w.delayMs >= min && w.delayMs <= max && w.delayMs <= SMALL.capMs, `${strategy} client ${w.client} attempt ${w.attempt}: ${w.delayMs} not in [${min}, ${max}]`);
      prev.set(w.client, w.delayMs);
    }
    // Server capacity held: never more successes in a bucket than it serves.
    assert.ok(r.served.every((s) => s <= SMALL.capacityPerBucket), `served ${r.served}`);
  });
}

test('refuse mode: connects are refused during the outage, then every client gets through', async () => {
  const r = await runStorm('full', { ...SMALL, outage: 'refuse' }, { random: seededRandom(3) });
  assert.is(r.failedClients, 0);
  assert.ok(r.allSucceededMs! >= SMALL.outageMs);
  assert.is(r.lateAttempts, 0);
});

test('abort: the storm stops, no client calls again, the run returns with every client failed', async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 30);
  const r = await runStorm('exponential', SMALL, { signal: controller.signal });
  assert.is(r.failedClients, SMALL.clients);
  const calls = r.totalCalls;
  await new Promise((res) => setTimeout(res, 100));
  assert.is(r.totalCalls, calls);
  assert.is(r.lateAttempts, 0);
});

test('the chart is valid SVG (parsed by xmllint) with one series per strategy', () => {
  const list = BACKOFF_STRATEGIES.map((s) => results.get(s)!).filter(Boolean);
  assert.is(list.length, BACKOFF_STRATEGIES.length, 'the strategy tests ran first');
  const svg = renderStormSvg(list, { subtitle: 'a <test> & "quotes"' });
  const file = join(dir, 'storm.svg');
  writeFileSync(file, svg);
  if (needTool('xmllint', 'SVG well-formedness')) {
    const r = spawnSync('xmllint', ['--noout', file], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const xpath = (expr: string) => spawnSync('xmllint', ['--xpath', expr, file], { encoding: 'utf8' }).stdout.trim();
    assert.is(xpath("count(/*[local-name()='svg'])"), '1');
    assert.is(xpath("count(//*[local-name()='g'][@class='series'])"), String(BACKOFF_STRATEGIES.length));
    for (const s of BACKOFF_STRATEGIES) assert.is(xpath(`count(//*[local-name()='g'][@data-strategy='${s}'])`), '1', s);
  }
  assert.not.match(svg, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no external references');
  assert.not.match(svg, /<script|@import|@font-face/);
});

test('sparkline: empty buckets as dots, peak as a full block, buckets merged to fit', () => {
  assert.is(sparkline([0, 1, 8, 4], 8, 10), '·▁█▄');
  assert.is(sparkline([1, 8, 0, 0], 8, 2), '█·');
});
test.run();
