// An HTTP/1.1 server written by hand on node:net (RFC 9112): persistent connections, pipelined requests
// answered in order, HEAD, Connection: close, streaming (chunked) responses with back-pressure, and the
// named limits that keep a hostile client from holding memory or sockets: header timeout (slowloris),
// idle keep-alive timeout, max connections, max pipelined requests, and the parser's size limits.
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import { HttpError, RequestParser, encodeResponseHead, STATUS_TEXT, header, type HeaderList, type HttpLimits, type HttpRequest, httpAnnotator } from '../wire/http.ts';
import { LAST_CHUNK, encodeChunk } from '../wire/chunked.ts';
import { WirelabError, errorCode } from '../errors.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';

export interface HttpServerLimits extends HttpLimits {
  /** From a request's first byte (or the connection's start) until the whole request has arrived: 408 and close. */
  headerTimeoutMs: number;
  /** A persistent connection with no request in flight is closed after this long (RFC 9112 section 9.5). */
  idleTimeoutMs: number;
  /** Open connections; one more is answered 503 and closed. */
  maxConnections: number;
  /** Parsed requests waiting behind the one being answered; past it the socket stops being read. */
  maxPipelined: number;
  /** After an error response, how long to keep draining the client's bytes before destroying (RFC 9112 section 9.6). */
  lingerMs: number;
}

export const DEFAULT_SERVER_LIMITS: Omit<HttpServerLimits, keyof HttpLimits> = {
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
  maxConnections: 1_024,
  maxPipelined: 16,
  lingerMs: 1_000,
};

export type HttpHandler = (req: HttpRequest, res: HttpResponse) => void | Promise<void>;

export interface HttpServerOptions {
  limits?: Partial<HttpServerLimits>;
  recorder?: Recorder;
  /** Called with every rejection (parse errors, timeouts, refused connections) for narration and tests. */
  onReject?: (code: string, status: number, remote: string) => void;
}

export interface HttpServerStats {
  connections: number;
  requests: number;
  rejected: Record<string, number>;
}

export class HttpServer {
  readonly server: net.Server;
  readonly limits: HttpServerLimits;
  readonly stats: HttpServerStats = { connections: 0, requests: 0, rejected: {} };
  private readonly conns = new Set<Connection>();
  private readonly refused = new Set<Socket>();
  closing = false;

  constructor(readonly handler: HttpHandler, readonly options: HttpServerOptions = {}) {
    // Undefined entries would override the defaults in the spread below: drop them.
    const limits = Object.fromEntries(Object.entries(options.limits ?? {}).filter(([, v]) => v !== undefined)) as Partial<HttpServerLimits>;
    this.limits = { ...DEFAULT_SERVER_LIMITS, ...(new RequestParser(limits).limits), ...limits } as HttpServerLimits;
    // allowHalfOpen: we decide what a client's FIN means (see Connection), rather than Node ending our side.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  /** Open connections right now. */
  get connectionCount(): number {
    return this.conns.size;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting, ends idle connections at once and destroys the rest (streams never end by themselves). */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.conns) c.shutdown();
    for (const s of this.refused) s.destroy();
    await closed;
  }

  reject(code: string, status: number, remote: string): void {
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
    this.options.onReject?.(code, status, remote);
  }

  private accept(socket: Socket): void {
    tapSocket(socket, this.options.recorder, { side: 'server', annotate: httpAnnotator() });
    socket.setNoDelay(true);
    if (this.conns.size >= this.limits.maxConnections || this.closing) {
      this.reject('ERR_TOO_MANY_CONNECTIONS', 503, `${socket.remoteAddress}:${socket.remotePort}`);
      socket.on('error', () => {});
      socket.resume(); // read and drop, so the client's FIN is seen and the close is clean
      socket.write(errorResponse(503, 'too many connections'));
      socket.end();
      this.refused.add(socket);
      socket.once('close', () => this.refused.delete(socket));
      lingerThenDestroy(socket, this.limits.lingerMs);
      return;
    }
    this.stats.connections++;
    const conn = new Connection(this, socket);
    this.conns.add(conn);
    socket.once('close', () => this.conns.delete(conn));
  }
}

