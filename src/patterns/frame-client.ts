// The request/response client of the frame protocol: ids, a pending map, per-request timeouts and
// AbortSignal cancellation (a CANCEL frame goes to the server), pipelining, and every pending request
// rejected with a coded error when the connection drops.
import { connect as netConnect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { WirelabError, errorCode, type ErrorCode } from '../errors.ts';
import {
  CONNECTION_ID, DEFAULT_MAX_PAYLOAD, FrameDecoder, FrameType, MAX_ID, WireError,
  encodeFrame, frameAnnotator, parseError, requestPayload, type Frame,
} from '../wire/frame.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';

export const CLIENT_DEFAULTS = {
  /** Per-request timeout unless the call gives its own `timeoutMs`. */
  timeoutMs: 5000,
  connectTimeoutMs: 5000,
  /** Requests waiting for an answer at once; more are refused with ERR_TOO_MANY_PENDING. */
  maxPending: 65_536,
  /** Ids cancelled but not yet answered by the server, kept so they are not reused too soon. */
  maxDraining: 65_536,
} as const;

const WIRE_ERROR_NAMES: Record<number, string> = {
  [WireError.BAD_VERSION]: 'bad version',
  [WireError.UNKNOWN_TYPE]: 'unknown type',
  [WireError.FRAME_TOO_LARGE]: 'frame too large',
  [WireError.BAD_REQUEST]: 'bad request',
  [WireError.TIMEOUT]: 'timeout',
  [WireError.CANCELLED]: 'cancelled',
  [WireError.DUPLICATE_ID]: 'duplicate id',
};

/** An ERROR frame from the server: code ERR_REMOTE, with the wire code and message it carried. */
export class RemoteError extends WirelabError {
  constructor(readonly remoteCode: number, readonly remoteMessage: string, readonly id: number) {
    super('ERR_REMOTE', `server error ${remoteCode} (${WIRE_ERROR_NAMES[remoteCode] ?? (remoteCode >= 100 ? 'application' : 'unknown')}): ${remoteMessage}`);
  }
}

export interface FrameClientOptions {
  port: number;
  host?: string;
  maxPayload?: number;
  /** Default per-request timeout in ms. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  maxPending?: number;
  recorder?: Recorder;
  /** Disable Nagle (default true): a lab wants each write to be its own segment. */
  noDelay?: boolean;
}

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export interface FrameClientEvents {
  push: [frame: Frame];
  frame: [frame: Frame];
  stray: [frame: Frame];
  close: [err: WirelabError];
}

export class FrameClient extends EventEmitter<FrameClientEvents> {
  readonly socket: Socket;
  readonly stats = { sent: 0, received: 0, timeouts: 0, aborted: 0, cancelsSent: 0, lateAnswers: 0, stray: 0 };
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  /** Cancelled ids whose final answer has not come yet, oldest first. */
  private readonly draining = new Set<number>();
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private nextId = 1;
  private corked = false;
  private blocked = false;
  private backlog: Buffer[][] = [];
  private closedWith: WirelabError | undefined;
  private readonly frames: Frame[] = [];

  private constructor(socket: Socket, options: FrameClientOptions) {
    super();
    this.socket = socket;
    this.decoder = new FrameDecoder({ maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD });
    this.timeoutMs = options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs;
    this.maxPending = options.maxPending ?? CLIENT_DEFAULTS.maxPending;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.shutdown(new WirelabError('ERR_CONNECTION_CLOSED', `connection error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.shutdown(new WirelabError('ERR_CONNECTION_CLOSED', 'connection closed')));
  }

  static connect(options: FrameClientOptions): Promise<FrameClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port: options.port, host: options.host ?? '127.0.0.1', noDelay: options.noDelay ?? true });
      tapSocket(socket, options.recorder, { side: 'client', annotate: frameAnnotator(options.maxPayload ?? DEFAULT_MAX_PAYLOAD) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new WirelabError('ERR_TIMEOUT', `connect to ${options.host ?? '127.0.0.1'}:${options.port} timed out`));
      }, options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new FrameClient(socket, options));
      });
    });
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Sends `method body` and resolves with the RESPONSE payload; rejects with a coded error. */
  request(method: string, body: Uint8Array | string = '', options: RequestOptions = {}): Promise<Buffer> {
    let parts: Buffer[];
    try {
      parts = requestPayload(method, body);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.call(FrameType.REQUEST, parts, options);
  }

  /** PING with up to 64 bytes; resolves with the PONG payload. */
  ping(payload: Uint8Array | string = '', options: RequestOptions = {}): Promise<Buffer> {
    return this.call(FrameType.PING, [typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload)], options);
  }

  private call(type: typeof FrameType.REQUEST | typeof FrameType.PING, parts: Buffer[], options: RequestOptions): Promise<Buffer> {
    if (this.closedWith) return Promise.reject(new WirelabError('ERR_NOT_CONNECTED', 'the connection is closed', { cause: this.closedWith }));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new WirelabError('ERR_ABORTED', 'aborted before it was sent', { cause: signal.reason }));
    if (this.pending.size >= this.maxPending) return Promise.reject(new WirelabError('ERR_TOO_MANY_PENDING', `${this.pending.size} requests already pending (limit ${this.maxPending})`));
    const id = this.allocateId();
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      const timeoutMs = options.timeoutMs ?? this.timeoutMs;
      if (Number.isFinite(timeoutMs)) {
        p.timer = setTimeout(() => {
          this.stats.timeouts++;
          this.giveUp(id, new WirelabError('ERR_TIMEOUT', `request ${id} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
      }
      if (signal) {
        p.onAbort = () => {
          this.stats.aborted++;
          this.giveUp(id, new WirelabError('ERR_ABORTED', `request ${id} aborted`, { cause: signal.reason }));
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.set(id, p);
      this.stats.sent++;
      this.write(encodeFrame(type, id, parts));
    });
  }

  /** Timeout or abort: forget the request, tell the server to stop its work, reject the caller. */
  private giveUp(id: number, err: WirelabError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.settle(id, p);
    if (!this.closedWith) {
      this.draining.add(id);
      if (this.draining.size > CLIENT_DEFAULTS.maxDraining) this.draining.delete(this.draining.values().next().value!);
      this.stats.cancelsSent++;
      this.write(encodeFrame(FrameType.CANCEL, id));
    }
    p.reject(err);
  }

  private settle(id: number, p: Pending): void {
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
  }

  /** Ids count up from 1, wrap before 2^32, skip 0 and any id still pending or draining. */
  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= MAX_ID ? 1 : id + 1;
      if (!this.pending.has(id) && !this.draining.has(id)) return id;
    }
  }

  /** Writes the buffers of one frame. Frames written in the same tick go out in one writev. */
  write(buffers: Buffer[]): void {
    if (this.blocked) {
      this.backlog.push(buffers);
      return;
    }
    const socket = this.socket;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    let ok = true;
    for (const b of buffers) ok = socket.write(b);
    if (!ok) this.blocked = true; // respect back-pressure: hold further frames until 'drain'
  }

  private onDrain(): void {
    this.blocked = false;
    const backlog = this.backlog;
    this.backlog = [];
    for (let i = 0; i < backlog.length; i++) {
      if (this.blocked) {
        this.backlog.push(...backlog.slice(i));
        return;
      }
      this.write(backlog[i]!);
    }
  }

  private onData(chunk: Buffer): void {
    const frames = this.frames;
    frames.length = 0;
    let failure: unknown;
    try {
      this.decoder.pushTo(chunk, frames);
    } catch (err) {
      failure = err;
    }
    for (let i = 0; i < frames.length; i++) this.handle(frames[i]!);
    if (failure !== undefined) {
      const code = (errorCode(failure) ?? 'ERR_DECODER_FAILED') as ErrorCode;
      this.shutdown(new WirelabError(code, `bad frame from the server: ${(failure as Error).message}`, { cause: failure }));
      this.socket.destroy();
    }
  }

  private handle(f: Frame): void {
    this.stats.received++;
    this.emit('frame', f);
    switch (f.type) {
      case FrameType.RESPONSE:
      case FrameType.PONG:
      case FrameType.ERROR: {
        if (f.type === FrameType.ERROR && f.id === CONNECTION_ID) {
          const e = parseError(f.payload);
          this.shutdown(new WirelabError('ERR_CONNECTION_CLOSED', 'the server reported a protocol error', { cause: new RemoteError(e.code, e.message, 0) }));
          return;
        }
        const p = this.pending.get(f.id);
        if (!p) {
          if (this.draining.delete(f.id)) this.stats.lateAnswers++;
          else {
            this.stats.stray++;
            this.emit('stray', f);
          }
          return;
        }
        this.settle(f.id, p);
        if (f.type === FrameType.ERROR) {
          let e;
          try {
            e = parseError(f.payload);
          } catch (err) {
            return p.reject(err as Error);
          }
          p.reject(new RemoteError(e.code, e.message, f.id));
        } else p.resolve(f.payload);
        return;
      }
      case FrameType.PUSH:
        this.emit('push', f);
        return;
      case FrameType.PING:
        this.write(encodeFrame(FrameType.PONG, f.id, f.payload));
        return;
      default:
        this.stats.stray++;
        this.emit('stray', f);
    }
  }

  /** Rejects every pending request with `err` (once); the socket is closed by the caller or the peer. */
  private shutdown(err: WirelabError): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const [id, p] of this.pending) {
      this.settle(id, p);
      p.reject(err);
    }
    this.backlog = [];
    this.emit('close', err);
  }

  /** Ends the connection politely and waits for it to close. Pending requests are rejected. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }
}
