// The heartbeat: a 1 ms ticker on the main thread plus perf_hooks.monitorEventLoopDelay, both running while
// some work happens. When the loop is free the ticker fires about every millisecond; when something blocks
// the loop (readFileSync, a sha256 of 256 MiB) no tick can fire, and the gap is the stall, seen from inside.
import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram, type PerformanceEntry } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';

export const TICK_MS = 1;
export const TIMELINE_BUCKET_MS = 10;
/** The loop counts as calm when no gap between 1 ms ticks reached this. */
export const CALM_GAP_MS = 2.5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LoopReport {
  /** performance.now() at start and stop. */
  startMs: number;
  endMs: number;
  /** Tick times in ms since start. */
  ticks: number[];
  /** 1 ms slots in which no tick could fire: sum over gaps of floor(gap / 1 ms) - 1. */
  ticksMissed: number;
  /** The longest time between two ticks (or start/stop and a tick), in ms. */
  maxGapMs: number;
  /** From monitorEventLoopDelay (1 ms resolution): its max, p50 and p99 in ms, and how many samples. */
  loopDelayMaxMs: number;
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelaySamples: number;
  /** monitorEventLoopDelay's percentiles in ms (50, 90, 99, 99.9, 100), for the histogram line. */
  loopDelayPercentilesMs: { p: number; ms: number }[];
  /** V8 GC pauses on this thread that began in the window (perf_hooks 'gc' entries): count, sum and longest, in ms. */
  gc: { count: number; totalMs: number; maxMs: number };
  /**
   * This thread's time on a CPU and time runnable but waiting for one, in ms, over the window (Linux
   * /proc/thread-self/schedstat; null elsewhere). A stall with a high wait is the scheduler, not this thread's work.
   */
  cpu: { runMs: number; waitMs: number } | null;
  /** How long begin() waited for a calm loop before the window started, in ms. */
  calmWaitMs: number;
}

/** [ns on CPU, ns waiting on a run queue] for the calling thread, or undefined where /proc has no schedstat. */
function schedstat(): [number, number] | undefined {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return run !== undefined && wait !== undefined && Number.isFinite(run) && Number.isFinite(wait) ? [run, wait] : undefined;
  } catch {
    return undefined;
  }
}

export class LoopMonitor {
  private ticks: number[] = [];
  private start = 0;
  private timer: NodeJS.Timeout | undefined;
  private histogram: IntervalHistogram | undefined;
  private gcObserver: PerformanceObserver | undefined;
  private gcEntries: PerformanceEntry[] = [];
  private sched0: [number, number] | undefined;
  private calmWaitMs = 0;

  /**
   * Starts both clocks once the loop is calm, and returns when each is armed. Calm: an arming period of armMs
   * whose longest gap between ticks is under CALM_GAP_MS (bounded by maxCalmWaitMs). Without it, a stall just
   * before the window (the previous mode's buffers being freed after a forced GC) was charged to this window:
   * the histogram, armed during it, reported 17-19 ms maxima while the ticker's longest gap in the window was 4-6 ms.
   * The histogram is created after that, and armed until it has recorded one delay: it records nothing until
   * its timer has a previous sample, so a stall that began at once would go unseen.
   */
  async begin(armMs = 3, maxCalmWaitMs = 500): Promise<void> {
    if (this.timer) throw new Error('LoopMonitor already running');
    const t0 = performance.now();
    this.ticks = [];
    this.start = t0;
    this.timer = setInterval(() => this.ticks.push(performance.now() - this.start), TICK_MS);
    for (;;) {
      this.ticks = [];
      this.start = performance.now();
      await sleep(armMs);
      const points = [0, ...this.ticks, performance.now() - this.start];
      let worst = 0;
      for (let i = 1; i < points.length; i++) worst = Math.max(worst, points[i]! - points[i - 1]!);
      if (worst < CALM_GAP_MS || performance.now() - t0 > maxCalmWaitMs) break;
    }
    // The window starts here for both clocks.
    this.ticks = [];
    this.start = performance.now();
    this.calmWaitMs = this.start - t0;
    this.gcEntries = [];
    this.gcObserver = new PerformanceObserver((list) => this.gcEntries.push(...list.getEntries()));
    this.gcObserver.observe({ entryTypes: ['gc'] });
    this.sched0 = schedstat();
    this.histogram = monitorEventLoopDelay({ resolution: TICK_MS });
    this.histogram.enable();
    for (let i = 0; i < 50 && this.histogram.count < 1; i++) await sleep(1);
  }

