// One record of what crossed a socket, shared by --trace (printed live), --pcap (written after the run)
// and --diagram (drawn after the run), so the three views always agree.
import type { Socket } from 'node:net';
import type { Socket as DgramSocket, RemoteInfo } from 'node:dgram';

export interface Endpoint {
  address: string;
  port: number;
}

export type WireEventKind = 'open' | 'send' | 'recv' | 'close';

export interface WireEvent {
  /** Milliseconds since the recorder was created (monotonic clock). */
  t: number;
  /** Wall-clock time in microseconds since the epoch, for pcap timestamps and --trace-time. */
  wallUs: number;
  kind: WireEventKind;
  transport: 'tcp' | 'udp';
  /** Which program this socket belongs to, from the lab's point of view. */
  side: 'client' | 'server';
  /** A small number naming the connection (TCP) or socket (UDP) within this recorder. */
  conn: number;
  local: Endpoint;
  remote: Endpoint;
  data?: Buffer;
  /** Annotations of the protocol units that completed in this chunk, e.g. `version=1 type=REQUEST id=7`. */
  notes?: string[];
  /**
   * One short label per protocol unit that completed in this chunk, for --diagram, when the notes are
   * several lines per unit (a DNS message annotated field by field). Absent: each note is one unit.
   */
  units?: string[];
  /**
   * Events recorded in the same synchronous run of JavaScript share this number: a header and a payload
   * written one after the other (under cork()) share it, a frame written a byte per timer tick does not.
   */
  batch?: number;
  /**
   * On a send made while the socket was corked (or still connecting): writes of one socket with the same
   * number left together, in one writev, when the cork was released. Undefined: the write went at once.
   */
  corkGroup?: number;
  /**
   * On a TCP close: which end closed the connection first, as this socket saw it (`local`: it ended or
   * destroyed itself first; `peer`: the peer's FIN or reset came first). The 'close' events themselves
   * come in whatever order the two sockets' handles finish closing, which says nothing about that.
   */
  closedBy?: 'local' | 'peer';
}

/** An annotator's answer when its notes are not one line per unit: the lines, and one label per unit. */
export interface Annotation {
  notes: string[];
  units: string[];
}

/**
 * Turns the bytes of one direction of one connection into annotation lines, statefully across chunks:
 * one line per completed unit, or an Annotation when a unit takes several lines.
 */
export type Annotator = (chunk: Buffer) => string[] | Annotation;
export type AnnotatorFactory = () => Annotator;

/** The notes (and units, when given) of one chunk, as stored on a WireEvent. */
function annotation(annotator: Annotator | undefined, data: Buffer): Pick<WireEvent, 'notes' | 'units'> {
  if (!annotator) return {};
  const a = annotator(data);
  return Array.isArray(a) ? { notes: a } : { notes: a.notes, units: a.units };
}

type Listener = (event: WireEvent) => void;

export class Recorder {
  readonly events: WireEvent[] = [];
  private readonly listeners: Listener[] = [];
  private readonly start = performance.now();
  private readonly startWallUs = Date.now() * 1000;
  private nextConn = 1;
  private batch = 0;
  private batchOpen = false;

  /** keep: store events for --pcap/--diagram. Without it the recorder only fans out to listeners. */
  constructor(readonly keep = false) {}

  get active(): boolean {
    return this.keep || this.listeners.length > 0;
  }

  onEvent(listener: Listener): void {
    this.listeners.push(listener);
  }

  newConn(): number {
    return this.nextConn++;
  }

  record(event: Omit<WireEvent, 't' | 'wallUs' | 'batch'>): void {
    const t = performance.now() - this.start;
    if (!this.batchOpen) {
      // A new synchronous run: it ends when the current operation returns to the event loop.
      this.batchOpen = true;
      this.batch++;
      process.nextTick(() => (this.batchOpen = false));
    }
    const full: WireEvent = { ...event, t, wallUs: Math.round(this.startWallUs + t * 1000), batch: this.batch };
    if (this.keep) this.events.push(full);
    for (const l of this.listeners) l(full);
  }
}

function endpoint(address: string | undefined, port: number | undefined): Endpoint {
  return { address: address ?? '0.0.0.0', port: port ?? 0 };
}

export interface TapOptions {
  side: 'client' | 'server';
  annotate?: AnnotatorFactory;
}

/**
 * Records every chunk a TCP socket sends (each write call) and receives (each 'data' event).
 * Call it before the socket's own 'data' consumer is attached or after: it prepends its listener,
 * so a received chunk is recorded before it is parsed.
 */