/** Bounded wait for the peer's FIN after ours, then destroy; cleared as soon as the socket closes. */
function lingerThenDestroy(socket: Socket, ms: number): void {
  const t = setTimeout(() => socket.destroy(), ms);
  socket.once('close', () => clearTimeout(t));
}

function errorResponse(status: number, reason: string): Buffer {
  const body = Buffer.from(reason + '\n');
  const head = encodeResponseHead(status, [
    ['content-type', 'text/plain; charset=utf-8'],
    ['content-length', String(body.length)],
    ['connection', 'close'],
  ]);
  return Buffer.concat([head, body]);
}

/** One TCP connection: parses requests, answers them one at a time in arrival order. */
class Connection {
  private readonly parser: RequestParser;
  private readonly queue: (HttpRequest | HttpError)[] = [];
  private current: HttpResponse | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerKind: 'header' | 'idle' | null = null;
  private dead = false;
  constructor(readonly owner: HttpServer, readonly socket: Socket) {
    this.parser = new RequestParser(owner.limits);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {}); // ECONNRESET and friends: 'close' follows and cleans up
    socket.on('end', () => {
      // The client sent FIN. With nothing in flight we close our side too. With a response in flight (a held
      // long poll, an event stream) a FIN means the client is gone, as Node's own http server treats it:
      // abort, so waiters and stream subscribers are removed now, not at the next write.
      if (!this.current && this.queue.length === 0) socket.end();
      else socket.destroy();
    });
    socket.once('close', () => this.onClose());
    // The first request must arrive whole within the header timeout, counted from accept.
    this.arm('header');
  }

  /** Only for rejections: not kept per connection. */
  private get remote(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  private arm(kind: 'header' | 'idle'): void {
    if (this.timerKind === kind) return;
    this.disarm();
    const ms = kind === 'header' ? this.owner.limits.headerTimeoutMs : this.owner.limits.idleTimeoutMs;
    this.timerKind = kind;
    this.timer = setTimeout(() => this.onTimeout(kind), ms);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerKind = null;
  }

  private onTimeout(kind: 'header' | 'idle'): void {
    this.timer = null;
    this.timerKind = null;
    if (kind === 'idle') {
      // RFC 9112 section 9.5: a server may close an idle persistent connection at any time.
      this.socket.end();
      return;
    }
    this.owner.reject('ERR_HTTP_HEADER_TIMEOUT', 408, this.remote);
    if (this.current) this.socket.destroy(); // cannot interleave a 408 into a response in flight
    else this.failClose(new HttpError('ERR_HTTP_HEADER_TIMEOUT', `request not received within ${this.owner.limits.headerTimeoutMs} ms`));
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return; // draining after an error response: read and drop, so closing does not reset
    let requests: HttpRequest[];
    try {
      requests = this.parser.push(chunk);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError('ERR_HTTP_MALFORMED', String(err));
      this.dead = true;
      this.owner.reject(e.code, e.status, this.remote);
      this.queue.push(e);
      this.pump();
      return;
    }
    this.queue.push(...requests);
    if (this.parser.error) {
      this.dead = true;
      this.owner.reject(this.parser.error.code, this.parser.error.status, this.remote);
      this.queue.push(this.parser.error);
      this.pump();
      return;
    }
    if (this.parser.inProgress) this.arm('header');
    else this.disarm(); // pump() arms the idle timer again once nothing is in flight
    if (this.queue.length > this.owner.limits.maxPipelined) this.socket.pause();
    this.pump();
  }

  /** Starts the next queued request when nothing is being answered: this keeps responses in request order. */
  private pump(): void {
    while (!this.current && this.queue.length > 0 && !this.socket.destroyed) {
      const next = this.queue.shift()!;
      if (this.socket.isPaused() && this.queue.length <= this.owner.limits.maxPipelined && !this.dead) this.socket.resume();
      if (next instanceof HttpError) {
        this.failClose(next);
        return;
      }
      this.owner.stats.requests++;
      const res = new HttpResponse(next, this.socket, this.owner.closing, () => this.finished(res));
      this.current = res;
      try {
        const ret = this.owner.handler(next, res);
        if (ret && typeof ret.then === 'function') ret.then(undefined, (err) => this.handlerFailed(res, err));
      } catch (err) {
        this.handlerFailed(res, err);
      }
    }
    if (!this.current && this.queue.length === 0 && !this.dead && !this.parser.inProgress && !this.socket.destroyed) {
      if (this.socket.readableEnded) this.socket.end();
      else this.arm('idle');
    }
  }

  private handlerFailed(res: HttpResponse, err: unknown): void {
    if (res.finished || res.aborted) return;
    if (!res.headSent) res.send(500, `internal error${errorCode(err) ? ' ' + errorCode(err) : ''}`);
    else this.socket.destroy();
  }

  private finished(res: HttpResponse): void {
    if (this.current !== res) return;
    this.current = null;
    if (res.closeAfter) {
      this.dead = true;
      this.socket.end();
      this.disarm();
      return;
    }
    this.pump();
  }

  /** Sends an error response with Connection: close, then half-closes and lingers (RFC 9112 section 9.6). */
  private failClose(err: HttpError): void {
    this.dead = true;
    this.disarm();
    this.queue.length = 0;
    if (this.socket.destroyed) return;
    // write() then end(), not end(data): the trace tap sees write() calls only.
    this.socket.write(errorResponse(err.status, `${STATUS_TEXT[err.status] ?? 'error'}: ${err.message}`));
    this.socket.end();
    lingerThenDestroy(this.socket, this.owner.limits.lingerMs);
  }

  /** Server shutdown: idle connections end now, a response in flight is cut. */
  shutdown(): void {
    if (this.current) this.socket.destroy();
    else {
      this.socket.end();
      lingerThenDestroy(this.socket, this.owner.limits.lingerMs);
    }
  }

  private onClose(): void {
    this.disarm();
    this.dead = true;
    this.queue.length = 0;
    const res = this.current;
    this.current = null;
    res?.abort();
  }
}

