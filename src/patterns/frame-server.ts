// The request/response server of the frame protocol (native-notes/wire-formats.md, "frame protocol v1").
// One FrameDecoder per connection; responses may go out in any order, matched by id. Protocol errors
// (bad version, unknown type, too large) get ERROR with id 0 and a close: framing is never resynced.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { WirelabError, errorCode } from '../errors.ts';
import {
  CONNECTION_ID, DEFAULT_MAX_PAYLOAD, FrameDecoder, FrameType, MAX_PING_PAYLOAD, WireError,
  encodeHeader, errorPayload, frameAnnotator, typeName, type Frame,
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
  readonly options: Required<Omit<FrameServerOptions, 'recorder' | 'onEvent' | 'methods'>>;
  private readonly methods: Map<string, MethodHandler>;
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly recorder: Recorder | undefined;
  private readonly onEvent: ((event: ServerEvent) => void) | undefined;
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
    this.methods = new Map(Object.entries(options.methods ?? LAB_METHODS));
    this.recorder = options.recorder;
    this.onEvent = options.onEvent;
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
    const frames = this.frames;
    frames.length = 0;
    try {
      conn.decoder.pushTo(chunk, frames);
    } catch (err) {
      // Frames decoded before the bad one are still answered, then the connection is closed.
      this.dispatch(conn, frames, chunk.length);
      this.protocolError(conn, err);
      return;
    }
    this.dispatch(conn, frames, chunk.length);
    // Back-pressure: a client that does not read its responses stops being read.
    if (conn.socket.writableNeedDrain) conn.socket.pause();
  }

  private dispatch(conn: Connection, frames: Frame[], bytes: number): void {
    this.onEvent?.({ type: 'chunk', conn: conn.n, bytes, frames: frames.length });
    if (frames.length === 0) return;
    const socket = conn.socket;
    socket.cork();
    for (let i = 0; i < frames.length; i++) this.handle(conn, frames[i]!);
    socket.uncork();
  }

  private protocolError(conn: Connection, err: unknown): void {
    const code = errorCode(err) ?? 'ERR_DECODER_FAILED';
    const wire = code === 'ERR_BAD_VERSION' ? WireError.BAD_VERSION : code === 'ERR_UNKNOWN_TYPE' ? WireError.UNKNOWN_TYPE : WireError.FRAME_TOO_LARGE;
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
    socket.write(encodeHeader(type, id, payload.byteLength));
    if (payload.byteLength > 0) socket.write(payload);
    if (this.onEvent) {
      const frame = type === FrameType.RESPONSE ? 'RESPONSE' : type === FrameType.PONG ? 'PONG' : 'ERROR';
      this.onEvent({ type: 'reply', conn: conn.n, id, frame, bytes: payload.byteLength, errorCode: frame === 'ERROR' ? Buffer.from(payload).readUInt16BE(0) : undefined });
    }
  }

  private sendError(conn: Connection, id: number, code: number, message: string): void {
    this.send(conn, FrameType.ERROR, id, errorPayload(code, message));
  }

  private handle(conn: Connection, f: Frame): void {
    switch (f.type) {
      case FrameType.REQUEST:
        return this.request(conn, f);
      case FrameType.PING:
        if (f.payload.length > MAX_PING_PAYLOAD) return this.sendError(conn, f.id, WireError.BAD_REQUEST, `PING payload over ${MAX_PING_PAYLOAD} bytes`);
        return this.send(conn, FrameType.PONG, f.id, f.payload);
      case FrameType.CANCEL:
        return this.cancel(conn, f.id);
      case FrameType.PONG:
      case FrameType.ERROR:
        return; // answers to nothing we sent, or a client's complaint: nothing to do
      default:
        return this.sendError(conn, f.id, WireError.BAD_REQUEST, `a client does not send ${typeName(f.type)}`);
    }
  }

  private request(conn: Connection, f: Frame): void {
    const id = f.id;
    this.stats.requests++;
    if (id === CONNECTION_ID) return this.sendError(conn, id, WireError.BAD_REQUEST, 'request id 0 is reserved for the connection');
    if (conn.inFlight.has(id)) return this.sendError(conn, id, WireError.DUPLICATE_ID, `id ${id} is already in flight on this connection`);
    const payload = f.payload;
    const sp = payload.indexOf(0x20);
    const method = payload.toString('latin1', 0, sp === -1 ? payload.length : sp);
    const body = sp === -1 ? payload.subarray(payload.length) : payload.subarray(sp + 1);
    this.onEvent?.({ type: 'request', conn: conn.n, id, method, bodyBytes: body.length });
    const handler = this.methods.get(method);
    if (!handler) return this.sendError(conn, id, WireError.BAD_REQUEST, `unknown method '${method}'`);
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

  private methodFailed(conn: Connection, id: number, err: unknown): void {
    if (err instanceof MethodError) return this.sendError(conn, id, err.wireCode, err.message);
    this.sendError(conn, id, WireError.APPLICATION, `internal error: ${err instanceof Error ? err.message : String(err)}`);
  }

  private cancel(conn: Connection, id: number): void {
    const pending = conn.inFlight.get(id);
    this.onEvent?.({ type: 'cancel', conn: conn.n, id, found: pending !== undefined });
    // A CANCEL that crosses its response on the wire finds nothing: that race is normal, not an error.
    if (!pending) return;
    conn.inFlight.delete(id);
    this.stats.cancelled++;
    pending.abort(new WirelabError('ERR_CANCELLED', 'cancelled by the client'));
    this.sendError(conn, id, WireError.CANCELLED, 'cancelled');
  }
}
