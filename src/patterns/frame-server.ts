// The request/response server of the frame protocol (native-notes/wire-formats.md, "frame protocol v1").
// One FrameDecoder per connection; responses may go out in any order, matched by id. Protocol errors
// (bad version, unknown type, too large) get ERROR with id 0 and a close: framing is never resynced.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { WirelabError, errorCode } from '../errors.ts';
import {
  CONNECTION_ID, DEFAULT_MAX_PAYLOAD, FrameDecoder, FrameType, HEADER_SIZE, MAX_PING_PAYLOAD, WireError,
  encodeHeader, errorPayload, frameAnnotator, typeName, wireErrorFor, writeHeaderUnchecked, type Frame,
} from '../wire/frame.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';

/** Named limits, each with a default and a lab flag. */
export const SERVER_DEFAULTS = {
  /** --max-payload: largest frame payload accepted. */
  maxPayload: DEFAULT_MAX_PAYLOAD,
  /** --max-connections: connections past this are dropped at accept. */
  maxConnections: 1024,
  /** --idle-timeout: a connection with nothing in flight and no traffic for this long is closed. */
  idleTimeoutMs: 60_000,
  /** --max-in-flight: requests of one connection being worked on at once; more get ERROR 4. */
  maxInFlight: 1024,
  /** --request-timeout: a request still working after this long gets ERROR 5 and its work is aborted. */
  requestTimeoutMs: 65_000,
} as const;

const EMPTY = Buffer.alloc(0);

/** Largest `sleep` the lab server accepts, in ms. */
export const MAX_SLEEP_MS = 60_000;

/** A method's own failure: sent as ERROR with wireCode (100 and above for applications). */
export class MethodError extends WirelabError {
  constructor(readonly wireCode: number, message: string) {
    super(wireCode === WireError.BAD_REQUEST ? 'ERR_BAD_REQUEST' : 'ERR_APPLICATION', message);
  }
}

export interface RequestContext {
  readonly id: number;
  /** Aborted when the client cancels, the request times out or the connection closes. */
  readonly signal: AbortSignal;
}

/** A method returns the response payload, at once or later. */
export type MethodHandler = (body: Buffer, ctx: RequestContext) => Uint8Array | string | Promise<Uint8Array | string>;