/**
 * One response. end() sends it with Content-Length; write() streams it with Transfer-Encoding: chunked
 * (HTTP/1.1) or close-delimited (HTTP/1.0). For HEAD the head is sent as for GET and the body is dropped
 * (RFC 9110 section 9.3.2).
 */
export class HttpResponse {
  status = 200;
  readonly headers: HeaderList = [];
  headSent = false;
  finished = false;
  /** The client went away before the response finished. */
  aborted = false;
  closeAfter: boolean;
  private chunked = false;
  private readonly closeListeners: (() => void)[] = [];

  constructor(readonly req: HttpRequest, readonly socket: Socket, forceClose: boolean, private readonly onFinish: () => void) {
    this.closeAfter = forceClose || !req.keepAlive;
  }

  get isHead(): boolean {
    return this.req.method === 'HEAD';
  }

  setHeader(name: string, value: string | number): this {
    if (this.headSent) throw new WirelabError('ERR_HTTP_RESPONSE_STATE', 'head already sent');
    const lower = name.toLowerCase();
    const i = this.headers.findIndex(([n]) => n === lower);
    if (i === -1) this.headers.push([lower, String(value)]);
    else this.headers[i] = [lower, String(value)];
    return this;
  }

  /** Called once if the connection closes before the response finished (the client disconnected). */
  onAbort(listener: () => void): void {
    if (this.aborted) queueMicrotask(listener);
    else this.closeListeners.push(listener);
  }

  abort(): void {
    if (this.finished || this.aborted) return;
    this.aborted = true;
    for (const l of this.closeListeners.splice(0)) l();
  }

