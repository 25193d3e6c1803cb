// Server-sent events over the hand-written HTTP core: one hub fans each event out to every open stream.
// An event is encoded and chunk-framed once, then the same buffer is written to every connection. A ring
// buffer of recent events serves Last-Event-ID replay (WHATWG HTML 9.2.4: the browser sends the header when
// it reconnects); heartbeat comments keep idle streams alive; a client whose unread bytes pass a named limit
// is dropped rather than buffered without bound; a closed connection is removed at once.
import type { Socket } from 'node:net';
import type { HttpRequest } from '../wire/http.ts';
import { header } from '../wire/http.ts';
import { encodeChunkBuffer } from '../wire/chunked.ts';
import { encodeEvent, encodeRetry } from '../wire/sse.ts';
import type { HttpResponse } from './http-server.ts';

export interface SseHubOptions {
  /** Events kept for Last-Event-ID replay. */
  ringSize?: number;
  /** A comment line on every stream this often (0: never). */
  heartbeatMs?: number;
  /** The `retry:` reconnection delay sent at the start of each stream. */
  retryMs?: number;
  /** Unsent bytes queued for one client before it is dropped as too slow. */
  maxBufferedBytes?: number;
}

export const DEFAULT_SSE_OPTIONS = { ringSize: 1_000, heartbeatMs: 15_000, retryMs: 2_000, maxBufferedBytes: 1024 * 1024 };

/** Response headers of an event stream. No compression: a compressor would hold events back in its buffer. */
export const SSE_HEADERS: [string, string][] = [
  ['content-type', 'text/event-stream; charset=utf-8'],
  ['cache-control', 'no-cache'],
  ['x-accel-buffering', 'no'],
];

interface Stored {
  id: number;
  raw: Buffer;
  framed: Buffer;
}

interface Client {
  res: HttpResponse;
  since: number;
}

export interface SseStats {
  published: number;
  /** Event writes to client streams (one per event per client, replays included). */
  delivered: number;
  replayed: number;
  resets: number;
  droppedSlow: number;
  heartbeats: number;
}

function frame(text: string): { raw: Buffer; framed: Buffer } {
  const raw = Buffer.from(text);
  return { raw, framed: encodeChunkBuffer(raw) };
}

export class SseHub {
  readonly options: Required<SseHubOptions>;
  readonly clients = new Set<Client>();
  readonly stats: SseStats = { published: 0, delivered: 0, replayed: 0, resets: 0, droppedSlow: 0, heartbeats: 0 };
  lastId = 0;
  private readonly ring: (Stored | undefined)[];
  private ringHead = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  private corked: Socket[] = [];
  private flushScheduled = false;
  private readonly heartbeatFrame = frame(': heartbeat\n\n');

  constructor(options: SseHubOptions = {}) {
    this.options = { ...DEFAULT_SSE_OPTIONS, ...options };
    this.ring = new Array(this.options.ringSize);
    if (this.options.heartbeatMs > 0) this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Oldest id still in the ring (lastId + 1 when the ring is empty). */
  get oldestId(): number {
    const n = Math.min(this.lastId, this.options.ringSize);
    return this.lastId - n + 1;
  }

  /** Publishes one event to every client; returns its id. `data` may span lines. */
  publish(event: string | undefined, data: string): number {
    const id = ++this.lastId;
    const stored: Stored = { id, ...frame(encodeEvent({ id: String(id), event, data })) };
    if (this.options.ringSize > 0) {
      this.ring[this.ringHead] = stored;
      this.ringHead = (this.ringHead + 1) % this.options.ringSize;
    }
    this.stats.published++;
    for (const c of this.clients) this.send(c, stored);
    return id;
  }

  /** Serves GET /events: the stream head, `retry:`, any replay, then live events until the client leaves. */
  attach(req: HttpRequest, res: HttpResponse, extraHeaders: [string, string][] = []): void {
    res.status = 200;
    for (const [n, v] of [...SSE_HEADERS, ...extraHeaders]) res.setHeader(n, v);
    res.startStream();
    if (res.finished) return; // HEAD
    const client: Client = { res, since: this.lastId };
    res.write(encodeRetry(this.options.retryMs));
    const last = header(req.headers, 'last-event-id');
    if (last !== undefined) this.replay(client, last);
    this.clients.add(client);
    res.onAbort(() => this.clients.delete(client));
  }

  private replay(client: Client, last: string): void {
    const n = /^\d{1,15}$/.test(last.trim()) ? Number(last.trim()) : NaN;
    if (Number.isFinite(n) && n >= this.oldestId - 1 && n <= this.lastId) {
      for (let id = n + 1; id <= this.lastId; id++) {
        const s = this.ring[(this.ringHead - (this.lastId - id) - 1 + this.options.ringSize * 2) % this.options.ringSize]!;
        this.stats.replayed++;
        this.send(client, s);
      }
      return;
    }
    // Too old (fell out of the ring), from another server run, or not ours: the client cannot be brought up to
    // date by replay. Say so with an event it can act on (reload state), carrying the current id so the next
    // reconnect resumes from here.
    this.stats.resets++;
    const text = encodeEvent({
      id: String(this.lastId),
      event: 'reset',
      data: JSON.stringify({ reason: 'last-event-id not in replay buffer', lastEventId: last, oldest: this.oldestId, latest: this.lastId }),
    });
    client.res.write(text);
  }

  private send(c: Client, s: { raw: Buffer; framed: Buffer }): void {
    if (c.res.aborted || c.res.finished) {
      this.clients.delete(c);
      return;
    }
    if (c.res.buffered > this.options.maxBufferedBytes) {
      // A reader this slow would make the server hold every event for it: drop it. It reconnects with
      // Last-Event-ID and is replayed what the ring still has.
      this.stats.droppedSlow++;
      this.clients.delete(c);
      c.res.socket.destroy();
      return;
    }
    this.stats.delivered++;
    this.cork(c.res.socket);
    c.res.writeFramed(s.framed, s.raw);
  }

  /**
   * Writes to a client are corked until the end of the current tick, then flushed with one uncork per
   * socket: events published in the same tick (a burst, or a late timer catching up) leave in one writev,
   * and the publish loop does not stop at a syscall per client. One nextTick per burst, not per client.
   */
  private cork(socket: Socket): void {
    if (socket.writableCorked) return;
    socket.cork();
    this.corked.push(socket);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const list = this.corked;
    this.corked = [];
    for (const s of list) s.uncork();
  };

  private beat(): void {
    this.stats.heartbeats++;
    for (const c of this.clients) {
      if (c.res.aborted || c.res.finished) this.clients.delete(c);
      else {
        this.cork(c.res.socket);
        c.res.writeFramed(this.heartbeatFrame.framed, this.heartbeatFrame.raw);
      }
    }
  }

  /** Ends every stream (the last chunk) and stops the heartbeat. */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const c of this.clients) if (!c.res.aborted && !c.res.finished) c.res.end();
    this.clients.clear();
  }
}