function sleepMethod(body: Buffer, ctx: RequestContext): Promise<string> {
  const text = body.toString('latin1');
  if (!/^\d{1,5}$/.test(text) || Number(text) > MAX_SLEEP_MS) {
    throw new MethodError(WireError.BAD_REQUEST, `sleep takes a whole number of milliseconds up to ${MAX_SLEEP_MS}`);
  }
  const ms = Number(text);
  return new Promise((resolve, reject) => {
    const signal = ctx.signal;
    const done = () => {
      signal.removeEventListener('abort', onAbort);
      resolve(`slept ${ms}`);
    };
    const timer = setTimeout(done, ms);
    // The work really stops: no timer is left to answer later.
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The lab server's methods (issue 2): echo, sleep, fail. */
export const LAB_METHODS: Readonly<Record<string, MethodHandler>> = {
  echo: (body) => body,
  sleep: sleepMethod,
  fail: (body) => {
    throw new MethodError(WireError.APPLICATION, body.toString('utf8'));
  },
};

export type ServerEvent =
  | { type: 'connection'; conn: number; remote: string }
  | { type: 'drop'; remote: string }
  | { type: 'chunk'; conn: number; bytes: number; frames: number }
  | { type: 'request'; conn: number; id: number; method: string; bodyBytes: number }
  | { type: 'reply'; conn: number; id: number; frame: 'RESPONSE' | 'ERROR' | 'PONG'; bytes: number; errorCode?: number }
  | { type: 'cancel'; conn: number; id: number; found: boolean }
  | { type: 'protocol-error'; conn: number; code: string; message: string }
  | { type: 'idle-close'; conn: number }
  | { type: 'close'; conn: number };

export interface FrameServerOptions {
  maxPayload?: number;
  maxConnections?: number;
  idleTimeoutMs?: number;
  maxInFlight?: number;
  requestTimeoutMs?: number;
  methods?: Record<string, MethodHandler>;
  recorder?: Recorder;
  onEvent?: (event: ServerEvent) => void;
  /** Also report each chunk, request, reply and cancel (not only connections): for narration, not for load. */
  detailedEvents?: boolean;
}

/**
 * Replies up to this size are copied into one reply buffer per chunk read, so a pipelined batch leaves in
 * one write: copying 32 bytes costs less than a writev entry and a trip through the Writable machinery
 * (bench/results/reqres-load.md). Larger payloads are never copied: header and payload go out as separate
 * buffers under cork().
 */
export const SMALL_REPLY = 1024;
/** Reply buffers are carved from slabs this large; a write keeps its slice alive, so slices are never reused. */
const SLAB_SIZE = 64 * 1024;

interface MethodEntry {
  name: Buffer;
  handler: MethodHandler;
}

class Pending implements RequestContext {
  private controller: AbortController | undefined;
  timer: NodeJS.Timeout | undefined;
  constructor(readonly id: number) {}
  // Created on first use: a synchronous method never pays for an AbortController.
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }
  abort(reason: WirelabError): void {
    if (this.timer) clearTimeout(this.timer);
    this.controller?.abort(reason);
  }
}

interface Connection {
  n: number;
  socket: Socket;
  decoder: FrameDecoder;
  inFlight: Map<number, Pending>;
  closing: boolean;
}

export class FrameServer {
  readonly options: Required<Omit<FrameServerOptions, 'recorder' | 'onEvent' | 'methods' | 'detailedEvents'>>;
  /** Methods by name length, matched on the payload's bytes: no string per request. */
  private readonly methods = new Map<number, MethodEntry[]>();
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly recorder: Recorder | undefined;
  private readonly onEvent: ((event: ServerEvent) => void) | undefined;
  /** onEvent for per-request events, or undefined when they are not wanted. */
  private readonly onDetail: ((event: ServerEvent) => void) | undefined;
  private slab = Buffer.allocUnsafe(SLAB_SIZE);
  private slabAt = 0;
  /** The connection whose chunk is being answered, and where its replies start in the slab. */
  private batchConn: Connection | undefined;
  private batchStart = 0;
  private nextConn = 1;
  private readonly frames: Frame[] = [];
  /** Counters for labs and tests. */
  readonly stats = { connections: 0, dropped: 0, requests: 0, protocolErrors: 0, cancelled: 0, idleClosed: 0 };

  constructor(options: FrameServerOptions = {}) {
    this.options = {
      maxPayload: options.maxPayload ?? SERVER_DEFAULTS.maxPayload,
      maxConnections: options.maxConnections ?? SERVER_DEFAULTS.maxConnections,
      idleTimeoutMs: options.idleTimeoutMs ?? SERVER_DEFAULTS.idleTimeoutMs,
      maxInFlight: options.maxInFlight ?? SERVER_DEFAULTS.maxInFlight,
      requestTimeoutMs: options.requestTimeoutMs ?? SERVER_DEFAULTS.requestTimeoutMs,
    };
    for (const [name, handler] of Object.entries(options.methods ?? LAB_METHODS)) {
      const bytes = Buffer.from(name, 'latin1');
      const list = this.methods.get(bytes.length) ?? [];
      list.push({ name: bytes, handler });
      this.methods.set(bytes.length, list);
    }
    this.recorder = options.recorder;
    this.onEvent = options.onEvent;
    this.onDetail = options.detailedEvents ? options.onEvent : undefined;
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.maxConnections = this.options.maxConnections;
    this.server.on('drop', (data) => {
      this.stats.dropped++;
      this.onEvent?.({ type: 'drop', remote: `${data?.remoteAddress}:${data?.remotePort}` });
    });
  }

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, aborts work in flight and closes every connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const c of this.connections) this.teardown(c, new WirelabError('ERR_CONNECTION_CLOSED', 'server closing'));
    });
  }

  private accept(socket: Socket): void {
    const conn: Connection = {
      n: this.nextConn++,
      socket,
      decoder: new FrameDecoder({ maxPayload: this.options.maxPayload }),
      inFlight: new Map(),
      closing: false,
    };
    this.connections.add(conn);
    this.stats.connections++;
    tapSocket(socket, this.recorder, { side: 'server', annotate: frameAnnotator(this.options.maxPayload) });
    this.onEvent?.({ type: 'connection', conn: conn.n, remote: `${socket.remoteAddress}:${socket.remotePort}` });
    socket.setTimeout(this.options.idleTimeoutMs);
    socket.on('timeout', () => {
      // Idle means nothing in flight too: a long `sleep` keeps its connection.
      if (conn.inFlight.size > 0) return socket.setTimeout(this.options.idleTimeoutMs);
      this.stats.idleClosed++;
      this.onEvent?.({ type: 'idle-close', conn: conn.n });
      conn.closing = true;
      socket.end();
    });
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('drain', () => {
      if (!conn.closing) socket.resume();
    });
    socket.on('error', () => {
      /* ECONNRESET and the like: 'close' follows and cleans up */
    });
    socket.on('close', () => {
      this.teardown(conn, new WirelabError('ERR_CONNECTION_CLOSED', 'connection closed'));
      this.onEvent?.({ type: 'close', conn: conn.n });
    });
  }

  private teardown(conn: Connection, reason: WirelabError): void {
    for (const p of conn.inFlight.values()) p.abort(reason);
    conn.inFlight.clear();
    conn.closing = true;
    if (!conn.socket.destroyed) conn.socket.destroy();
    this.connections.delete(conn);
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.closing) return;
    const socket = conn.socket;
    let frames: Frame[] | undefined;
    let failure: unknown;
    if (this.onDetail) {
      // Narration: decode the whole chunk first, so "read N bytes -> K frames" comes before the requests.
      frames = this.frames;
      frames.length = 0;
      try {
        conn.decoder.pushTo(chunk, frames);
      } catch (err) {
        failure = err;
      }
      this.onDetail({ type: 'chunk', conn: conn.n, bytes: chunk.length, frames: frames.length });
    }
    socket.cork();
    this.batchConn = conn;
    this.batchStart = this.slabAt;
    if (frames) {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        this.handle(conn, f.type, f.id, f.payload, 0, f.payload.length);
      }
    } else {
      // The hot path: each frame handled as the decoder finds it, no Frame object, one view at most.
      this.current = conn;
      try {
        conn.decoder.each(chunk, this.onFrame);
      } catch (err) {
        failure = err;
      }
      this.current = undefined;
    }
    this.flushBatch();
    this.batchConn = undefined;
    socket.uncork();
    // Frames decoded before a bad one were answered above; then the connection is closed.
    if (failure !== undefined) return this.protocolError(conn, failure);
    // Back-pressure: a client that does not read its responses stops being read.
    if (socket.writableNeedDrain) socket.pause();
  }

  private current: Connection | undefined;
  private readonly onFrame = (type: number, _flags: number, id: number, buf: Buffer, start: number, end: number): void => {
    this.handle(this.current!, type, id, buf, start, end);
  };

  /** Writes the replies gathered so far for the current chunk as one buffer. */
  private flushBatch(): void {
    if (this.slabAt > this.batchStart && this.batchConn && !this.batchConn.socket.destroyed) {
      this.batchConn.socket.write(this.slab.subarray(this.batchStart, this.slabAt));
    }
    this.batchStart = this.slabAt;
  }

  /** Room for n bytes in the slab: a new slab when the old one is full (its slices stay with their writes). */
  private reserve(n: number): void {
    if (SLAB_SIZE - this.slabAt >= n) return;
    this.flushBatch();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, n));
    this.slabAt = 0;
    this.batchStart = 0;
  }

  private protocolError(conn: Connection, err: unknown): void {
    const code = errorCode(err) ?? 'ERR_DECODER_FAILED';
    const wire = wireErrorFor(code);
    const message = err instanceof Error ? err.message : String(err);
    this.stats.protocolErrors++;
    this.onEvent?.({ type: 'protocol-error', conn: conn.n, code, message });
    this.sendError(conn, CONNECTION_ID, wire, message);
    conn.closing = true;
    for (const p of conn.inFlight.values()) p.abort(new WirelabError('ERR_CONNECTION_CLOSED', 'protocol error'));
    conn.inFlight.clear();
    // end() sends FIN once the ERROR is flushed; destroy if the peer never closes its side.
    conn.socket.end();
    setTimeout(() => conn.socket.destroy(), 1000).unref();
  }

  private send(conn: Connection, type: number, id: number, payload: Uint8Array): void {
    const socket = conn.socket;
    if (socket.destroyed || socket.writableEnded) return;
    const length = payload.byteLength;
    const inBatch = this.batchConn === conn;
    if (inBatch && length <= SMALL_REPLY) {
      this.reserve(HEADER_SIZE + length);
      writeHeaderUnchecked(this.slab, this.slabAt, type, id, length);
      this.slab.set(payload, this.slabAt + HEADER_SIZE);
      this.slabAt += HEADER_SIZE + length;
    } else {
      if (inBatch) this.flushBatch(); // keep reply order: earlier small replies first
      socket.cork();
      socket.write(encodeHeader(type, id, length));
      if (length > 0) socket.write(payload);
      socket.uncork();
    }
    if (this.onDetail) {
      const frame = type === FrameType.RESPONSE ? 'RESPONSE' : type === FrameType.PONG ? 'PONG' : 'ERROR';
      this.onDetail({ type: 'reply', conn: conn.n, id, frame, bytes: length, errorCode: frame === 'ERROR' ? (payload[0]! << 8) | payload[1]! : undefined });
    }
  }

  private sendError(conn: Connection, id: number, code: number, message: string): void {
    this.send(conn, FrameType.ERROR, id, errorPayload(code, message));
  }

  /** One frame; its payload is buf[start, end). */
  private handle(conn: Connection, type: number, id: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case FrameType.REQUEST:
        return this.request(conn, id, buf, start, end);
      case FrameType.PING:
        if (end - start > MAX_PING_PAYLOAD) return this.sendError(conn, id, WireError.BAD_REQUEST, `PING payload over ${MAX_PING_PAYLOAD} bytes`);
        return this.send(conn, FrameType.PONG, id, buf.subarray(start, end));
      case FrameType.CANCEL:
        return this.cancel(conn, id);
      case FrameType.PONG:
      case FrameType.ERROR:
        return; // answers to nothing we sent, or a client's complaint: nothing to do
      default:
        return this.sendError(conn, id, WireError.BAD_REQUEST, `a client does not send ${typeName(type)}`);
    }
  }

  private request(conn: Connection, id: number, buf: Buffer, start: number, end: number): void {
    this.stats.requests++;
    if (id === CONNECTION_ID) return this.sendError(conn, id, WireError.BAD_REQUEST, 'request id 0 is reserved for the connection');
    if (conn.inFlight.has(id)) return this.sendError(conn, id, WireError.DUPLICATE_ID, `id ${id} is already in flight on this connection`);
    // Method names are short: a plain scan for the space beats a native indexOf call.
    let sp = start;
    while (sp < end && buf[sp] !== 0x20) sp++;
    const nameLength = sp - start;
    const body = sp >= end - 1 ? EMPTY : buf.subarray(sp + 1, end);
    const handler = this.lookup(buf, start, nameLength);
    this.onDetail?.({ type: 'request', conn: conn.n, id, method: buf.toString('latin1', start, sp), bodyBytes: body.length });
    if (!handler) return this.sendError(conn, id, WireError.BAD_REQUEST, `unknown method '${buf.toString('latin1', start, sp)}'`);
    if (conn.inFlight.size >= this.options.maxInFlight) {
      return this.sendError(conn, id, WireError.BAD_REQUEST, `too many requests in flight (limit ${this.options.maxInFlight})`);
    }
    const pending = new Pending(id);
    let result: Uint8Array | string | Promise<Uint8Array | string>;
    try {
      result = handler(body, pending);
    } catch (err) {
      return this.methodFailed(conn, id, err);
    }
    if (!(result instanceof Promise)) return this.send(conn, FrameType.RESPONSE, id, typeof result === 'string' ? Buffer.from(result) : result);
    conn.inFlight.set(id, pending);
    pending.timer = setTimeout(() => {
      if (conn.inFlight.get(id) !== pending) return;
      conn.inFlight.delete(id);
      pending.abort(new WirelabError('ERR_TIMEOUT', 'request timed out on the server'));
      this.sendError(conn, id, WireError.TIMEOUT, `request took longer than ${this.options.requestTimeoutMs} ms`);
    }, this.options.requestTimeoutMs);
    result.then(
      (value) => {
        if (conn.inFlight.get(id) !== pending) return; // cancelled or timed out: the answer was already sent
        conn.inFlight.delete(id);
        clearTimeout(pending.timer);
        this.send(conn, FrameType.RESPONSE, id, typeof value === 'string' ? Buffer.from(value) : value);
      },
      (err: unknown) => {
        if (conn.inFlight.get(id) !== pending) return;
        conn.inFlight.delete(id);
        clearTimeout(pending.timer);
        this.methodFailed(conn, id, err);
      },
    );
  }

  private lookup(buf: Buffer, start: number, nameLength: number): MethodHandler | undefined {
    const candidates = this.methods.get(nameLength);
    if (!candidates) return undefined;
    outer: for (let c = 0; c < candidates.length; c++) {
      const entry = candidates[c]!;
      for (let i = 0; i < nameLength; i++) if (buf[start + i] !== entry.name[i]) continue outer;
      return entry.handler;
    }
    return undefined;
  }

  private methodFailed(conn: Connection, id: number, err: unknown): void {
    if (err instanceof MethodError) return this.sendError(conn, id, err.wireCode, err.message);
    this.sendError(conn, id, WireError.APPLICATION, `internal error: ${err instanceof Error ? err.message : String(err)}`);
  }

  private cancel(conn: Connection, id: number): void {
    const pending = conn.inFlight.get(id);
    this.onDetail?.({ type: 'cancel', conn: conn.n, id, found: pending !== undefined });
    // A CANCEL that crosses its response on the wire finds nothing: that race is normal, not an error.
    if (!pending) return;
    conn.inFlight.delete(id);
    this.stats.cancelled++;
    pending.abort(new WirelabError('ERR_CANCELLED', 'cancelled by the client'));
    this.sendError(conn, id, WireError.CANCELLED, 'cancelled');
  }
}
