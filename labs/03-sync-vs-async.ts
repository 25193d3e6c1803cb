// Lab 03: "can I do work while waiting?", answered by the running process. The same files are read with
// readFileSync, fs.promises, a stream and a worker_threads pool, then hashed on the main thread and in the
// pool, while a 1 ms heartbeat and monitorEventLoopDelay watch the loop from inside and a child process
// pings a TCP echo server on this loop from outside. Then the libuv threadpool is saturated with slow
// reads at UV_THREADPOOL_SIZE 1, 4 and 16 to show what queues behind them (nodejs/node#8436).
import { availableParallelism } from 'node:os';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { runLab, announceListening, parseIntOption, UsageError, type LabContext } from '../src/cli/lab.ts';
import { createLabFiles, SMALL_FILE_BYTES } from '../src/io/files.ts';
import { WorkerPool, DEFAULT_MAX_QUEUE, DEFAULT_SPLIT_BYTES } from '../src/io/pool.ts';
import { EchoProbe, createEchoServer, DEFAULT_PING_MS } from '../src/io/echo.ts';
import { runModes, figures, MODES, type ModeName, type ModeResult } from '../src/io/modes.ts';
import { renderTimeline, renderHistogram } from '../src/io/monitor.ts';
import { runSaturation, DEFAULT_SLOW_READS, DEFAULT_SLOW_READ_MS, type SaturationResult } from '../src/io/saturation.ts';
import { DEFAULT_STREAM_CHUNK } from '../src/io/readers.ts';
import { markdownTable } from '../src/cli/table.ts';

const MiB = 1024 * 1024;
/** The issue's size for an explicit run; the bare demo (the tour) uses DEMO_SIZE so it ends in seconds. */
const FULL_SIZE = '256MiB';
const DEMO_SIZE = '64MiB';

const spec = {
  name: '03-sync-vs-async',
  summary: 'sync vs async file reads, the libuv threadpool and a worker_threads pool, with the event-loop stall measured',
  commands: {
    demo: `every mode on the same files, then threadpool saturation (the default; --size ${DEMO_SIZE} unless given)`,
    run: `the same with the full default file size (--size ${FULL_SIZE})`,
    server: 'run only the TCP echo server the probe pings, until Ctrl-C',
    client: 'ping an echo server every --ping-ms and print the round trips: client --port P',
  },
  usage: ['run [--size 256MiB] [--files N] [--workers N] [--modes sync,workers]', 'demo --no-threadpool --json', 'server', 'client --port P --count 100'],
  options: {
    size: { type: 'string', description: `big file size: bytes or with KiB/MiB/GiB (demo ${DEMO_SIZE}, run ${FULL_SIZE})`, valueName: 'SIZE' },
    files: { type: 'string', default: '100', description: `small files of ${SMALL_FILE_BYTES / 1024} KiB each`, valueName: 'N' },
    workers: { type: 'string', description: `worker_threads pool size (default: the core count, ${availableParallelism()})`, valueName: 'N' },
    nice: { type: 'string', default: '0', description: 'nice value of the pool threads (Linux), 0-19', valueName: 'N' },
    'max-queue': { type: 'string', default: String(DEFAULT_MAX_QUEUE), description: 'pool tasks waiting before ERR_QUEUE_FULL', valueName: 'N' },
    'split': { type: 'string', default: String(DEFAULT_SPLIT_BYTES / MiB), description: 'pool: read a big file in ranges of this many MiB', valueName: 'MIB' },
    'stream-chunk': { type: 'string', default: String(DEFAULT_STREAM_CHUNK / 1024), description: 'stream highWaterMark in KiB', valueName: 'KIB' },
    modes: { type: 'string', default: MODES.join(','), description: 'modes to run, comma-separated', valueName: 'LIST' },
    'ping-ms': { type: 'string', default: String(DEFAULT_PING_MS), description: 'echo probe: one ping every this many ms', valueName: 'MS' },
    'no-probe': { type: 'boolean', default: false, description: 'skip the echo-latency probe (no child process)' },
    'pool-sizes': { type: 'string', default: '1,4,16', description: 'UV_THREADPOOL_SIZE values for the saturation run', valueName: 'LIST' },
    'slow-reads': { type: 'string', default: String(DEFAULT_SLOW_READS), description: 'saturation: concurrent slow reads', valueName: 'N' },
    'slow-read-ms': { type: 'string', default: String(DEFAULT_SLOW_READ_MS), description: 'saturation: how long each slow read blocks its thread', valueName: 'MS' },
    'no-threadpool': { type: 'boolean', default: false, description: 'skip the threadpool saturation run' },
    'no-timeline': { type: 'boolean', default: false, description: 'text mode: summary tables only' },
    count: { type: 'string', default: '50', description: 'client: pings to send', valueName: 'N' },
  },
} as const;