  /**
   * Stops after letting the loop turn a few more times, so a stall that ended just now is recorded by both
   * the ticker and the histogram (both only notice a stall when the loop runs again).
   */
  async end(settleMs = 3): Promise<LoopReport> {
    if (!this.timer || !this.histogram) throw new Error('LoopMonitor not running');
    await sleep(settleMs);
    const endMs = performance.now();
    const sched1 = schedstat();
    clearInterval(this.timer);
    // Entries are delivered in batches; take the ones not yet delivered too.
    const gcEntries = [...this.gcEntries, ...(this.gcObserver?.takeRecords() ?? [])].filter((e) => e.startTime >= this.start && e.startTime <= endMs);
    this.gcObserver?.disconnect();
    this.gcObserver = undefined;
    this.timer = undefined;
    const h = this.histogram;
    h.disable();
    this.histogram = undefined;
    const duration = endMs - this.start;
    const points = [0, ...this.ticks, duration];
    let missed = 0;
    let maxGap = 0;
    for (let i = 1; i < points.length; i++) {
      const gap = points[i]! - points[i - 1]!;
      maxGap = Math.max(maxGap, gap);
      missed += Math.max(0, Math.floor(gap / TICK_MS) - 1);
    }
    const count = h.count;
    return {
      startMs: this.start,
      endMs,
      ticks: this.ticks,
      ticksMissed: missed,
      maxGapMs: maxGap,
      loopDelayMaxMs: count > 0 ? h.max / 1e6 : maxGap,
      loopDelayP50Ms: count > 0 ? h.percentile(50) / 1e6 : 0,
      loopDelayP99Ms: count > 0 ? h.percentile(99) / 1e6 : maxGap,
      loopDelaySamples: count,
      loopDelayPercentilesMs: count > 0 ? [50, 90, 99, 99.9, 100].map((p) => ({ p, ms: h.percentile(p) / 1e6 })) : [],
      gc: { count: gcEntries.length, totalMs: gcEntries.reduce((a, e) => a + e.duration, 0), maxMs: Math.max(0, ...gcEntries.map((e) => e.duration)) },
      calmWaitMs: this.calmWaitMs,
      cpu: this.sched0 && sched1 ? { runMs: (sched1[0] - this.sched0[0]) / 1e6, waitMs: (sched1[1] - this.sched0[1]) / 1e6 } : null,
    };
  }
}

/**
 * One row per 10 ms bucket; in each row one cell per millisecond: a mark where the loop ticked, a gap where
 * it could not. Runs of identical rows are folded so a long healthy (or stalled) stretch takes one line.
 */
export function renderTimeline(report: LoopReport, options: { mark?: string; gap?: string; maxRows?: number } = {}): string {
  const mark = options.mark ?? '█';
  const gap = options.gap ?? '·';
  const duration = report.endMs - report.startMs;
  const rows = Math.max(1, Math.ceil(duration / TIMELINE_BUCKET_MS));
  const cells: boolean[] = new Array(rows * TIMELINE_BUCKET_MS).fill(false);
  for (const t of report.ticks) {
    const i = Math.floor(t / TICK_MS);
    if (i >= 0 && i < cells.length) cells[i] = true;
  }
  const lines: string[] = [];
  let prev = '';
  let repeats = 0;
  const flush = () => {
    if (repeats > 0) lines.push(`         ${' '.repeat(TIMELINE_BUCKET_MS + 2)}  (${repeats} more row${repeats > 1 ? 's' : ''} like this)`);
    repeats = 0;
  };
  for (let r = 0; r < rows; r++) {
    const slice = cells.slice(r * TIMELINE_BUCKET_MS, (r + 1) * TIMELINE_BUCKET_MS);
    // Cells past the end of the window are blank, not gaps: nothing was measured there.
    const body = slice.map((x, i) => (x ? mark : r * TIMELINE_BUCKET_MS + i * TICK_MS >= duration ? ' ' : gap)).join('');
    const n = slice.filter(Boolean).length;
    if (body === prev) {
      repeats++;
      continue;
    }
    flush();
    lines.push(`${String(r * TIMELINE_BUCKET_MS).padStart(6)} ms |${body}| ${n === 0 ? 'stalled' : `${n} tick${n > 1 ? 's' : ''}`}`);
    prev = body;
  }
  flush();
  if (options.maxRows && lines.length > options.maxRows) {
    const head = lines.slice(0, options.maxRows - 1);
    return [...head, `         ... ${lines.length - head.length} more lines`].join('\n') + '\n';
  }
  return lines.join('\n') + '\n';
}

/** Bucket edges for the gap histogram, in ms. */
export const GAP_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] as const;

/** Counts of the gaps between ticks, bucketed, as rows of a bar chart. */
export function gapHistogram(report: LoopReport): { label: string; count: number }[] {
  const points = [0, ...report.ticks, report.endMs - report.startMs];
  const counts = new Array<number>(GAP_BUCKETS_MS.length + 1).fill(0);
  for (let i = 1; i < points.length; i++) {
    const gap = points[i]! - points[i - 1]!;
    let b = GAP_BUCKETS_MS.findIndex((edge) => gap < edge);
    if (b < 0) b = GAP_BUCKETS_MS.length;
    counts[b]!++;
  }
  return counts.map((count, i) => {
    const lo = i === 0 ? 0 : GAP_BUCKETS_MS[i - 1]!;
    const hi = GAP_BUCKETS_MS[i];
    return { label: hi === undefined ? `>= ${lo} ms` : `${lo}-${hi} ms`, count };
  });
}

export function renderHistogram(report: LoopReport, width = 40): string {
  const rows = gapHistogram(report);
  const max = Math.max(1, ...rows.map((r) => r.count));
  // Trim empty buckets at the top end so a healthy loop prints three lines, not eleven.
  let last = rows.length - 1;
  while (last > 0 && rows[last]!.count === 0) last--;
  const eld = report.loopDelayPercentilesMs.map(({ p, ms }) => `${p === 100 ? 'max' : `p${p}`} ${ms.toFixed(1)}`).join(', ');
  return (
    (eld ? `  perf_hooks.monitorEventLoopDelay (${report.loopDelaySamples} samples, ms): ${eld}\n` : '') +
    rows
      .slice(0, last + 1)
      .map((r) => `  ${r.label.padStart(12)} ${String(r.count).padStart(6)} ${'#'.repeat(r.count === 0 ? 0 : Math.max(1, Math.round((r.count / max) * width)))}`)
      .join('\n') + '\n'
  );
}
