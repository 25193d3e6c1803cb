// The load client of bench/reqres-load.bench.ts: N connections, each keeping `depth` requests in flight
// (depth 1 = lockstep), speaking either the wirelab frame protocol (`echo` requests) or RESP (`PING`, to
// calibrate against redis-benchmark). It is built not to be the bottleneck:
// - every request that a read frees is re-sent in ONE write per connection (a batch of k frames in one
//   buffer, copied from a prebuilt template, only the ids patched), so syscalls scale with reads, not requests;
// - reads go into a reused buffer (`onread`), parsed in place by one loop, with no per-frame objects.
// It also checks what it gets: every response's id must be one in flight on that connection, its type
// RESPONSE, its body the echo of that very request (the id is inside the body); after the run it stops
// sending and waits for every response still in flight, so `lost` = sent - received is exact.
// In a process of its own: node --import tsx bench/lib/frame-load.ts --port P [--protocol frame|resp]
//   [--connections 50] [--depth 100] [--duration 2] [--warmup 0.3] [--verify] [--watch-pid PID]
//   (prints one JSON result)
// or forked with IPC: send {run: LoadOptions}, get {result: LoadResult} or {error: string}.
import { connect, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export type LoadProtocol = 'frame' | 'resp';

export interface LoadOptions {
  port: number;
  host?: string;
  protocol?: LoadProtocol;
  connections?: number;
  /** Requests kept in flight per connection; 1 = lockstep. */
  depth?: number;
  /** Measured window, after the warm-up. */
  durationMs?: number;
  warmupMs?: number;
  /** Echo body size in bytes (frame protocol); at least 4, as the body carries the request id. */
  bodySize?: number;
  /** Stop sending after this many requests in all (tests); the run then ends when all are answered. */
  maxRequests?: number;
  /** Compare every byte of every echoed body, not only its length and the id inside it. */
  verify?: boolean;
  /** After the window, how long to wait for the responses still in flight before counting them lost. */
  drainTimeoutMs?: number;
  /** A server process to watch: its CPU use over the window is reported (Linux /proc), to tell who limits. */
  watchPid?: number;
}

export interface LoadResult {
  protocol: LoadProtocol;
  connections: number;
  depth: number;
  /** Responses received inside the measured window, and the window's real length. */
  requests: number;
  windowMs: number;
  rps: number;
  /** Over the whole run (warm-up, window, drain). */
  sent: number;
  received: number;
  lost: number;
  /** Responses that broke the protocol: an id not in flight, a wrong type, a wrong body. */
  errors: number;
  errorSamples: string[];
  /** ERROR frames answered by the server (a valid reply, but not an echo). */
  errorResponses: number;
  writes: number;
  reads: number;
  /** CPU time over the window as a fraction of one core: this process, and the watched server (or null). */
  clientCpu: number;
  serverCpu: number | null;
}

const HEADER = 12;
const T_REQUEST = 1;
const T_RESPONSE = 2;
const T_ERROR = 3;
const MAX_RESPONSE = 1024 * 1024;
const READ_BUFFER = 64 * 1024;
const RESP_PING = Buffer.from('*1\r\n$4\r\nPING\r\n', 'latin1');
const RESP_PONG = Buffer.from('+PONG\r\n', 'latin1');
let clockTicks = 0;

/** CPU seconds (user + system, all threads) a process has used so far, from /proc; null if unreadable. */
export function processCpuSeconds(pid: number): number | null {
  try {
    if (clockTicks === 0) clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clockTicks; // utime, stime: fields 14 and 15
  } catch {
    return null;
  }
}

interface Stats {
  sent: number;
  received: number;
  errors: number;
  errorSamples: string[];
  errorResponses: number;
  writes: number;
  reads: number;
}

interface Conn {
  socket: Socket;
  /** Requests in flight on this connection. */
  inflight: number;
  /** Send up to this many (the freed slots), in one write. */
  refill(): void;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

function fail(stats: Stats, what: string): void {
  stats.errors++;
  if (stats.errorSamples.length < 10) stats.errorSamples.push(what);
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const protocol = options.protocol ?? 'frame';
  const host = options.host ?? '127.0.0.1';
  const connections = options.connections ?? 1;
  const depth = options.depth ?? 1;
  const durationMs = options.durationMs ?? 2000;
  const warmupMs = options.warmupMs ?? 300;
  const bodySize = options.bodySize ?? 32;
  const maxRequests = options.maxRequests ?? Infinity;
  const verify = options.verify ?? false;
  const drainTimeoutMs = options.drainTimeoutMs ?? 2000;
  if (!(connections >= 1 && depth >= 1 && bodySize >= 4)) throw new RangeError('connections and depth must be >= 1, bodySize >= 4');

  const stats: Stats = { sent: 0, received: 0, errors: 0, errorSamples: [], errorResponses: 0, writes: 0, reads: 0 };
  let sending = true;
  const conns: Conn[] = [];

  // Frame protocol: one request = header + "echo " + body; the body's first 4 bytes are the request id
  // (so an echo can be matched to its request), the rest a fixed pattern. A batch template of `depth`
  // requests is copied with one memcpy, then the ids are patched in.
  const requestSize = protocol === 'frame' ? HEADER + 5 + bodySize : RESP_PING.length;
  const template = Buffer.allocUnsafe(requestSize * depth);
  const body = Buffer.alloc(bodySize);
  for (let i = 4; i < bodySize; i++) body[i] = 0x61 + (i % 26);
  for (let r = 0; r < depth; r++) {
    const at = r * requestSize;
    if (protocol === 'frame') {
      template[at] = 1;
      template[at + 1] = T_REQUEST;
      template.writeUInt16BE(0, at + 2);
      template.writeUInt32BE(0, at + 4);
      template.writeUInt32BE(5 + bodySize, at + 8);
      template.write('echo ', at + HEADER, 'latin1');
      body.copy(template, at + HEADER + 5);
    } else {
      RESP_PING.copy(template, at);
    }
  }

  return new Promise<LoadResult>((resolve, reject) => {
    let settled = false;
    let open = 0;
    let windowStart = 0;
    let windowStartCount = 0;
    let windowEnd = 0;
    let windowEndCount = -1;
    let cpuStart = process.cpuUsage();
    let cpuEnd: NodeJS.CpuUsage | undefined;
    let serverCpuStart: number | null = null;
    let serverCpuEnd: number | null = null;
    const watch = options.watchPid;
    const markStart = (): void => {
      windowStart = performance.now();
      windowStartCount = stats.received;
      cpuStart = process.cpuUsage();
      if (watch !== undefined) serverCpuStart = processCpuSeconds(watch);
    };
    const markEnd = (): void => {
      windowEnd = performance.now();
      windowEndCount = stats.received;
      cpuEnd = process.cpuUsage(cpuStart);
      if (watch !== undefined) serverCpuEnd = processCpuSeconds(watch);
    };
    const timers: NodeJS.Timeout[] = [];

    const allAnswered = (): boolean => conns.every((c) => c.inflight === 0);
    const finish = (): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      for (const c of conns) c.socket.destroy();
      // Ended by maxRequests before the window closed: the window is what ran.
      if (windowEndCount < 0) markEnd();
      const windowMs = windowEnd - windowStart;
      const requests = windowEndCount - windowStartCount;
      const cpu = cpuEnd ?? { user: 0, system: 0 };
      resolve({
        protocol,
        connections,
        depth,
        requests,
        windowMs: Math.round(windowMs),
        rps: windowMs > 0 ? Math.round((requests * 1000) / windowMs) : 0,
        sent: stats.sent,
        received: stats.received,
        lost: stats.sent - stats.received,
        errors: stats.errors,
        errorSamples: stats.errorSamples,
        errorResponses: stats.errorResponses,
        writes: stats.writes,
        reads: stats.reads,
        clientCpu: windowMs > 0 ? round2((cpu.user + cpu.system) / 1000 / windowMs) : 0,
        serverCpu: serverCpuStart !== null && serverCpuEnd !== null && windowMs > 0 ? round2(((serverCpuEnd - serverCpuStart) * 1000) / windowMs) : null,
      });
    };
    const checkDone = (): void => {
      if (!sending && allAnswered()) finish();
    };
    const abort = (err: Error): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      for (const c of conns) c.socket.destroy();
      reject(err);
    };

    const start = (): void => {
      for (const c of conns) c.refill();
      markStart();
      timers.push(
        setTimeout(markStart, warmupMs),
        setTimeout(() => {
          markEnd();
          sending = false;
          checkDone();
          timers.push(setTimeout(finish, drainTimeoutMs)); // whatever is still in flight then is lost
        }, warmupMs + durationMs),
      );
    };

    for (let i = 0; i < connections; i++) {
      const conn = protocol === 'frame' ? frameConn() : respConn();
      conns.push(conn);
      conn.socket.on('error', (err) => abort(new Error(`load connection ${i}: ${err.message}`, { cause: err })));
      conn.socket.on('close', () => {
        if (!settled && conn.inflight > 0) fail(stats, `connection ${i} closed with ${conn.inflight} in flight`);
        if (!settled) abort(new Error(`load connection ${i} closed by the server (${stats.errorSamples.join('; ') || 'no error seen'})`));
      });
      conn.socket.once('connect', () => {
        conn.socket.setNoDelay(true);
        if (++open === connections) start();
      });
    }

    /** How many requests this connection may send now: its free slots, within maxRequests. */
    function quota(free: number): number {
      if (!sending) return 0;
      const left = maxRequests - stats.sent;
      if (left <= 0) {
        sending = false;
        return 0;
      }
      return free < left ? free : left;
    }

    function frameConn(): Conn {
      // Ids 1..depth, each in flight at most once: a free-list stack and a flag per id.
      const freeIds = new Int32Array(depth);
      for (let k = 0; k < depth; k++) freeIds[k] = depth - k;
      let freeTop = depth;
      const flying = new Uint8Array(depth + 1);
      let carry: Buffer | null = null;
      const conn: Conn = {
        socket: undefined as unknown as Socket,
        inflight: 0,
        refill() {
          const k = quota(freeTop);
          if (k === 0) return;
          const out = Buffer.allocUnsafe(k * requestSize);
          template.copy(out, 0, 0, k * requestSize);
          for (let r = 0, at = 0; r < k; r++, at += requestSize) {
            const id = freeIds[--freeTop]!;
            flying[id] = 1;
            out.writeUInt32BE(id, at + 4);
            out.writeUInt32BE(id, at + HEADER + 5);
          }
          conn.inflight += k;
          stats.sent += k;
          stats.writes++;
          conn.socket.write(out);
        },
      };
      const onData = (data: Buffer): void => {
        let buf = data;
        if (carry !== null) {
          buf = Buffer.concat([carry, data]);
          carry = null;
        }
        let off = 0;
        const end = buf.length;
        while (end - off >= HEADER) {
          const length = buf.readUInt32BE(off + 8);
          if (buf[off] !== 1 || length > MAX_RESPONSE) {
            fail(stats, `bad header: ${buf.subarray(off, off + HEADER).toString('hex')}`);
            conn.socket.destroy();
            return;
          }
          if (end - off - HEADER < length) break;
          const type = buf[off + 1]!;
          const id = buf.readUInt32BE(off + 4);
          const p = off + HEADER;
          off = p + length;
          if (id < 1 || id > depth || flying[id] !== 1) {
            fail(stats, `response id ${id} is not in flight (type ${type})`);
            continue;
          }
          flying[id] = 0;
          freeIds[freeTop++] = id;
          conn.inflight--;
          stats.received++;
          if (type === T_ERROR) {
            stats.errorResponses++;
            if (stats.errorSamples.length < 10) stats.errorSamples.push(`ERROR for id ${id}: code ${length >= 2 ? buf.readUInt16BE(p) : '?'}`);
          } else if (type !== T_RESPONSE) {
            fail(stats, `id ${id}: type ${type}, expected RESPONSE`);
          } else if (length !== bodySize || buf.readUInt32BE(p) !== id) {
            fail(stats, `id ${id}: echoed body of ${length} bytes does not carry its id`);
          } else if (verify && buf.compare(body, 4, bodySize, p + 4, p + bodySize) !== 0) {
            fail(stats, `id ${id}: echoed body differs from the body sent`);
          }
        }
        if (off < end) carry = Buffer.from(buf.subarray(off)); // the read buffer is reused: copy
        conn.refill();
        checkDone();
      };
      conn.socket = connectWith(onData);
      return conn;
    }

    function respConn(): Conn {
      let matched = 0; // bytes of "+PONG\r\n" matched so far (a reply may span reads)
      const conn: Conn = {
        socket: undefined as unknown as Socket,
        inflight: 0,
        refill() {
          const k = quota(depth - conn.inflight);
          if (k === 0) return;
          conn.inflight += k;
          stats.sent += k;
          stats.writes++;
          conn.socket.write(Buffer.from(template.subarray(0, k * requestSize)));
        },
      };
      const onData = (buf: Buffer): void => {
        const end = buf.length;
        for (let i = 0; i < end; i++) {
          if (buf[i] !== RESP_PONG[matched]) {
            fail(stats, `unexpected RESP reply byte 0x${buf[i]!.toString(16)} at ${i}: ${JSON.stringify(buf.toString('latin1', i, i + 20))}`);
            conn.socket.destroy();
            return;
          }
          if (++matched === RESP_PONG.length) {
            matched = 0;
            if (conn.inflight === 0) {
              fail(stats, 'a reply with no request in flight');
              continue;
            }
            conn.inflight--;
            stats.received++;
          }
        }
        conn.refill();
        checkDone();
      };
      conn.socket = connectWith(onData);
      return conn;
    }

    function connectWith(onData: (data: Buffer) => void): Socket {
      const readBuffer = Buffer.allocUnsafe(READ_BUFFER);
      return connect({
        host,
        port: options.port,
        noDelay: true,
        onread: {
          buffer: readBuffer,
          callback(nread: number, buf: Uint8Array): boolean {
            stats.reads++;
            onData((buf as Buffer).subarray(0, nread));
            return true;
          },
        },
      });
    }
  });
}