type Ctx = LabContext<typeof spec.options>;

export function parseSize(name: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|K|KB|KIB|M|MB|MIB|G|GB|GIB)?$/i.exec(raw.trim());
  if (!m) throw new UsageError(`--${name} must be a size such as 65536, 64MiB or 1GiB, got '${raw}'`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const mult = unit.startsWith('K') ? 1024 : unit.startsWith('M') ? MiB : unit.startsWith('G') ? 1024 * MiB : 1;
  const n = Math.round(Number(m[1]) * mult);
  if (n < 1 || n > 8 * 1024 * MiB) throw new UsageError(`--${name} must be from 1 byte to 8GiB, got '${raw}'`);
  return n;
}

function parseList(name: string, raw: string, min: number, max: number): number[] {
  const parts = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new UsageError(`--${name} needs at least one value`);
  return parts.map((p) => parseIntOption(name, p, { min, max })!);
}

function parseModes(raw: string): ModeName[] {
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of list) if (!(MODES as readonly string[]).includes(m)) throw new UsageError(`--modes: unknown mode '${m}' (modes: ${MODES.join(', ')})`);
  if (list.length === 0) throw new UsageError('--modes needs at least one mode');
  return list as ModeName[];
}

const WHAT: Record<ModeName, string> = {
  sync: 'readFileSync on the main thread: nothing else runs until the last byte is in',
  promises: 'fs.promises.readFile: the reads run on the libuv threadpool, the loop only handles completions',
  stream: 'fs.createReadStream: one threadpool read per chunk, each chunk delivered to the loop',
  workers: 'the worker_threads pool: sync reads on its own threads, ArrayBuffers transferred back (no copy)',
  'hash-main': 'sha256 of what the pool read, on the main thread: async I/O does not make CPU work free',
  'hash-workers': 'the same sha256 on the pool threads (buffers transferred there and back)',
};

const fmtBytes = (n: number) => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const fmtRate = (n: number) => `${(n / MiB).toFixed(0)} MiB/s`;
const fmtMs = (n: number | null) => (n === null ? '-' : n.toFixed(1));

