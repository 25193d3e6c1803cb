import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerPool, mapLimit } from '../../src/io/pool.ts';
import { rejects } from '../_helpers.ts';

const test = suite('io/pool');
const MiB = 1024 * 1024;
let dir = '';
let file = '';
let pool: WorkerPool;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wirelab-pool-test-'));
  file = join(dir, 'data.bin');
  writeFileSync(file, randomFillSync(Buffer.alloc(3 * MiB + 12345)));
  pool = new WorkerPool({ size: 2, maxQueue: 8 });
  await pool.ready();
});

test.after(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

const sha = (bufs: Buffer[]) => {
  const h = createHash('sha256');
  for (const b of bufs) h.update(b);
  return h.digest('hex');
};

test('returns the same bytes as readFileSync, whole and split into ranges', async () => {
  const expected = sha([readFileSync(file)]);
  assert.is(sha([await pool.read(file)]), expected);
  const parts = await pool.readFile(file, 1 * MiB);
  assert.is(parts.length, 4);
  assert.is(sha(parts), expected);
});

test('a range read in many small read() calls returns the same bytes', async () => {
  const small = new WorkerPool({ size: 1, maxReadBytes: 64 * 1024 + 7 });
  try {
    assert.is(sha([await small.read(file, { offset: 12345, length: 2 * MiB })]), sha([readFileSync(file).subarray(12345, 12345 + 2 * MiB)]));
  } finally {
    await small.close();
  }
});

test('hands the bytes back without a copy: each Buffer owns a whole transferred ArrayBuffer', async () => {
  const parts = await pool.readFile(file, 1 * MiB);
  for (const p of parts) {
    assert.is(p.byteOffset, 0);
    assert.is(p.buffer.byteLength, p.byteLength);
  }
  // sha256 transfers them to a thread: the caller's views are detached, the returned ones hold the bytes.
  const expected = sha(parts.map((p) => Buffer.from(p)));
  const r = await pool.sha256(parts);
  assert.ok(parts.every((p) => p.byteLength === 0), 'input buffers detached by the transfer');
  assert.is(r.digest, expected);
  assert.is(sha(r.buffers), expected);
});

test('a task that throws rejects its caller and the pool keeps its size', async () => {
  await rejects(pool.run({ op: 'throw', message: 'boom' }), 'ERR_TASK_FAILED');
  assert.is(pool.stats.size, 2);
  assert.is(pool.stats.replaced, 0);
  assert.is((await pool.read(file, { offset: 0, length: 10 })).length, 10);
});

test('a thread that dies is replaced: the task rejects with ERR_WORKER_EXITED, the size stays', async () => {
  await rejects(pool.run({ op: 'exit', exitCode: 3 }), 'ERR_WORKER_EXITED');
  assert.is(pool.stats.size, 2);
  assert.is(pool.stats.replaced, 1);
  const results = await mapLimit([0, 1, 2, 3], 4, (i) => pool.read(file, { offset: i, length: 1 }));
  assert.is(results.length, 4);
});

test('a file that does not exist rejects with ENOENT', async () => {
  const err = await rejects(pool.read(join(dir, 'missing.bin')), 'ENOENT');
  assert.is((err as NodeJS.ErrnoException).syscall, 'open');
});

test('the queue is bounded: past maxQueue waiting tasks, run() refuses with ERR_QUEUE_FULL', async () => {
  const small = new WorkerPool({ size: 1, maxQueue: 1 });
  try {
    await small.ready();
    const first = small.read(file); // goes to the idle thread
    const second = small.read(file); // waits in the queue
    await rejects(small.read(file), 'ERR_QUEUE_FULL');
    assert.is((await first).length, 3 * MiB + 12345);
    assert.is((await second).length, 3 * MiB + 12345);
  } finally {
    await small.close();
  }
});

test('close() finishes queued work, then refuses new work with ERR_POOL_CLOSED', async () => {
  const p = new WorkerPool({ size: 1 });
  const queued = [p.read(file), p.read(file), p.read(file)];
  const closed = p.close();
  await rejects(p.read(file), 'ERR_POOL_CLOSED');
  const done = await Promise.all(queued);
  assert.ok(done.every((b) => b.length === 3 * MiB + 12345));
  await closed;
  assert.is(p.stats.size, 0);
  await rejects(p.run({ op: 'throw' }), 'ERR_POOL_CLOSED');
});

test('recycled buffers are reused for later reads and never alias them: the bytes are the file\'s', async () => {
  const p = new WorkerPool({ size: 1, maxRecycledBytes: 8 * MiB });
  try {
    const expected = sha([readFileSync(file)]);
    const first = await p.readFile(file, 1 * MiB);
    const handed = p.recycle(first);
    assert.is(handed, 3 * MiB + 12345);
    assert.ok(first.every((b) => b.byteLength === 0), 'the caller\'s views are detached');
    const second = await p.readFile(file, 1 * MiB);
    assert.is(sha(second), expected);
    assert.is(p.stats.recycledReads, 4, 'all four ranges went into recycled memory');
  } finally {
    await p.close();
  }
});

test('sha256 refuses a buffer that shares its ArrayBuffer, rather than copy it silently', async () => {
  const whole = Buffer.from(new ArrayBuffer(64));
  await rejects(pool.sha256([whole.subarray(8, 16)]), 'ERR_NOT_TRANSFERABLE');
});

test.run();
