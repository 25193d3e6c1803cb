// Threadpool saturation (nodejs/node#8436): 64 slow file reads hold every libuv threadpool thread, and an
// unrelated dns.lookup('localhost') and a 16 KiB file read queue behind them. One child process per
// UV_THREADPOOL_SIZE, because libuv reads that variable once, when the pool starts. The mechanism (FIFOs
// answered by a responder thread a fixed delay after each read begins) is described in saturation-child.mjs.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WirelabError } from '../errors.ts';

const run = promisify(execFile);
const CHILD_URL = new URL('./saturation-child.mjs', import.meta.url);

export const DEFAULT_POOL_SIZES = [1, 4, 16] as const;
export const DEFAULT_SLOW_READS = 64;
export const DEFAULT_SLOW_READ_MS = 10;

export interface SaturationResult {
  mode: 'threadpool';
  size: number;
  lookupDelayMs: number;
  smallReadDelayMs: number;
  slowReads: number;
  slowReadDelayMs: number;
  slowReadsTotalMs: number;
  baselineLookupMs: number;
  baselineSmallReadMs: number;
}

export interface SaturationOptions {
  sizes?: readonly number[];
  slowReads?: number;
  slowReadMs?: number;
  /** Called with each size's result as soon as its child finishes. */
  onResult?: (r: SaturationResult) => void;
}

export async function runSaturation(options: SaturationOptions = {}): Promise<SaturationResult[]> {
  const sizes = options.sizes ?? DEFAULT_POOL_SIZES;
  const slowReads = options.slowReads ?? DEFAULT_SLOW_READS;
  const slowReadMs = options.slowReadMs ?? DEFAULT_SLOW_READ_MS;
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-fifo-'));
  try {
    const fifos = Array.from({ length: slowReads }, (_, i) => join(dir, `slow-${String(i).padStart(4, '0')}`));
    await run('mkfifo', fifos); // Node has no mkfifo(3); coreutils does
    const small = join(dir, 'small.bin');
    await writeFile(small, Buffer.alloc(16 * 1024, 7));
    const results: SaturationResult[] = [];
    for (const size of sizes) {
      const env = { ...process.env, UV_THREADPOOL_SIZE: String(size) };
      let stdout: string;
      try {
        ({ stdout } = await run(process.execPath, [CHILD_URL.pathname, dir, String(slowReads), String(slowReadMs), small], { env, timeout: 30_000 }));
      } catch (err) {
        const out = (err as { stdout?: string }).stdout ?? '';
        const detail = /"error":"([^"]*)"/.exec(out)?.[1] ?? (err as Error).message;
        throw new WirelabError('ERR_SATURATION_FAILED', `threadpool run with UV_THREADPOOL_SIZE=${size} failed: ${detail}`, { cause: err });
      }
      const r = { mode: 'threadpool' as const, ...(JSON.parse(stdout.trim().split('\n').pop()!) as Omit<SaturationResult, 'mode'>) };
      results.push(r);
      options.onResult?.(r);
    }
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
