import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffBounds, backoffSchedule, retry, BACKOFF_STRATEGIES, type RetryEvent } from '../../src/client/retry.ts';
import { WirelabError } from '../../src/errors.ts';
import { rejects, seededRandom } from '../_helpers.ts';

const test = suite('client/retry');

test('each strategy stays within its formula bounds (AWS backoff-and-jitter)', () => {
  for (const strategy of BACKOFF_STRATEGIES) {
    const random = seededRandom(42);
    const o = { strategy, baseMs: 10, capMs: 500, random };
    const s = backoffSchedule(o);
    let prev = 10;
    for (let n = 0; n < 12; n++) {
      const [min, max] = backoffBounds(o, n, prev);
      const wait = s.next();
      assert.ok(wait >= min && wait <= max, `${strategy} attempt ${n}: ${wait} not in [${min}, ${max}]`);
      assert.ok(wait <= 500, `${strategy}: cap exceeded`);
      prev = wait;
    }
  }
});

test('formulas: exponential doubles to the cap, equal keeps at least half, none is zero', () => {
  const o = { baseMs: 10, capMs: 100 };
  assert.equal([0, 1, 2, 3, 4].map((n) => backoffBounds({ ...o, strategy: 'exponential' }, n, 0)[0]), [10, 20, 40, 80, 100]);
  assert.equal(backoffBounds({ ...o, strategy: 'equal' }, 2, 0), [20, 40]);
  assert.equal(backoffBounds({ ...o, strategy: 'full' }, 2, 0), [0, 40]);
  assert.equal(backoffBounds({ ...o, strategy: 'none' }, 5, 0), [0, 0]);
  assert.equal(backoffBounds({ ...o, strategy: 'decorrelated' }, 3, 20), [10, 60]);
});

test('retries until success, then calls no more', async () => {
  let calls = 0;
  const events: RetryEvent[] = [];
  const result = await retry(async () => {
    calls++;
    if (calls < 3) throw new WirelabError('ERR_TIMEOUT', 'lost');
    return 'ok';
  }, { strategy: 'none', maxAttempts: 5, onEvent: (e) => events.push(e) });
  assert.is(result, 'ok');
  assert.is(calls, 3);
  assert.equal(events.map((e) => e.type), ['attempt', 'failure', 'backoff', 'attempt', 'failure', 'backoff', 'attempt', 'success']);
  await new Promise((r) => setTimeout(r, 20));
  assert.is(calls, 3);
});

test('gives up with ERR_RETRIES_EXHAUSTED', async () => {
  let calls = 0;
  await rejects(retry(async () => { calls++; throw new Error('no'); }, { strategy: 'none', maxAttempts: 4 }), 'ERR_RETRIES_EXHAUSTED');
  assert.is(calls, 4);
});

test('per-attempt timeout aborts a hung attempt with ERR_TIMEOUT and retries', async () => {
  const codes: (string | undefined)[] = [];
  await rejects(
    retry(() => new Promise(() => {}), { strategy: 'none', maxAttempts: 2, attemptTimeoutMs: 20, onEvent: (e) => { if (e.type === 'failure') codes.push(e.code); } }),
    'ERR_RETRIES_EXHAUSTED',
  );
  assert.equal(codes, ['ERR_TIMEOUT', 'ERR_TIMEOUT']);
});

test('deadline ends the call with ERR_DEADLINE', async () => {
  await rejects(retry(() => new Promise(() => {}), { strategy: 'exponential', baseMs: 10, maxAttempts: 100, attemptTimeoutMs: 15, deadlineMs: 60 }), 'ERR_DEADLINE');
});

test('abort during backoff stops at once and no attempt follows', async () => {
  const ac = new AbortController();
  let calls = 0;
  const p = retry(async () => { calls++; throw new Error('down'); }, { strategy: 'exponential', baseMs: 1000, maxAttempts: 5, signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  const t0 = Date.now();
  await rejects(p, 'ERR_ABORTED');
  assert.ok(Date.now() - t0 < 500, 'abort did not end the wait at once');
  assert.is(calls, 1);
});

test('a non-retryable error is thrown as it is', async () => {
  let calls = 0;
  await rejects(retry(async () => { calls++; throw new WirelabError('ERR_BAD_REQUEST', 'no'); }, { isRetryable: () => false }), 'ERR_BAD_REQUEST');
  assert.is(calls, 1);
});

test.run();
