// A worker_threads pool for blocking file work: each thread reads with plain sync calls (so neither the main
// event loop nor the libuv threadpool is involved) and hands the bytes back by transferring the ArrayBuffer.
// The queue in front of the threads is bounded (ERR_QUEUE_FULL past maxQueue), a task that throws rejects
// only its caller, a thread that dies is replaced so the pool keeps its size, and close() drains the queue
// then stops every thread. Errors from the thread keep their code (ENOENT stays ENOENT).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { stat } from 'node:fs/promises';
import { WirelabError, WirelabRangeError } from '../errors.ts';

export const DEFAULT_MAX_QUEUE = 1024;
export const DEFAULT_NICE = 0;
/**
 * A file bigger than this is read as several ranges, one task each, so every thread can help. 4 MiB rather than
 * 32: glibc serves allocations under its mmap threshold (dynamic, at most 32 MiB) from memory freed earlier,
 * so steady-state reads fault fewer fresh pages, and the threads finish together (bench/io.bench.ts).
 */
export const DEFAULT_SPLIT_BYTES = 4 * 1024 * 1024;
/** Bytes per read(2) on a pool thread: each return to user space is a point where the kernel can switch threads. */
export const DEFAULT_MAX_READ_BYTES = 1024 * 1024;

const WORKER_URL = new URL('./pool-worker.mjs', import.meta.url);

export interface PoolOptions {
  /** Threads (default: the core count). */
  size?: number;
  /** Tasks waiting for a thread before run() refuses with ERR_QUEUE_FULL (default 1024). */
  maxQueue?: number;
  /**
   * Nice value for the pool threads (Linux; default 0, unchanged). With as many busy threads as cores, the
   * event loop thread may wait for a time slice each time it wakes; a nice pool yields to it sooner.
   * (bench/io.bench.ts measures both; on a loaded machine the difference drowns in the noise.)
   */
  nice?: number;
  /**
   * Bytes of ArrayBuffers handed back with recycle() that the threads keep for reuse (default 0: off).
   * Split evenly between threads. Memory held even while idle, so it is opt-in.
   */
  maxRecycledBytes?: number;
  /** Bytes per read(2) call on a pool thread (default 1 MiB); a range is read in a loop of such calls. */
  maxReadBytes?: number;
}

export interface PoolStats {
  size: number;
  busy: number;
  queued: number;
  completed: number;
  failed: number;
  /** Threads that died and were replaced. */
  replaced: number;
  /** Reads that went into a recycled ArrayBuffer instead of a fresh one. */
  recycledReads: number;
}

type Task =
  | { op: 'read'; path: string; offset?: number; length?: number }
  | { op: 'sha256'; buffers: ArrayBuffer[] }
  | { op: 'throw'; message?: string; code?: string }
  | { op: 'exit'; exitCode?: number };

interface Job {
  id: number;
  task: Task;
  transfer: ArrayBuffer[];
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  exited: boolean;
  online: Promise<void>;
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { name?: string; message?: string; code?: string; errno?: number; syscall?: string; path?: string };
}

/** Rebuilds an error that crossed the thread boundary, keeping Node's fields so callers can test `code`. */
function reviveError(e: NonNullable<Reply['error']>): Error {
  if (e.code && /^E[A-Z]+$/.test(e.code)) {
    return Object.assign(new Error(e.message ?? e.code), { code: e.code, errno: e.errno, syscall: e.syscall, path: e.path });
  }
  if (e.code) return Object.assign(new WirelabError('ERR_TASK_FAILED', e.message ?? 'task failed'), { taskCode: e.code });
  return new WirelabError('ERR_TASK_FAILED', e.message ?? 'task failed');
}

/** The ArrayBuffer under a Buffer, if transferring it would hand over exactly these bytes and nothing else. */
export function ownedArrayBuffer(buf: Uint8Array): ArrayBuffer | undefined {
  const ab = buf.buffer;
  if (!(ab instanceof ArrayBuffer)) return undefined; // SharedArrayBuffer: shared already, nothing to transfer
  return buf.byteOffset === 0 && buf.byteLength === ab.byteLength ? ab : undefined;
}

