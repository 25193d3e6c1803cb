// The retry storm: many clients call a server that is down for its first moments, then comes back with
// limited capacity. How the clients space their retries (none, exponential, full / equal / decorrelated
// jitter, src/client/retry.ts) decides how hard they hit it and how soon they all get through.
//
// Real TCP on loopback with the frame protocol: each client keeps one connection and sends REQUEST
// `work`; the server answers RESPONSE `ok`, or ERROR 101 (unavailable, during the outage) or ERROR 102
// (over capacity for this time bucket). In `refuse` mode the server is not listening during the outage,
// so attempts fail with ECONNREFUSED instead.
import { createServer, type Server, type Socket } from 'node:net';
import { encodeFrame, errorPayload, FrameDecoder, FrameType, frameAnnotator } from '../wire/frame.ts';
import { FrameClient } from './frame-client.ts';
import { retry, type BackoffStrategy, type RetryEvent } from '../client/retry.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';

export const STORM_ERROR = { UNAVAILABLE: 101, OVERLOADED: 102 } as const;

export interface StormConfig {
  clients: number;
  /** The server fails (or refuses) for this long after the start. */
  outageMs: number;
  outage: 'fail' | 'refuse';
  /** Width of a histogram bucket, and the server's capacity window. */
  bucketMs: number;
  /** Calls the server serves per bucket once it has recovered; the rest get ERROR 102. */
  capacityPerBucket: number;
  /** Backoff scale and cap (src/client/retry.ts). */
  baseMs: number;
  capMs: number;
  /** A client that has not succeeded by then gives up (ERR_DEADLINE). */
  deadlineMs: number;
  /** Bound on attempts per client (the `none` strategy retries at once). */
  maxAttempts: number;
  host: string;
  /** The server's port (0: ephemeral). */
  port?: number;
}

/** The full-size storm of the issue: 200 clients, a 2-second outage, 100 ms buckets. */
export const FULL_STORM: StormConfig = {
  clients: 200,
  outageMs: 2000,
  outage: 'fail',
  bucketMs: 100,
  capacityPerBucket: 40,
  baseMs: 100,
  capMs: 1000,
  deadlineMs: 30_000,
  maxAttempts: 1_000_000,
  host: '127.0.0.1',
};

/** Every duration of a config multiplied by `factor` (the demo runs at a quarter of real time). */
export function scaleStorm(config: StormConfig, factor: number): StormConfig {
  return {
    ...config,
    outageMs: config.outageMs * factor,
    bucketMs: config.bucketMs * factor,
    baseMs: config.baseMs * factor,
    capMs: config.capMs * factor,
    deadlineMs: config.deadlineMs * factor,
  };
}

export interface StormResult {
  strategy: BackoffStrategy;
  /** Attempts (call arrivals at the server's port) per bucket, from the start. */
  arrivals: number[];
  /** Successful calls per bucket, as the clients saw them. */
  successes: number[];
  /** Calls the server served per bucket of its own clock (never above capacityPerBucket). */
  served: number[];
  totalCalls: number;
  /** When the last client succeeded, in ms from the start (undefined if some never did). */
  allSucceededMs: number | undefined;
  failedClients: number;
  /** Every backoff wait chosen, with the bounds the formula allowed (for the tests). */
  waits: { client: number; attempt: number; delayMs: number }[];
  /** Attempts made by a client after its success or give-up (must be empty). */
  lateAttempts: number;
  config: StormConfig;
}

interface StormServer {
  port: number;
  served: number[];
  close(): Promise<void>;
}

/** The failing-then-limited server. Times are measured from `start` (performance.now()). */
async function startStormServer(config: StormConfig, start: number, recorder: Recorder | undefined): Promise<StormServer> {
  const served: number[] = [];
  const sockets = new Set<Socket>();
  const bucket = () => Math.floor((performance.now() - start) / config.bucketMs);
  const onConnection = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    tapSocket(s, recorder, { side: 'server', annotate: frameAnnotator() });
    const decoder = new FrameDecoder({ maxPayload: 1024 });
    s.on('data', (chunk) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch {
        s.destroy();
        return;
      }
      for (const f of frames) {
        if (f.type !== FrameType.REQUEST) continue;
        const now = performance.now() - start;
        let reply: Buffer[];
        if (now < config.outageMs) reply = encodeFrame(FrameType.ERROR, f.id, errorPayload(STORM_ERROR.UNAVAILABLE, 'unavailable'));
        else {
          const b = bucket();
          if ((served[b] ?? 0) < config.capacityPerBucket) {
            served[b] = (served[b] ?? 0) + 1;
            reply = encodeFrame(FrameType.RESPONSE, f.id, Buffer.from('ok'));
          } else reply = encodeFrame(FrameType.ERROR, f.id, errorPayload(STORM_ERROR.OVERLOADED, 'over capacity'));
        }
        s.cork();
        for (const part of reply) s.write(part);
        s.uncork();
      }
    });
  };
  let server: Server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port ?? 0, config.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  let reopen: NodeJS.Timeout | undefined;
  if (config.outage === 'refuse') {
    // Not listening during the outage: connects are refused (RST). Then listen again on the same port.
    await new Promise<void>((r) => server.close(() => r()));
    reopen = setTimeout(() => {
      server = createServer(onConnection);
      server.on('error', () => {});
      server.listen(port, config.host);
    }, Math.max(0, config.outageMs - (performance.now() - start)));
  }
  return {
    port,
    served,
    async close() {
      clearTimeout(reopen);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()));
    },
  };
}

