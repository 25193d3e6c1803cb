// Runs each read mode under the heartbeat (and, if given, the echo probe) and reports the figures the lab
// prints: wall time, bytes/s, the loop's max and p99 delay, ticks missed and the echo latency max.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

/** Runs work() between a heartbeat start and stop; the echo window is the same interval. */
export async function measure<T extends { bytes: number }>(
  mode: ModeName,
  work: () => Promise<T> | T,
  probe?: EchoProbe,
): Promise<{ result: ModeResult; value: T }> {
  collectGarbage();
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