export class WorkerPool {
  readonly size: number;
  readonly maxQueue: number;
  readonly nice: number;
  readonly maxRecycledBytes: number;
  readonly maxReadBytes: number;
  private nextRecycle = 0;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing = false;
  private closed: Promise<void> | undefined;
  private stats_ = { completed: 0, failed: 0, replaced: 0, recycledReads: 0 };

  constructor(options: PoolOptions = {}) {
    const size = options.size ?? availableParallelism();
    const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (!Number.isInteger(size) || size < 1) throw new WirelabRangeError('ERR_BAD_ARGS', `pool size must be a whole number >= 1, got ${size}`);
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new WirelabRangeError('ERR_BAD_ARGS', `maxQueue must be a whole number >= 0, got ${maxQueue}`);
    this.size = size;
    this.maxQueue = maxQueue;
    this.nice = options.nice ?? DEFAULT_NICE;
    this.maxRecycledBytes = options.maxRecycledBytes ?? 0;
    this.maxReadBytes = options.maxReadBytes ?? DEFAULT_MAX_READ_BYTES;
    if (!Number.isInteger(this.maxReadBytes) || this.maxReadBytes < 1) throw new WirelabRangeError('ERR_BAD_ARGS', `maxReadBytes must be a whole number >= 1, got ${this.maxReadBytes}`);
    if (!Number.isInteger(this.nice) || this.nice < 0 || this.nice > 19) throw new WirelabRangeError('ERR_BAD_ARGS', `nice must be from 0 to 19, got ${this.nice}`);
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  get stats(): PoolStats {
    const live = this.slots.filter((s) => !s.exited);
    return { size: live.length, busy: live.filter((s) => s.job).length, queued: this.queue.length, ...this.stats_ };
  }

  /** Resolves once every thread has started (useful before timing, so start-up is not counted). */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.online));
  }

  private spawn(): Slot {
    // execArgv: [] keeps the parent's loader (tsx) out of the worker: pool-worker.mjs is plain JavaScript.
    const worker = new Worker(WORKER_URL, { execArgv: [], workerData: { nice: this.nice, maxRecycledBytes: Math.floor(this.maxRecycledBytes / this.size), maxReadBytes: this.maxReadBytes } });
    const online = new Promise<void>((resolve) => {
      worker.once('online', resolve);
      worker.once('exit', () => resolve());
    });
    const slot: Slot = { worker, job: undefined, exited: false, online };
    worker.on('message', (reply: Reply) => this.onReply(slot, reply));
    // An uncaught error in the thread ends it; 'exit' follows and does the bookkeeping.
    worker.on('error', () => {});
    worker.on('exit', (code) => this.onExit(slot, code));
    // Referenced only while starting or busy: an idle pool never keeps the process alive by itself.
    void online.then(() => {
      if (!slot.job) worker.unref();
    });
    return slot;
  }

  private onReply(slot: Slot, reply: Reply): void {
    const job = slot.job;
    if (!job || job.id !== reply.id) return;
    slot.job = undefined;
    slot.worker.unref();
    if (reply.ok) {
      this.stats_.completed++;
      job.resolve(reply.value);
    } else {
      this.stats_.failed++;
      job.reject(reviveError(reply.error ?? {}));
    }
    this.pump();
  }

  private onExit(slot: Slot, code: number): void {
    slot.exited = true;
    const job = slot.job;
    slot.job = undefined;
    if (job) {
      this.stats_.failed++;
      job.reject(new WirelabError('ERR_WORKER_EXITED', `pool thread exited with code ${code} while running '${job.task.op}'`));
    }
    const i = this.slots.indexOf(slot);
    if (i >= 0 && !this.closing) {
      this.slots[i] = this.spawn();
      this.stats_.replaced++;
      this.pump();
    }
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) break;
      if (slot.job || slot.exited) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, ...job.task }, job.transfer);
    }
    if (this.closing && this.queue.length === 0 && this.slots.every((s) => !s.job)) this.finishClose();
  }

  /** Queues a task. Refuses with ERR_POOL_CLOSED after close(), ERR_QUEUE_FULL when the queue is at maxQueue. */
  run<T>(task: Task, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closing) return Promise.reject(new WirelabError('ERR_POOL_CLOSED', 'the worker pool is closed'));
    const idle = this.slots.some((s) => !s.job && !s.exited);
    if (!idle && this.queue.length >= this.maxQueue) {
      return Promise.reject(new WirelabRangeError('ERR_QUEUE_FULL', `the worker pool queue is full (${this.maxQueue} tasks waiting)`));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, transfer, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Reads a byte range (the whole file by default) on a pool thread; the Buffer owns the transferred memory. */
  async read(path: string, range: { offset?: number; length?: number } = {}): Promise<Buffer> {
    const { buffer, reused } = await this.run<{ buffer: ArrayBuffer; reused: boolean }>({ op: 'read', path, ...range });
    if (reused) this.stats_.recycledReads++;
    return Buffer.from(buffer);
  }

  /**
   * Reads a whole file, split into ranges of splitBytes read in parallel. Returns the pieces in order:
   * joining them would be a copy, and a hash or a socket write can take them one after another.
   */
  async readFile(path: string, splitBytes = DEFAULT_SPLIT_BYTES): Promise<Buffer[]> {
    const { size } = await stat(path);
    if (size <= splitBytes) return [await this.read(path)];
    const ranges: Promise<Buffer>[] = [];
    for (let offset = 0; offset < size; offset += splitBytes) ranges.push(this.read(path, { offset, length: Math.min(splitBytes, size - offset) }));
    return Promise.all(ranges);
  }

  /**
   * SHA-256 of the buffers, computed on a pool thread. The buffers are transferred there and back, so they
   * are detached while the thread works: use the ones returned. A buffer that shares its memory (a slice
   * of a bigger ArrayBuffer) is refused with ERR_NOT_TRANSFERABLE rather than copied behind your back.
   */
  async sha256(buffers: Buffer[]): Promise<{ digest: string; buffers: Buffer[] }> {
    const abs = buffers.map((b) => {
      const ab = ownedArrayBuffer(b);
      if (!ab) throw new WirelabError('ERR_NOT_TRANSFERABLE', 'buffer does not own its whole ArrayBuffer; copy it first (Buffer.from(b))');
      return ab;
    });
    const r = await this.run<{ digest: string; buffers: ArrayBuffer[] }>({ op: 'sha256', buffers: abs }, abs);
    return { digest: r.digest, buffers: r.buffers.map((ab) => Buffer.from(ab)) };
  }

  /**
   * Hands buffers back for reuse by later reads of the same size (see maxRecycledBytes). They are
   * transferred, so the caller's Buffers are detached afterwards (byteLength 0) and cannot alias a later
   * read. Buffers that share their ArrayBuffer are skipped. Returns the bytes handed over.
   */
  recycle(buffers: Buffer[]): number {
    if (this.maxRecycledBytes === 0 || this.closing) return 0;
    const live = this.slots.filter((s) => !s.exited);
    if (live.length === 0) return 0;
    let bytes = 0;
    for (const b of buffers) {
      const ab = ownedArrayBuffer(b);
      if (!ab || ab.byteLength === 0) continue;
      bytes += ab.byteLength; // before the transfer detaches it
      const slot = live[this.nextRecycle++ % live.length]!;
      slot.worker.postMessage({ id: 0, op: 'recycle', buffers: [ab] }, [ab]);
    }
    return bytes;
  }

  /**
   * Refuses new work at once, lets queued and running tasks finish, then stops every thread.
   * Idempotent: a second call returns the same promise.
   */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = new Promise<void>((resolve) => {
      this.finishClose = () => {
        this.finishClose = () => {};
        void Promise.all(this.slots.map((s) => (s.exited ? undefined : s.worker.terminate()))).then(() => resolve());
      };
    });
    this.pump();
    return this.closed;
  }

  private finishClose: () => void = () => {};
}

/** Runs fn over items with at most `limit` in flight, in order of the results (a caller-side bound for a bounded queue). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(lanes);
  return results;
}
