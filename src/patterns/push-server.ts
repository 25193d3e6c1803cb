// Push over the frame protocol: the server sends PUSH frames (id 0) without being asked. A client that
// reads slowly first fills its socket's buffers, then a bounded per-client queue (maxQueue); past that,
// the slow-consumer policy decides: `disconnect` it, or `drop-oldest` and count what was dropped.
// Either way the server's memory per client is bounded: socket buffer + maxQueue events.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { WirelabError, errorCode } from '../errors.ts';
import {
  CONNECTION_ID, DEFAULT_MAX_PAYLOAD, FrameDecoder, FrameType, MAX_PING_PAYLOAD,
  encodeHeader, errorPayload, frameAnnotator, wireErrorFor, type Frame,
} from '../wire/frame.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';

export type SlowConsumerPolicy = 'disconnect' | 'drop-oldest';
export const SLOW_CONSUMER_POLICIES: readonly SlowConsumerPolicy[] = ['disconnect', 'drop-oldest'];

export const PUSH_DEFAULTS = {
  /** --max-queue: events waiting for one client beyond what its socket buffers hold. */
  maxQueue: 256,
  policy: 'drop-oldest' as SlowConsumerPolicy,
  /** --max-connections */
  maxConnections: 1024,
  /** Bytes the socket's own write buffer holds before write() says stop (Node's writableHighWaterMark). */
  socketHighWaterMark: 64 * 1024,
  /** Largest frame a push client may send us (PING), so a garbage length cannot make us buffer. */
  maxClientPayload: MAX_PING_PAYLOAD,
} as const;

export interface PushClientStats {
  conn: number;
  remote: string;
  /** Events handed to the socket (they reach the client unless it disconnects). */
  written: number;
  dropped: number;
  queued: number;
  /** Most events ever waiting in this client's queue (never above maxQueue). */
  peakQueued: number;
  /** Most bytes ever held for this client: socket write buffer plus queue. */
  peakBufferedBytes: number;
  disconnected: boolean;
}

export type PushEvent =
  | { type: 'connection'; conn: number; remote: string }
  | { type: 'slow'; conn: number; queued: number }
  | { type: 'drop-oldest'; conn: number; dropped: number }
  | { type: 'disconnect-slow'; conn: number; queued: number }
  | { type: 'protocol-error'; conn: number; code: string }
  | { type: 'close'; conn: number };

export interface PushServerOptions {
  maxQueue?: number;
  policy?: SlowConsumerPolicy;
  maxConnections?: number;
  socketHighWaterMark?: number;
  maxPayload?: number;
  recorder?: Recorder;
  onEvent?: (e: PushEvent) => void;
}

interface Client {
  socket: Socket;
  queue: Buffer[];
  queuedBytes: number;
  decoder: FrameDecoder;
  stats: PushClientStats;
  blocked: boolean;
}

export class PushServer {
  readonly options: Required<Omit<PushServerOptions, 'recorder' | 'onEvent'>>;
  private readonly server: Server;
  private readonly clients = new Set<Client>();
  /** Stats of every client ever connected, for the lab's table. */
  readonly history: PushClientStats[] = [];
  private nextConn = 1;
  published = 0;

