// One thread of the WorkerPool (src/io/pool.ts). Plain ESM JavaScript on purpose: it loads the same way
// under `node`, under `tsx` and from a test, with no loader in the worker (the pool starts it with
// execArgv: []). It blocks only its own thread: sync reads here never touch the main event loop nor the
// libuv threadpool, and the bytes go back by transferring the ArrayBuffer, not by copying it.
import { parentPort, workerData } from 'node:worker_threads';
import { openSync, fstatSync, readSync, closeSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createHash } from 'node:crypto';

if (!parentPort) throw new Error('pool-worker.mjs must run as a worker thread');
const port = parentPort;

// Lower this thread's priority (Linux: setpriority(2) on a thread id applies to that thread only), so
// when the event loop thread wakes it gets a core at once instead of waiting out a pool thread's time
// slice. Raising one's own nice value needs no privilege; where it fails the thread simply runs at 0.
if (workerData?.nice) {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, workerData.nice);
  } catch {
    /* not Linux, or /proc not mounted */
  }
}

// ArrayBuffers handed back by the caller (WorkerPool.recycle), by size, up to maxRecycledBytes. Reading into
// memory that is already mapped skips the page faults (and the kernel zeroing each new page), which is most
// of the cost of a page-cache read into fresh memory.
const free = new Map();
let freeBytes = 0;
const maxRecycledBytes = workerData?.maxRecycledBytes ?? 0;

// Bytes per read(2). One read of a whole 32 MiB range into fresh memory is ~15-20 ms in the kernel (copy plus a
// page fault per 4 KiB), and this kernel (PREEMPT_NONE, HZ 250) does not preempt kernel code there: with every
// core in such a read, the event loop thread waited that long for a CPU (bench/io.bench.ts measures it).
// Returning to user space every 1 MiB gives the scheduler a point to switch, for the same bytes/s.
const maxReadBytes = workerData?.maxReadBytes ?? 1024 * 1024;

function take(length) {
  const list = free.get(length);
  if (list && list.length > 0) {
    freeBytes -= length;
    return list.pop();
  }
  return new ArrayBuffer(length);
}

function keep(buffers) {
  for (const ab of buffers) {
    if (ab.byteLength === 0 || freeBytes + ab.byteLength > maxRecycledBytes) continue;
    const list = free.get(ab.byteLength) ?? [];
    list.push(ab);
    free.set(ab.byteLength, list);
    freeBytes += ab.byteLength;
  }
}

/** Reads [offset, offset+length) into an ArrayBuffer that this thread owns and can transfer. */
function readRange(path, offset, length) {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.min(offset, size);
    const want = length === undefined ? size - start : Math.min(length, size - start);
    // A recycled buffer still holds old bytes: every byte is overwritten below, or the result is cut to
    // what was read (slice), so none of them can leak to the caller.
    const reused = free.get(want)?.length > 0;
    const buffer = take(want);
    const view = new Uint8Array(buffer);
    let done = 0;
    while (done < want) {
      const n = readSync(fd, view, done, Math.min(want - done, maxReadBytes), start + done);
      if (n === 0) break; // the file shrank under us: hand back what was there
      done += n;
    }
    return { buffer: done === want ? buffer : buffer.slice(0, done), fileSize: size, reused };
  } finally {
    closeSync(fd);
  }
}

function errorFields(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path };
}

port.on('message', (msg) => {
  const { id, op } = msg;
  try {
    switch (op) {
      case 'read': {
        const { buffer, fileSize, reused } = readRange(msg.path, msg.offset ?? 0, msg.length);
        port.postMessage({ id, ok: true, value: { buffer, fileSize, reused } }, [buffer]);
        return;
      }
      case 'sha256': {
        // Hash the caller's bytes, then give the same ArrayBuffers back (transferred both ways, no copy).
        const hash = createHash('sha256');
        for (const ab of msg.buffers) hash.update(new Uint8Array(ab));
        port.postMessage({ id, ok: true, value: { digest: hash.digest('hex'), buffers: msg.buffers } }, msg.buffers);
        return;
      }
      case 'recycle':
        keep(msg.buffers); // no reply: the pool does not wait for this
        return;
      case 'throw':
        // A task that fails inside the worker: the error goes back to the caller, the thread lives on.
        throw Object.assign(new Error(msg.message ?? 'task threw'), { code: msg.code });
      case 'exit':
        // A task that kills its thread (like a crash in native code would): the pool must replace it.
        process.exit(msg.exitCode ?? 1);
        return;
      default:
        throw Object.assign(new Error(`unknown pool op '${op}'`), { code: 'ERR_TASK_FAILED' });
    }
  } catch (err) {
    port.postMessage({ id, ok: false, error: errorFields(err) });
  }
});