async function demo(ctx: Ctx, defaultSize: string, quick: boolean): Promise<number> {
  const { out } = ctx;
  const v = ctx.values;
  const bigBytes = parseSize('size', v.size ?? defaultSize);
  const smallFiles = parseIntOption('files', v.files, { min: 0, max: 100_000 })!;
  const workers = parseIntOption('workers', v.workers, { min: 1, max: 256, default: availableParallelism() })!;
  const maxQueue = parseIntOption('max-queue', v['max-queue'], { min: 0, max: 1_000_000 })!;
  const nice = parseIntOption('nice', v.nice, { min: 0, max: 19 })!;
  const splitBytes = parseIntOption('split', v.split, { min: 1, max: 8192 })! * MiB;
  const streamChunk = parseIntOption('stream-chunk', v['stream-chunk'], { min: 1, max: 1024 * 1024 })! * 1024;
  const pingMs = parseIntOption('ping-ms', v['ping-ms'], { min: 1, max: 1000 })!;
  const modes = parseModes(v.modes);
  const poolSizes = parseList('pool-sizes', v['pool-sizes'], 1, 1024);
  const slowReads = parseIntOption('slow-reads', v['slow-reads'], { min: 1, max: 1024 })!;
  const slowReadMs = parseIntOption('slow-read-ms', v['slow-read-ms'], { min: 1, max: 10_000 })!;
  const timeline = !v['no-timeline'];

  out.heading('the files');
  const files = createLabFiles({ bigBytes, smallFiles });
  const cleanup = () => files.remove();
  process.once('exit', cleanup);
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  out.event('files', { dir: files.dir, bigBytes, smallFiles, smallBytes: SMALL_FILE_BYTES, totalBytes: files.totalBytes },
    `${files.dir}: big.bin ${fmtBytes(bigBytes)} + ${smallFiles} files of ${SMALL_FILE_BYTES / 1024} KiB = ${fmtBytes(files.totalBytes)} (written just now, so warm in the page cache)`);

  const pool = new WorkerPool({ size: workers, maxQueue, nice });
  let probe: EchoProbe | undefined;
  try {
    await pool.ready();
    if (!v['no-probe']) {
      probe = await EchoProbe.start({ host: ctx.common.host, pingMs, recorder: ctx.recorder });
      out.event('probe', { url: `tcp://${ctx.common.host}:${probe.port}`, pingMs, clientPid: probe.child.pid },
        `echo server on tcp://${ctx.common.host}:${probe.port} (this loop), pinged every ${pingMs} ms by child process ${probe.child.pid}`);
    }
    out.say(`heartbeat: a ${1} ms setInterval ticker + perf_hooks.monitorEventLoopDelay({ resolution: 1 }); pool: ${workers} worker threads${nice ? ` at nice ${nice}` : ''}, queue bound ${maxQueue}`);

    const outcome = await runModes({
      paths: files.all, pool, probe, modes, streamChunkBytes: streamChunk, splitBytes,
      onResult: (r) => printMode(ctx, r, timeline),
    });

    if (!out.json) {
      out.heading('summary');
      out.raw(summaryTable(outcome.results));
      out.raw('\nloop delay = perf_hooks.monitorEventLoopDelay (1 ms resolution); ticks missed = 1 ms slots with no tick; echo = round trips seen by the child process.\n');
    }
    const check = outcome.syncDigest && outcome.workersDigest ? outcome.syncDigest === outcome.workersDigest : undefined;
    if (check !== undefined) {
      out.event('same-bytes', { syncDigest: outcome.syncDigest, workersDigest: outcome.workersDigest, hashWorkersDigest: outcome.hashWorkersDigest, equal: check },
        `sha256 over every file: readFileSync ${outcome.syncDigest!.slice(0, 16)}..., pool ${outcome.workersDigest!.slice(0, 16)}...${outcome.hashWorkersDigest ? `, pool-hashed ${outcome.hashWorkersDigest.slice(0, 16)}...` : ''}: ${check ? 'the same bytes' : 'DIFFERENT'}`);
      if (!check || (outcome.hashWorkersDigest && outcome.hashWorkersDigest !== outcome.workersDigest)) return 1;
    }
  } finally {
    await probe?.stop();
    await pool.close();
    files.remove();
  }

  if (!v['no-threadpool']) {
    out.heading(`threadpool saturation: ${slowReads} slow reads (${slowReadMs} ms each), then dns.lookup('localhost') and a 16 KiB read`);
    out.say(`each UV_THREADPOOL_SIZE runs in its own child process (libuv reads it once, at start-up)${quick ? ', all at once to keep the demo short (`run` does one at a time)' : ''}. A slow read is a read(2) on a FIFO`);
    out.say(`that a responder thread answers ${slowReadMs} ms after it sees the read waiting (in /proc/self/task/*/syscall), like a slow disk.`);
    const rows: SaturationResult[] = [];
    await runSaturation({
      sizes: poolSizes, slowReads, slowReadMs, concurrent: quick,
      onResult: (r) => {
        rows.push(r);
        out.event('result', { mode: r.mode, size: r.size, lookupDelayMs: r.lookupDelayMs, smallReadDelayMs: r.smallReadDelayMs, slowReads: r.slowReads, slowReadDelayMs: r.slowReadDelayMs, slowReadsTotalMs: r.slowReadsTotalMs, baselineLookupMs: r.baselineLookupMs, baselineSmallReadMs: r.baselineSmallReadMs },
          `UV_THREADPOOL_SIZE=${String(r.size).padEnd(3)} dns.lookup waited ${r.lookupDelayMs.toFixed(1)} ms, the small read ${r.smallReadDelayMs.toFixed(1)} ms (idle: ${r.baselineLookupMs.toFixed(1)} / ${r.baselineSmallReadMs.toFixed(1)} ms)`);
      },
    });
    if (!out.json) {
      out.raw(markdownTable(['UV_THREADPOOL_SIZE', 'lookup delay ms', 'small read delay ms', 'all slow reads done ms', 'idle lookup ms', 'idle small read ms'],
        rows.map((r) => ({ 'UV_THREADPOOL_SIZE': r.size, 'lookup delay ms': r.lookupDelayMs, 'small read delay ms': r.smallReadDelayMs, 'all slow reads done ms': r.slowReadsTotalMs, 'idle lookup ms': r.baselineLookupMs, 'idle small read ms': r.baselineSmallReadMs }))));
      out.say(`expected about ceil(${slowReads} / size) x ${slowReadMs} ms: the lookup and the read wait in the same FIFO queue as the slow reads.`);
    }
  }
  return 0;
}