  constructor(private readonly init: PushServerOptions = {}) {
    this.options = {
      maxQueue: init.maxQueue ?? PUSH_DEFAULTS.maxQueue,
      policy: init.policy ?? PUSH_DEFAULTS.policy,
      maxConnections: init.maxConnections ?? PUSH_DEFAULTS.maxConnections,
      socketHighWaterMark: init.socketHighWaterMark ?? PUSH_DEFAULTS.socketHighWaterMark,
      maxPayload: init.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    };
    this.server = createServer({ noDelay: true, highWaterMark: this.options.socketHighWaterMark }, (s) => this.accept(s));
    this.server.maxConnections = this.options.maxConnections;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Sends one event to every connected client, as a PUSH frame with id 0. */
  publish(payload: Uint8Array | string): void {
    const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (body.length > this.options.maxPayload) throw new WirelabError('ERR_FRAME_TOO_LARGE', `event of ${body.length} bytes is over maxPayload`);
    this.published++;
    // One header for every client: the frame is the same bytes for all of them.
    const header = encodeHeader(FrameType.PUSH, CONNECTION_ID, body.length);
    for (const c of this.clients) this.enqueue(c, header, body);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const c of this.clients) c.socket.destroy();
    });
  }

  private accept(socket: Socket): void {
    const n = this.nextConn++;
    const stats: PushClientStats = {
      conn: n, remote: `${socket.remoteAddress}:${socket.remotePort}`, written: 0, dropped: 0, queued: 0,
      peakQueued: 0, peakBufferedBytes: 0, disconnected: false,
    };
    const c: Client = { socket, queue: [], queuedBytes: 0, decoder: new FrameDecoder({ maxPayload: PUSH_DEFAULTS.maxClientPayload }), stats, blocked: false };
    this.clients.add(c);
    this.history.push(stats);
    tapSocket(socket, this.init.recorder, { side: 'server', annotate: frameAnnotator() });
    this.init.onEvent?.({ type: 'connection', conn: n, remote: stats.remote });
    socket.on('drain', () => {
      c.blocked = false;
      this.flush(c);
    });
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.clients.delete(c);
      c.queue = [];
      c.queuedBytes = 0;
      stats.queued = 0;
      this.init.onEvent?.({ type: 'close', conn: n });
    });
  }

  /** Push clients may PING; anything that is not a frame ends the connection (no resync). */
  private onData(c: Client, chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = c.decoder.push(chunk);
    } catch (err) {
      const code = errorCode(err) ?? 'ERR_DECODER_FAILED';
      const wire = wireErrorFor(code);
      this.init.onEvent?.({ type: 'protocol-error', conn: c.stats.conn, code });
      const payload = errorPayload(wire, (err as Error).message);
      c.socket.write(encodeHeader(FrameType.ERROR, CONNECTION_ID, payload.length));
      c.socket.end(payload);
      // As in FrameServer: end() sends FIN after the ERROR; destroy if the peer never closes its side.
      setTimeout(() => c.socket.destroy(), 1000).unref();
      this.clients.delete(c);
      return;
    }
    for (const f of frames) {
      if (f.type === FrameType.PING) {
        const pong = encodeHeader(FrameType.PONG, f.id, f.payload.length);
        this.enqueue(c, pong, Buffer.from(f.payload));
      }
    }
  }

  private enqueue(c: Client, header: Buffer, body: Buffer): void {
    if (c.queue.length === 0 && !c.blocked) {
      this.write(c, header, body);
      return;
    }
    if (c.queue.length >= this.options.maxQueue * 2) {
      // The queue holds header and body as two entries per event.
      if (this.options.policy === 'disconnect') {
        c.stats.disconnected = true;
        this.init.onEvent?.({ type: 'disconnect-slow', conn: c.stats.conn, queued: c.queue.length / 2 });
        this.clients.delete(c);
        c.socket.destroy();
        return;
      }
      const oldHeader = c.queue.shift()!;
      const oldBody = c.queue.shift()!;
      c.queuedBytes -= oldHeader.length + oldBody.length;
      c.stats.dropped++;
      if (c.stats.dropped === 1 || c.stats.dropped % 100 === 0) this.init.onEvent?.({ type: 'drop-oldest', conn: c.stats.conn, dropped: c.stats.dropped });
    } else if (c.queue.length === 0) {
      this.init.onEvent?.({ type: 'slow', conn: c.stats.conn, queued: 1 });
    }
    c.queue.push(header, body);
    c.queuedBytes += header.length + body.length;
    this.track(c);
  }

  private write(c: Client, header: Buffer, body: Buffer): void {
    const s = c.socket;
    s.cork();
    s.write(header);
    const ok = body.length > 0 ? s.write(body) : !s.writableNeedDrain;
    s.uncork();
    c.stats.written++;
    if (!ok) c.blocked = true; // wait for 'drain'; later events go to the bounded queue
    this.track(c);
  }

  private flush(c: Client): void {
    while (c.queue.length > 0 && !c.blocked) {
      const header = c.queue.shift()!;
      const body = c.queue.shift()!;
      c.queuedBytes -= header.length + body.length;
      this.write(c, header, body);
    }
    this.track(c);
  }

  private track(c: Client): void {
    const s = c.stats;
    s.queued = c.queue.length / 2;
    if (s.queued > s.peakQueued) s.peakQueued = s.queued;
    const held = c.queuedBytes + c.socket.writableLength;
    if (held > s.peakBufferedBytes) s.peakBufferedBytes = held;
  }
}