  /** False when the body is to be dropped (a HEAD response already sent); throws after a real finish. */
  private check(): boolean {
    if (!this.finished) return true;
    if (this.isHead && this.headSent) return false;
    throw new WirelabError('ERR_HTTP_RESPONSE_STATE', 'response already finished');
  }

  private headBuffer(): Buffer {
    const h = this.headers.filter(([n]) => n !== 'connection');
    h.push(['connection', this.closeAfter ? 'close' : 'keep-alive']);
    if (!this.headers.some(([n]) => n === 'date')) h.unshift(['date', new Date().toUTCString()]);
    this.headSent = true;
    return encodeResponseHead(this.status, h);
  }

  /** The whole response at once, with Content-Length. */
  end(body: string | Uint8Array = ''): void {
    if (!this.check()) return;
    const buf = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (!this.headSent) {
      const noBody = this.status === 204 || this.status === 304 || this.status < 200;
      if (!noBody) this.setHeader('content-length', buf.length);
      const head = this.headBuffer();
      this.socket.cork();
      this.socket.write(head);
      if (buf.length > 0 && !this.isHead && !noBody) this.socket.write(buf);
      this.socket.uncork();
    } else {
      if (buf.length > 0) this.write(buf);
      if (this.chunked && !this.isHead) this.socket.write(LAST_CHUNK);
    }
    this.finish();
  }

  /** Convenience: a status, a JSON or text body, Content-Length. */
  send(status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.status = status;
    for (const [n, v] of Object.entries(headers)) this.setHeader(n, v);
    if (typeof body === 'string') {
      if (!this.headers.some(([n]) => n === 'content-type')) this.setHeader('content-type', 'text/plain; charset=utf-8');
      this.end(body.endsWith('\n') ? body : body + '\n');
    } else {
      this.setHeader('content-type', 'application/json');
      this.end(JSON.stringify(body) + '\n');
    }
  }

  /** Sends the head of a streaming response now (e.g. an event stream that has nothing to say yet). */
  startStream(): void {
    if (!this.check()) return;
    if (this.headSent) return;
    if (this.req.version === 'HTTP/1.1') {
      this.chunked = true;
      this.setHeader('transfer-encoding', 'chunked');
    } else {
      this.closeAfter = true; // HTTP/1.0 has no chunked coding: the body ends when the connection does
    }
    this.socket.write(this.headBuffer());
    if (this.isHead) this.finish();
  }

  /** One piece of a streaming body, framed as a chunk. Returns write()'s answer: false means wait for drained(). */
  write(data: string | Uint8Array): boolean {
    if (!this.check()) return false;
    if (!this.headSent) this.startStream();
    if (this.finished || this.aborted) return false; // HEAD, or the client left
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.byteLength === 0) return !this.socket.writableNeedDrain;
    if (!this.chunked) return this.socket.write(buf);
    const [size, payload, crlf] = encodeChunk(buf);
    this.socket.cork();
    this.socket.write(size!);
    this.socket.write(payload!);
    const ok = this.socket.write(crlf!);
    this.socket.uncork();
    return ok;
  }

  /**
   * Bytes already framed for this response (a whole chunk from encodeChunkBuffer): lets a fan-out frame an
   * event once and write the same buffer to every connection.
   */
  writeFramed(chunk: Buffer, unframed: Buffer): boolean {
    if (!this.check()) return false;
    if (!this.headSent) this.startStream();
    if (this.finished || this.aborted) return false;
    return this.socket.write(this.chunked ? chunk : unframed);
  }

  /** Bytes queued in the kernel-side buffer of this connection that the client has not taken yet. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  /** Resolves when the socket's buffer drains (or the client leaves). */
  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private finish(): void {
    this.finished = true;
    this.closeListeners.length = 0;
    this.onFinish();
  }
}

/** The value of a request header, for handlers. */
export function requestHeader(req: HttpRequest, name: string): string | undefined {
  return header(req.headers, name.toLowerCase());
}