function printMode(ctx: Ctx, r: ModeResult, timeline: boolean): void {
  const { out } = ctx;
  const f = figures(r);
  if (out.json) {
    out.event('result', { ...f });
    return;
  }
  const c = out.c;
  out.heading(`mode ${r.mode}: ${WHAT[r.mode]}`);
  if (timeline) {
    out.raw(`timeline (one row per 10 ms, one cell per ms: ${c.green('█')} the loop ticked, · it was stalled):\n`);
    out.raw(renderTimeline(r.loop, { maxRows: 40 }));
    out.raw('event loop delay histogram (perf_hooks percentiles, then the gaps between 1 ms ticks, bucketed):\n');
    out.raw(renderHistogram(r.loop));
  }
  const stalled = r.loopDelayMaxMs >= r.wallMs * 0.5;
  out.raw(
    `${fmtBytes(r.bytes)} in ${r.wallMs.toFixed(1)} ms = ${fmtRate(r.bytesPerSec)}; loop delay max ${fmtMs(r.loopDelayMaxMs)} ms, p99 ${fmtMs(r.loopDelayP99Ms)} ms; ` +
      `${r.ticksMissed} ticks missed; echo max ${fmtMs(r.echoLatencyMaxMs)} ms over ${r.echoSamples} pings ` +
      `${stalled ? c.red('(the loop was stalled for most of the work)') : c.green('(the loop stayed free)')}\n`,
  );
}

function summaryTable(results: ModeResult[]): string {
  return markdownTable(
    ['mode', 'bytes', 'wall ms', 'MiB/s', 'loop delay max ms', 'loop delay p99 ms', 'ticks missed', 'echo max ms'],
    results.map((r) => ({
      mode: r.mode, bytes: r.bytes, 'wall ms': r.wallMs, 'MiB/s': Math.round(r.bytesPerSec / MiB),
      'loop delay max ms': r.loopDelayMaxMs, 'loop delay p99 ms': r.loopDelayP99Ms, 'ticks missed': r.ticksMissed, 'echo max ms': r.echoLatencyMaxMs ?? '-',
    })),
  );
}

async function server(ctx: Ctx): Promise<number> {
  const srv = createEchoServer(ctx.recorder);
  srv.listen(ctx.common.port ?? 0, ctx.common.host);
  await once(srv, 'listening');
  announceListening(ctx.out, 'tcp', srv.address() as AddressInfo);
  const signal = await ctx.untilSignal();
  srv.close();
  ctx.out.event('stopped', { signal }, `stopped (${signal})`);
  return 0;
}

async function client(ctx: Ctx): Promise<number> {
  const port = ctx.common.port;
  if (port === undefined || port === 0) throw new UsageError('client needs --port P (the server prints it)');
  const count = parseIntOption('count', ctx.values.count, { min: 1, max: 1_000_000 })!;
  const pingMs = parseIntOption('ping-ms', ctx.values['ping-ms'], { min: 1, max: 1000 })!;
  const { pingServer } = await import('../src/io/ping.ts');
  const r = await pingServer({ host: ctx.common.host, port, count, intervalMs: pingMs, recorder: ctx.recorder });
  ctx.out.event('pings', { ...r }, `${r.count} pings to tcp://${ctx.common.host}:${port}: rtt min ${r.minMs.toFixed(3)} ms, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, max ${r.maxMs.toFixed(3)} ms`);
  return 0;
}

await runLab(spec, {
  demo: (ctx) => demo(ctx, DEMO_SIZE, true),
  run: (ctx) => demo(ctx, FULL_SIZE, false),
  server,
  client,
});