// ---- as a process of its own ----

function optionsFromArgv(argv: string[]): LoadOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      protocol: { type: 'string', default: 'frame' },
      connections: { type: 'string', short: 'c', default: '50' },
      depth: { type: 'string', short: 'd', default: '100' },
      duration: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '0.3' },
      verify: { type: 'boolean', default: false },
      'watch-pid': { type: 'string' },
    },
  });
  if (values.port === undefined) throw new Error('--port is required');
  if (values.protocol !== 'frame' && values.protocol !== 'resp') throw new Error('--protocol is frame or resp');
  return {
    port: Number(values.port),
    host: values.host,
    protocol: values.protocol,
    connections: Number(values.connections),
    depth: Number(values.depth),
    durationMs: Number(values.duration) * 1000,
    warmupMs: Number(values.warmup) * 1000,
    verify: values.verify,
    ...(values['watch-pid'] !== undefined ? { watchPid: Number(values['watch-pid']) } : {}),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.send !== undefined) {
    // Forked by the bench: run what it asks, one run at a time, until it disconnects.
    process.on('message', (msg: { run?: LoadOptions }) => {
      if (msg.run === undefined) return;
      runLoad(msg.run).then(
        (result) => process.send!({ result }),
        (err: Error) => process.send!({ error: err.message }),
      );
    });
    process.on('disconnect', () => process.exit(0));
    process.send({ ready: true });
  } else {
    const result = await runLoad(optionsFromArgv(process.argv.slice(2)));
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}
