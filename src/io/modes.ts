// Runs each read mode under the heartbeat (and, if given, the echo probe) and reports the figures the lab
// prints: wall time, bytes/s, the loop's max and p99 delay, ticks missed and the echo latency max.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readdirSync, readFileSync } from 'node:fs';
import { LoopMonitor, type LoopReport } from './monitor.ts';
import { wallNow, type EchoProbe, type EchoReport } from './echo.ts';
import type { WorkerPool } from './pool.ts';
import {
  readAllSync, readAllPromises, readAllStream, readAllPool, sha256Files, sha256FilesPool, digestOfDigests, byteCount,
  type FileChunks,
} from './readers.ts';

export const MODES = ['sync', 'promises', 'stream', 'workers', 'hash-main', 'hash-workers'] as const;
export type ModeName = (typeof MODES)[number];

/** The one JSON line per mode that --json prints (the lab adds `event`). */
export interface ModeFigures {
  mode: ModeName;
  bytes: number;
  wallMs: number;
  bytesPerSec: number;
  loopDelayMaxMs: number;
  loopDelayP99Ms: number;
  ticksMissed: number;
  echoLatencyMaxMs: number | null;
  echoLatencyP99Ms: number | null;
  echoSamples: number;
}

export interface ModeResult extends ModeFigures {
  loop: LoopReport;
  echo: EchoReport | undefined;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

let gcFn: (() => void) | undefined;
/**
 * A full GC outside the timing windows. Freeing a previous mode's 256 MiB of buffers takes a ~100 ms
 * Mark-Compact pause on the main thread (seen with --trace-gc); without this, whichever mode came next
 * would be charged with that stall. The window of a mode still includes the GC of its own garbage.
 */
export function collectGarbage(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** CPU time (ns) used so far by every thread of this process but the calling one; undefined without /proc. */
function otherThreadsCpuNs(): number | undefined {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  let sum = 0;
  for (const tid of tids) {
    if (tid === String(process.pid)) continue;
    try {
      sum += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return sum;
}

/**
 * Waits until the process's other threads have been idle for quietMs (at most maxMs), and returns how long
 * it waited. After collectGarbage() a V8 helper thread still frees the dead buffers: strace showed its
 * munmap of a 256 MiB buffer taking 20-30 ms, and the loop thread slept through it, not runnable (most likely
 * on the address-space lock, to map its next buffer): 20-35 ms stalls charged to the next mode. (Linux only.)
 */
export async function waitForIdleThreads(maxMs = 300, quietMs = 5, busyMs = 0.5): Promise<number> {
  const t0 = performance.now();
  const first = otherThreadsCpuNs();
  if (first === undefined) return 0;
  let prev: number = first;
  while (performance.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now: number = otherThreadsCpuNs() ?? prev;
    if (now - prev < busyMs * 1e6) break;
    prev = now;
  }
  return performance.now() - t0;
}

/** Runs work() between a heartbeat start and stop; the echo window is the same interval. */
export async function measure<T extends { bytes: number }>(
  mode: ModeName,
  work: () => Promise<T> | T,
  probe?: EchoProbe,
): Promise<{ result: ModeResult; value: T }> {
  // A turn of the loop first: right after `await fs.promises.readFile()` resumes, its Buffer is still
  // reachable from the promise machinery, so a GC in the same turn kept it, and the next mode's first GC
  // freed it (strace: the 256 MiB munmap, ~19 ms on a V8 thread, inside the next window).
  await new Promise((r) => setImmediate(r));
  collectGarbage();
  await waitForIdleThreads();
  const monitor = new LoopMonitor();
  await monitor.begin();
  const w0 = wallNow();
  const t0 = performance.now();
  const value = await work();
  const wallMs = performance.now() - t0;
  const loop = await monitor.end();
  // The echo window ends after the monitor's settle time, so a window is never shorter than a ping interval.
  const w1 = wallNow();
  const echo = probe ? await probe.report(w0, w1) : undefined;
  const result: ModeResult = {
    mode,
    bytes: value.bytes,
    wallMs: r2(wallMs),
    bytesPerSec: Math.round(value.bytes / (wallMs / 1000)),
    loopDelayMaxMs: r2(loop.loopDelayMaxMs),
    loopDelayP99Ms: r2(loop.loopDelayP99Ms),
    ticksMissed: loop.ticksMissed,
    echoLatencyMaxMs: echo && echo.count > 0 ? r2(echo.maxMs) : null,
    echoLatencyP99Ms: echo && echo.count > 0 ? r2(echo.p99Ms) : null,
    echoSamples: echo?.count ?? 0,
    loop,
    echo,
  };
  return { result, value };
}

export function figures(r: ModeResult): ModeFigures {
  const { loop: _l, echo: _e, ...rest } = r;
  return rest;
}

export interface RunModesOptions {
  paths: readonly string[];
  pool: WorkerPool;
  probe?: EchoProbe;
  modes?: readonly ModeName[];
  streamChunkBytes?: number;
  splitBytes?: number;
  onResult?: (r: ModeResult) => void | Promise<void>;
}

export interface RunModesOutcome {
  results: ModeResult[];
  /** digestOfDigests over the files as readFileSync read them, and as the pool read them (hash modes). */
  syncDigest?: string;
  workersDigest?: string;
  hashWorkersDigest?: string;
}

/**
 * Every mode in turn on the same files. The hash modes hash the bytes the pool mode read (so `workers` runs
 * first when a hash mode is asked for); readFileSync's digest is computed after its timing window closes.
 */
export async function runModes(options: RunModesOptions): Promise<RunModesOutcome> {
  const modes = options.modes ?? MODES;
  const { paths, pool, probe } = options;
  const results: ModeResult[] = [];
  const outcome: RunModesOutcome = { results };
  const done = async (r: ModeResult) => {
    results.push(r);
    await options.onResult?.(r);
  };
  let poolFiles: FileChunks[] | undefined;

  for (const mode of modes) {
    switch (mode) {
      case 'sync': {
        const { result, value } = await measure(mode, () => {
          const files = readAllSync(paths);
          return { bytes: byteCount(files), files };
        }, probe);
        outcome.syncDigest = digestOfDigests(sha256Files(value.files));
        await done(result);
        break;
      }
      case 'promises': {
        const { result } = await measure(mode, async () => ({ bytes: byteCount(await readAllPromises(paths)) }), probe);
        await done(result);
        break;
      }
      case 'stream': {
        const { result } = await measure(mode, async () => ({ bytes: byteCount(await readAllStream(paths, { chunkBytes: options.streamChunkBytes })) }), probe);
        await done(result);
        break;
      }
      case 'workers': {
        const { result, value } = await measure(mode, async () => {
          const files = await readAllPool(pool, paths, options.splitBytes);
          return { bytes: byteCount(files), files };
        }, probe);
        poolFiles = value.files;
        await done(result);
        break;
      }
      case 'hash-main': {
        poolFiles ??= await readAllPool(pool, paths, options.splitBytes);
        const files = poolFiles;
        const { result, value } = await measure(mode, () => {
          const digests = sha256Files(files);
          return { bytes: byteCount(files), digests };
        }, probe);
        outcome.workersDigest = digestOfDigests(value.digests);
        await done(result);
        break;
      }
      case 'hash-workers': {
        poolFiles ??= await readAllPool(pool, paths, options.splitBytes);
        const files = poolFiles;
        const { result, value } = await measure(mode, async () => {
          const r = await sha256FilesPool(pool, files);
          return { bytes: byteCount(r.files), ...r };
        }, probe);
        poolFiles = value.files; // the old buffers were transferred away and back
        outcome.hashWorkersDigest = digestOfDigests(value.digests);
        await done(result);
        break;
      }
    }
  }
  return outcome;
}
