// Threadpool saturation (nodejs/node#8436): 64 slow file reads hold every libuv threadpool thread, and an
// unrelated dns.lookup('localhost') and a 16 KiB file read queue behind them. One child process per
// UV_THREADPOOL_SIZE, because libuv reads that variable once, when the pool starts. The mechanism (FIFOs
// answered by a responder thread a fixed delay after each read begins) is described in saturation-child.mjs.
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
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
  /** Called with each size's result as soon as its child finishes (in size order). */
  onResult?: (r: SaturationResult) => void;
  /**
   * Run the children at the same time (default false). The slow reads block on FIFOs, not on the CPU, so
   * the children barely compete; the demo does this to stay quick, explicit runs go one at a time.
   */
  concurrent?: boolean;
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
    const oneIn = async (fifoDir: string, size: number): Promise<SaturationResult> => {
      const env = { ...process.env, UV_THREADPOOL_SIZE: String(size) };
      let stdout: string;
      try {
        ({ stdout } = await run(process.execPath, [CHILD_URL.pathname, fifoDir, String(slowReads), String(slowReadMs), small], { env, timeout: 30_000 }));
      } catch (err) {
        const out = (err as { stdout?: string }).stdout ?? '';
        const detail = /"error":"([^"]*)"/.exec(out)?.[1] ?? (err as Error).message;
        throw new WirelabError('ERR_SATURATION_FAILED', `threadpool run with UV_THREADPOOL_SIZE=${size} failed: ${detail}`, { cause: err });
      }
      return { mode: 'threadpool' as const, ...(JSON.parse(stdout.trim().split('\n').pop()!) as Omit<SaturationResult, 'mode'>) };
    };
    const one = (size: number) => oneIn(dir, size);
    const results: SaturationResult[] = [];
    if (options.concurrent) {
      // Each child needs its own FIFOs: two readers on one FIFO would steal each other's bytes.
      const dirs = await Promise.all(sizes.map(async (_, i) => {
        const d = join(dir, `run-${i}`);
        await mkdir(d);
        await run('mkfifo', Array.from({ length: slowReads }, (_, j) => join(d, `slow-${String(j).padStart(4, '0')}`)));
        return d;
      }));
      const all = await Promise.all(sizes.map((size, i) => oneIn(dirs[i]!, size)));
      for (const r of all) {
        results.push(r);
        options.onResult?.(r);
      }
    } else {
      for (const size of sizes) {
        const r = await one(size);
        results.push(r);
        options.onResult?.(r);
      }
    }
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
