import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLabFiles, type LabFiles } from '../../src/io/files.ts';
import { WorkerPool } from '../../src/io/pool.ts';
import { runModes, type ModeResult } from '../../src/io/modes.ts';

const test = suite('io/modes');
// Big enough that readFileSync blocks for tens of ms even at page-cache speed (~1.7 GB/s here), so the
// stall is unambiguous against scheduling noise on a shared 2-core machine.
const BIG = 128 * 1024 * 1024;
let files: LabFiles;
let pool: WorkerPool;

test.before(async () => {
  files = createLabFiles({ bigBytes: BIG, smallFiles: 8, prefix: 'wirelab-modes-test-' });
  pool = new WorkerPool({ size: 2 });
  await pool.ready();
});

test.after(async () => {
  await pool.close();
  files.remove();
});

const byMode = (rs: ModeResult[]) => Object.fromEntries(rs.map((r) => [r.mode, r]));

test('sync blocks the loop for most of its read; promises, stream and the pool leave it free for most of theirs', async () => {
  // Each async mode is judged against its own read time, not against sync's: on a loaded machine a
  // descheduled process stalls every mode, but only sync can stall for (nearly) the whole read.
  // The machine is shared: one retry if a long deschedule still made an async mode look blocked.
  let last = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    const { results } = await runModes({ paths: files.all, pool, modes: ['sync', 'promises', 'stream', 'workers'] });
    const m = byMode(results);
    const sync = m.sync!;
    assert.ok(sync.loopDelayMaxMs >= 0.5 * sync.wallMs, `sync: loop delay ${sync.loopDelayMaxMs} ms of ${sync.wallMs} ms`);
    assert.ok(sync.ticksMissed >= 0.5 * sync.wallMs, `sync: ${sync.ticksMissed} ticks missed in ${sync.wallMs} ms`);
    for (const r of results) assert.is(r.bytes, files.totalBytes, `${r.mode} read every byte`);
    const blocked = ['promises', 'stream', 'workers'].filter((name) => {
      const r = m[name]!;
      const ticked = r.loop.ticks.length;
      return !(r.loopDelayMaxMs < 0.5 * r.wallMs && ticked >= 5);
    });
    if (blocked.length === 0) return;
    last = blocked.map((n) => `${n}: loop delay ${m[n]!.loopDelayMaxMs} ms of ${m[n]!.wallMs} ms, ${m[n]!.loop.ticks.length} ticks`).join('; ');
  }
  assert.unreachable(`async modes blocked the loop for most of their read: ${last}`);
});

test('hashing on the main thread stalls the loop, hashing in the pool does not; both digests match readFileSync', async () => {
  const out = await runModes({ paths: files.all, pool, modes: ['sync', 'workers', 'hash-main', 'hash-workers'] });
  const m = byMode(out.results);
  assert.ok(m['hash-main']!.loopDelayMaxMs >= 0.5 * m['hash-main']!.wallMs, 'hash-main stalls');
  assert.ok(out.syncDigest && out.syncDigest === out.workersDigest, 'pool read the same bytes as readFileSync');
  assert.is(out.hashWorkersDigest, out.workersDigest);
});

test.run();
