// The same files read four ways. Each returns, per file, the list of Buffers that hold its bytes (one for a
// whole-file read, several for a stream or a split pool read), without joining them: a join is a copy,
// and neither a hash nor a socket write needs one contiguous buffer.
import { readFileSync, createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { WorkerPool, mapLimit, DEFAULT_SPLIT_BYTES } from './pool.ts';

export type FileChunks = Buffer[];

/** Stream chunk size: bigger than the 64 KiB default so a 256 MiB file is 256 threadpool reads, not 4096. */
export const DEFAULT_STREAM_CHUNK = 1024 * 1024;
/** Files in flight at once for the modes that read many files concurrently. */
export const DEFAULT_CONCURRENCY = 16;

export function byteCount(files: FileChunks[]): number {
  let n = 0;
  for (const f of files) for (const c of f) n += c.length;
  return n;
}

/** readFileSync: every byte read on the main thread; nothing else runs until the last file is in. */
export function readAllSync(paths: readonly string[]): FileChunks[] {
  return paths.map((p) => [readFileSync(p)]);
}

/** fs.promises.readFile: open/fstat/read/close run on the libuv threadpool; the loop only sees completions. */
export function readAllPromises(paths: readonly string[], concurrency = DEFAULT_CONCURRENCY): Promise<FileChunks[]> {
  return mapLimit(paths, concurrency, async (p) => [await readFile(p)]);
}

/** fs.createReadStream: one threadpool read per chunk, each chunk handed to the loop as it lands. */
export function readAllStream(paths: readonly string[], options: { chunkBytes?: number; concurrency?: number } = {}): Promise<FileChunks[]> {
  const highWaterMark = options.chunkBytes ?? DEFAULT_STREAM_CHUNK;
  return mapLimit(paths, options.concurrency ?? DEFAULT_CONCURRENCY, async (p) => {
    const chunks: Buffer[] = [];
    for await (const chunk of createReadStream(p, { highWaterMark })) chunks.push(chunk as Buffer);
    return chunks;
  });
}

/**
 * The worker pool: a big file is split into ranges read in parallel, small files are one task each. At
 * most twice the pool size are in flight, so the bounded queue is never the thing that says no.
 */
export async function readAllPool(pool: WorkerPool, paths: readonly string[], splitBytes = DEFAULT_SPLIT_BYTES): Promise<FileChunks[]> {
  return mapLimit(paths, pool.size * 2, (p) => pool.readFile(p, splitBytes));
}

/** The per-file SHA-256 (hex) of each file, on the calling thread. */
export function sha256Files(files: FileChunks[]): string[] {
  return files.map((chunks) => {
    const h = createHash('sha256');
    for (const c of chunks) h.update(c);
    return h.digest('hex');
  });
}

/**
 * The same per-file digests computed on pool threads, files in parallel. The buffers travel to the thread
 * and back (transferred, not copied); the returned chunks replace the ones passed in, which are detached.
 */
export async function sha256FilesPool(pool: WorkerPool, files: FileChunks[]): Promise<{ digests: string[]; files: FileChunks[] }> {
  const results = await mapLimit(files, pool.size * 2, (chunks) => pool.sha256(chunks));
  return { digests: results.map((r) => r.digest), files: results.map((r) => r.buffers) };
}

/** One digest for a whole set of files: the SHA-256 of the per-file digests in order. */
export function digestOfDigests(digests: readonly string[]): string {
  return createHash('sha256').update(digests.join('\n')).digest('hex');
}