export function tapSocket(socket: Socket, recorder: Recorder | undefined, options: TapOptions): void {
  if (!recorder || !recorder.active) return;
  const conn = recorder.newConn();
  const sendNotes = options.annotate?.();
  const recvNotes = options.annotate?.();
  let local = endpoint(socket.localAddress, socket.localPort);
  let remote = endpoint(socket.remoteAddress, socket.remotePort);
  const base = () => ({ transport: 'tcp' as const, side: options.side, conn, local, remote });
  let opened = false;
  const open = () => {
    if (opened) return;
    opened = true;
    local = endpoint(socket.localAddress, socket.localPort);
    remote = endpoint(socket.remoteAddress, socket.remotePort);
    recorder.record({ ...base(), kind: 'open' });
  };
  if (socket.remotePort !== undefined && !socket.connecting) open();
  else socket.once('connect', open);

  // Writes made while still connecting (node:http does this) leave once connected: record them then,
  // when the endpoints are known, instead of freezing a remote port of 0.
  let early: Buffer[] | undefined;
  // Counts cork releases, so writes made under one cork() can be told from those under the next.
  let corkGroup = 0;
  const recordSend = (data: Buffer, corked: boolean) =>
    recorder.record({ ...base(), kind: 'send', data, ...annotation(sendNotes, data), ...(corked ? { corkGroup } : {}) });
  const uncork = socket.uncork;
  socket.uncork = function tappedUncork(this: Socket): void {
    uncork.call(this);
    if (this.writableCorked === 0) corkGroup++;
  };
  const tapChunk = (chunk: unknown) => {
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) {
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (!opened && socket.connecting) {
        if (!early) {
          early = [];
          socket.once('connect', () => {
            // Node sends what was queued before 'connect' in one go.
            for (const d of early!.splice(0)) recordSend(d, true);
            corkGroup++;
          });
        }
        early.push(data);
      } else {
        open();
        recordSend(data, socket.writableCorked > 0);
      }
    }
  };
  const write = socket.write;
  socket.write = function tappedWrite(this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
    tapChunk(chunk);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Socket['write'];
  // Who closed first: our own end()/destroy(), or the peer's FIN ('end', emitted before Node answers it
  // with its own end()) or reset (Node destroys the socket with the read or write error).
  let closedBy: 'local' | 'peer' | undefined;
  // end(data) writes its last chunk through Writable's internals, not through socket.write.
  const end = socket.end;
  socket.end = function tappedEnd(this: Socket, chunk?: unknown, ...rest: unknown[]): Socket {
    if (!socket.writableEnded) tapChunk(chunk);
    closedBy ??= 'local';
    return (end as (...args: unknown[]) => Socket).call(this, chunk, ...rest);
  } as Socket['end'];
  socket.prependListener('end', () => (closedBy ??= 'peer'));
  const destroy = socket.destroy;
  socket.destroy = function tappedDestroy(this: Socket, err?: Error): Socket {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    closedBy ??= code === 'ECONNRESET' || code === 'EPIPE' ? 'peer' : 'local';
    return destroy.call(this, err);
  } as Socket['destroy'];

  socket.prependListener('data', (data: Buffer | string) => {
    open();
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    recorder.record({ ...base(), kind: 'recv', data: bytes, ...annotation(recvNotes, bytes) });
  });
  socket.once('close', () => {
    if (opened) recorder.record({ ...base(), kind: 'close', closedBy: closedBy ?? 'local' });
  });
}

/**
 * Records every datagram a UDP socket sends and receives. Datagrams arrive whole, so the annotator
 * is called once per datagram with fresh state.
 */
export function tapDgram(socket: DgramSocket, recorder: Recorder | undefined, options: TapOptions): void {
  if (!recorder || !recorder.active) return;
  const conn = recorder.newConn();
  /** The bound local endpoint, or undefined while the socket is not bound yet. */
  const bound = (): Endpoint | undefined => {
    try {
      const a = socket.address();
      return a.port === 0 ? undefined : endpoint(a.address, a.port);
    } catch {
      return undefined;
    }
  };
  const send = socket.send;
  socket.send = function tappedSend(this: DgramSocket, msg: unknown, ...rest: unknown[]): void {
    // On a socket not bound yet, Node binds it, queues the datagram and calls this.send() again once
    // bound (lib/dgram.js): record it then, once, with the real local port.
    const local = bound();
    if (local) record(local, msg, rest);
    return (send as (...args: unknown[]) => void).call(this, msg, ...rest);
  } as DgramSocket['send'];
  const record = (local: Endpoint, msg: unknown, rest: unknown[]) => {
    // send(msg, port, address, cb) or send(msg, offset, length, port, address, cb): find port and address.
    const nums = rest.filter((x) => typeof x === 'number') as number[];
    const strs = rest.filter((x) => typeof x === 'string') as string[];
    const port = nums.length >= 3 ? nums[2] : nums[0];
    let data: Buffer;
    if (Array.isArray(msg)) data = Buffer.concat(msg as Uint8Array[]);
    else if (typeof msg === 'string') data = Buffer.from(msg);
    else data = Buffer.from((msg as Uint8Array).buffer, (msg as Uint8Array).byteOffset, (msg as Uint8Array).byteLength);
    if (nums.length >= 3) data = data.subarray(nums[0], nums[0]! + nums[1]!);
    let remote = endpoint(strs[0] ?? '127.0.0.1', port);
    if (port === undefined) {
      try {
        const r = socket.remoteAddress();
        remote = endpoint(r.address, r.port);
      } catch {
        /* unconnected and no port: Node will throw */
      }
    }
    recorder.record({ transport: 'udp', side: options.side, conn, local, remote, kind: 'send', data, ...annotation(options.annotate?.(), data) });
  };
  socket.prependListener('message', (data: Buffer, rinfo: RemoteInfo) => {
    recorder.record({
      transport: 'udp', side: options.side, conn, local: bound() ?? endpoint(undefined, undefined), remote: endpoint(rinfo.address, rinfo.port),
      kind: 'recv', data, ...annotation(options.annotate?.(), data),
    });
  });
}
