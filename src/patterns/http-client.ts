// A small HTTP/1.1 client on node:net for the labs: one persistent connection, requests answered in order,
// streamed bodies (chunked or close-delimited) for event streams, and exact byte counts both ways, which
// the comparison lab reports. Real clients (curl, fetch, browsers) are what the interop tests use.
import net from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { ResponseParser, encodeRequestHead, header, httpAnnotator, type HeaderList, type ResponseHead } from '../wire/http.ts';
import { WirelabError } from '../errors.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';

export interface ClientResponse {
  status: number;
  reason: string;
  headers: HeaderList;
  body: Buffer;
  header(name: string): string | undefined;
  json<T = unknown>(): T;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Streamed body: called with each piece as it arrives (the body is not kept). */
  onData?: (data: Buffer) => void;
  onHead?: (head: ResponseHead) => void;
}

interface Pending {
  method: string;
  head?: ResponseHead;
  parts: Buffer[];
  options: RequestOptions;
  resolve: (r: ClientResponse) => void;
  reject: (e: Error) => void;
}

export class HttpClientConnection {
  private readonly parser = new ResponseParser();
  private readonly pending: Pending[] = [];
  private closedError: Error | null = null;
  /** Requests sent on this connection. */
  requests = 0;

  private constructor(readonly socket: Socket, readonly hostHeader: string) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => {
      for (const e of this.parser.close()) this.deliver(e);
      this.fail(new WirelabError('ERR_CONNECTION_CLOSED', 'connection closed before the response ended'));
    });
  }

  static async connect(host: string, port: number, options: { recorder?: Recorder } = {}): Promise<HttpClientConnection> {
    const socket = net.connect({ host, port });
    tapSocket(socket, options.recorder, { side: 'client', annotate: httpAnnotator() });
    try {
      await once(socket, 'connect');
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return new HttpClientConnection(socket, host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  }

  get open(): boolean {
    return this.closedError === null && !this.socket.destroyed && !this.socket.writableEnded;
  }

  get bytesOut(): number {
    return this.socket.bytesWritten;
  }

  get bytesIn(): number {
    return this.socket.bytesRead;
  }

  request(method: string, target: string, options: RequestOptions = {}): Promise<ClientResponse> {
    if (this.closedError) return Promise.reject(this.closedError);
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? Buffer.from(options.body) : Buffer.from(options.body);
    const headers: HeaderList = [['host', this.hostHeader]];
    for (const [n, v] of Object.entries(options.headers ?? {})) headers.push([n.toLowerCase(), v]);
    if (body !== undefined) headers.push(['content-length', String(body.length)]);
    const head = encodeRequestHead(method, target, headers);
    return new Promise<ClientResponse>((resolve, reject) => {
      const p: Pending = { method, parts: [], options, resolve, reject };
      this.pending.push(p);
      this.parser.expect(method);
      this.requests++;
      this.socket.cork();
      this.socket.write(head);
      if (body && body.length > 0) this.socket.write(body);
      this.socket.uncork();
      if (options.signal) {
        const onAbort = () => this.fail(new WirelabError('ERR_ABORTED', 'request aborted'), true);
        if (options.signal.aborted) onAbort();
        else options.signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  close(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 500).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    try {
      for (const e of this.parser.push(chunk)) this.deliver(e);
    } catch (err) {
      this.fail(err as Error, true);
    }
  }

  private deliver(e: ReturnType<ResponseParser['push']>[number]): void {
    const p = this.pending[0];
    if (!p) {
      this.fail(new WirelabError('ERR_HTTP_BAD_RESPONSE', 'response with no request'), true);
      return;
    }
    if (e.type === 'head') {
      if (e.head.status < 200) return;
      p.head = e.head;
      p.options.onHead?.(e.head);
    } else if (e.type === 'data') {
      if (p.options.onData) p.options.onData(e.data);
      else p.parts.push(Buffer.from(e.data));
    } else if (e.type === 'end') {
      this.pending.shift();
      const h = p.head!;
      const body = Buffer.concat(p.parts);
      p.resolve({
        status: h.status, reason: h.reason, headers: h.headers, body,
        header: (name) => header(h.headers, name.toLowerCase()),
        json: <T,>() => JSON.parse(body.toString('utf8')) as T,
      });
      if (header(h.headers, 'connection')?.toLowerCase() === 'close') this.close();
    }
  }

  private fail(err: Error, destroy = false): void {
    if (!this.closedError) this.closedError = err;
    for (const p of this.pending.splice(0)) p.reject(err);
    if (destroy) this.socket.destroy();
  }
}

/** A client that reconnects when the server closed the previous connection (Connection: close, idle timeout). */
export class HttpClient {
  private conn: HttpClientConnection | null = null;
  /** Bytes of connections already closed, so totals survive reconnects. */
  private pastIn = 0;
  private pastOut = 0;
  connections = 0;
  requests = 0;

  constructor(readonly host: string, readonly port: number, readonly options: { recorder?: Recorder } = {}) {}

  get bytesIn(): number {
    return this.pastIn + (this.conn?.bytesIn ?? 0);
  }

  get bytesOut(): number {
    return this.pastOut + (this.conn?.bytesOut ?? 0);
  }

  async request(method: string, target: string, options: RequestOptions = {}): Promise<ClientResponse> {
    if (!this.conn || !this.conn.open) {
      if (this.conn) {
        this.pastIn += this.conn.bytesIn;
        this.pastOut += this.conn.bytesOut;
      }
      this.conn = await HttpClientConnection.connect(this.host, this.port, this.options);
      this.connections++;
    }
    this.requests++;
    return this.conn.request(method, target, options);
  }

  close(): void {
    this.conn?.close();
  }

  destroy(): void {
    this.conn?.destroy();
  }
}