/** One client's connection, opened on the first call and again after it drops (refused, closed). */
class StormConnection {
  private client: FrameClient | undefined;

  constructor(private readonly port: number, private readonly host: string, private readonly recorder: Recorder | undefined) {}

  async call(signal: AbortSignal): Promise<void> {
    if (!this.client || this.client.closed) this.client = await FrameClient.connect({ port: this.port, host: this.host, recorder: this.recorder });
    await this.client.request('work', '', { signal });
  }

  close(): void {
    this.client?.socket.destroy();
  }
}

export interface RunStormOptions {
  recorder?: Recorder;
  /** Uniform random in [0, 1), injectable for repeatable runs. */
  random?: () => number;
  signal?: AbortSignal;
}

/** Runs one strategy against a fresh server and returns what arrived when. */
export async function runStorm(strategy: BackoffStrategy, config: StormConfig, options: RunStormOptions = {}): Promise<StormResult> {
  const start = performance.now();
  const server = await startStormServer(config, start, options.recorder);
  const arrivals: number[] = [];
  const successes: number[] = [];
  const waits: StormResult['waits'] = [];
  let totalCalls = 0;
  let lateAttempts = 0;
  let failedClients = 0;
  let lastSuccess = 0;
  const bucketOf = (ms: number) => Math.floor(ms / config.bucketMs);
  const conns: StormConnection[] = [];
  try {
    await Promise.all(
      Array.from({ length: config.clients }, async (_, client) => {
        const conn = new StormConnection(server.port, config.host, options.recorder);
        conns.push(conn);
        let finished = false;
        const onEvent = (e: RetryEvent) => {
          if (e.type === 'attempt') {
            if (finished) lateAttempts++;
            totalCalls++;
            const b = bucketOf(performance.now() - start);
            arrivals[b] = (arrivals[b] ?? 0) + 1;
          } else if (e.type === 'backoff') waits.push({ client, attempt: e.attempt, delayMs: e.delayMs });
        };
        try {
          await retry(({ signal }) => conn.call(signal), {
            strategy, baseMs: config.baseMs, capMs: config.capMs, maxAttempts: config.maxAttempts,
            deadlineMs: config.deadlineMs, random: options.random, signal: options.signal, onEvent,
          });
          const t = performance.now() - start;
          successes[bucketOf(t)] = (successes[bucketOf(t)] ?? 0) + 1;
          lastSuccess = Math.max(lastSuccess, t);
        } catch {
          failedClients++;
        } finally {
          finished = true;
          conn.close();
        }
      }),
    );
  } finally {
    for (const c of conns) c.close();
    await server.close();
  }
  const n = Math.max(arrivals.length, successes.length);
  const dense = (a: number[]) => Array.from({ length: n }, (_, i) => a[i] ?? 0);
  return {
    strategy, arrivals: dense(arrivals), successes: dense(successes), served: dense(server.served), totalCalls,
    allSucceededMs: failedClients === 0 ? lastSuccess : undefined, failedClients, waits, lateAttempts, config,
  };
}

/** Attempts per bucket as one line of block characters, scaled to `peak`; several buckets per character if needed. */
export function sparkline(values: readonly number[], peak: number, maxChars: number): string {
  const blocks = ' ▁▂▃▄▅▆▇█';
  const per = Math.max(1, Math.ceil(values.length / maxChars));
  let out = '';
  for (let i = 0; i < values.length; i += per) {
    const v = Math.max(...values.slice(i, i + per));
    out += v === 0 ? '·' : blocks[Math.max(1, Math.round((v / Math.max(1, peak)) * 8))];
  }
  return out;
}
