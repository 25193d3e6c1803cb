// A stub-resolver-style client for the lab's server. UDP carries no connection, so the only thing
// tying a reply to its query is what the reply itself says: the id (random, RFC 5452 9.2), the source
// address and port it came from, and the question it echoes. A reply that fails any check is ignored
// and counted, never accepted. Failure handling is the shared src/client/retry.ts; a TC reply is asked
// again over TCP (RFC 1035 4.2.1, RFC 7766 5).
import { createSocket, type Socket as DgramSocket, type RemoteInfo } from 'node:dgram';
import { connect, isIP, isIPv6, type Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { WirelabError, errorCode } from '../errors.ts';
import { retry, type RetryEvent, type RetryOptions } from '../client/retry.ts';
import { tapDgram, tapSocket, type Recorder, type Endpoint } from '../trace/recorder.ts';
import {
  decode, decodeHeader, encode, emptyPacket, dnsAnnotator, tcpPrefix, canonicalName, fqdn, rcodeOf, rcodeName, typeName,
  DnsTcpDecoder, FLAG_QR, FLAG_RD, FLAG_TC, TYPE, CLASS_IN, HEADER_SIZE,
  type DnsPacket, type DnsQuestion,
} from '../wire/dns.ts';

/** The UDP payload size the client advertises when it sends an OPT record. */
export const CLIENT_UDP_PAYLOAD = 1232;
/** Ids are 16 bits; keep a margin so a random free id is found in a few draws. */
export const DEFAULT_MAX_PENDING = 4096;

export interface DnsClientOptions {
  /** An IP address, not a host name: replies are checked against it byte for byte. */
  server: Endpoint;
  recorder?: Recorder;
  /** SO_RCVBUF for the UDP socket, in bytes (the kernel doubles it; bounded by net.core.rmem_max). */
  recvBufferSize?: number;
  maxPending?: number;
  /** Replies ignored by the checks (not tied to one query, so reported here). */
  onEvent?: (event: ClientEvent) => void;
}

export type ClientEvent =
  | RetryEvent
  | { type: 'send'; attempt: number; id: number; transport: 'udp' | 'tcp'; name: string; qtype: string }
  | { type: 'truncated'; attempt: number; id: number }
  | { type: 'ignored'; reason: IgnoreReason; id: number; from: Endpoint };

export type IgnoreReason = 'unknownId' | 'wrongSource' | 'wrongQuestion' | 'malformed' | 'notResponse';

export interface QueryOptions extends Omit<RetryOptions, 'onEvent'> {
  /** Default A. */
  type?: number;
  /** Add an EDNS0 OPT record advertising this UDP payload size (RFC 6891). Default: none. */
  ednsUdpSize?: number;
  /** Ask over TCP from the start. */
  tcp?: boolean;
  /** On a TC reply, ask again over TCP (default true). */
  tcpFallback?: boolean;
  onEvent?: (event: ClientEvent) => void;
}

export interface QueryResult {
  name: string;
  type: number;
  /** The id of the attempt that got the answer. */
  id: number;
  attempts: number;
  transport: 'udp' | 'tcp';
  /** From the last send to its reply, ms. */
  rttMs: number;
  /** From the first send to the answer, backoff waits included, ms. */
  elapsedMs: number;
  response: DnsPacket;
}

export interface DnsClientStats {
  sent: number;
  received: number;
  matched: number;
  truncated: number;
  tcpQueries: number;
  ignored: Record<IgnoreReason, number>;
}

interface Pending {
  question: DnsQuestion;
  resolve(p: DnsPacket): void;
  reject(err: unknown): void;
}

function sameQuestion(a: DnsQuestion, b: DnsQuestion | undefined): boolean {
  return !!b && a.type === b.type && a.class === b.class && canonicalName(a.name) === canonicalName(b.name);
}

export class DnsClient {
  readonly stats: DnsClientStats = {
    sent: 0, received: 0, matched: 0, truncated: 0, tcpQueries: 0,
    ignored: { unknownId: 0, wrongSource: 0, wrongQuestion: 0, malformed: 0, notResponse: 0 },
  };
  private readonly pending = new Map<number, Pending>();
  private readonly tcpSockets = new Set<Socket>();
  private readonly socket: DgramSocket;
  private readonly ready: Promise<void>;
  private closed = false;

  constructor(private readonly o: DnsClientOptions) {
    if (isIP(o.server.address) === 0) throw new WirelabError('ERR_DNS_SERVER_ADDRESS', `server address '${o.server.address}' is not an IP address (resolve it first: replies are matched against it)`);
    const family = isIPv6(o.server.address) ? 'udp6' : 'udp4';
    this.socket = createSocket({ type: family, recvBufferSize: o.recvBufferSize });
    tapDgram(this.socket, o.recorder, { side: 'client', annotate: dnsAnnotator('udp') });
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket.on('error', () => {});
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      // Bound to loopback's family, ephemeral port: the kernel picks the source port (RFC 5452 9.2).
      this.socket.bind(0, family === 'udp6' ? '::1' : '127.0.0.1', () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  /** The socket's actual receive buffer (what the kernel granted). */
  recvBufferSize(): number {
    return this.socket.getRecvBufferSize();
  }

  async start(): Promise<this> {
    await this.ready;
    return this;
  }

  /** Closes the sockets; queries still in flight fail with ERR_NOT_CONNECTED (not retried). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const gone = new WirelabError('ERR_NOT_CONNECTED', 'the client was closed');
    for (const p of this.pending.values()) p.reject(gone);
    this.pending.clear();
    for (const s of this.tcpSockets) s.destroy();
    this.socket.close();
  }

  /** A random id not pending now: never sequential, never reused while in flight. */
  private freshId(): number {
    const max = this.o.maxPending ?? DEFAULT_MAX_PENDING;
    if (this.pending.size >= max) throw new WirelabError('ERR_TOO_MANY_PENDING', `${this.pending.size} queries in flight (at most ${max})`);
    for (;;) {
      const id = randomInt(0, 0x10000);
      if (!this.pending.has(id)) return id;
    }
  }

  private ignore(reason: IgnoreReason, id: number, from: Endpoint): void {
    this.stats.ignored[reason]++;
    this.o.onEvent?.({ type: 'ignored', reason, id, from });
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    this.stats.received++;
    const from = { address: rinfo.address, port: rinfo.port };
    if (msg.length < HEADER_SIZE) return this.ignore('malformed', msg.length >= 2 ? msg.readUInt16BE(0) : -1, from);
    const header = decodeHeader(msg);
    if (!(header.flags & FLAG_QR)) return this.ignore('notResponse', header.id, from);
    const p = this.pending.get(header.id);
    if (!p) return this.ignore('unknownId', header.id, from);
    // The spoofing lesson: a right id is not enough, it must come from where the query went...
    if (rinfo.address !== this.o.server.address || rinfo.port !== this.o.server.port) return this.ignore('wrongSource', header.id, from);
    let reply: DnsPacket;
    try {
      reply = decode(msg);
    } catch {
      return this.ignore('malformed', header.id, from);
    }
    // ...and answer the question that was asked (RFC 5452 9.1).
    if (reply.questions.length !== 1 || !sameQuestion(p.question, reply.questions[0])) return this.ignore('wrongQuestion', header.id, from);
    this.pending.delete(header.id);
    this.stats.matched++;
    p.resolve(reply);
  }

  private queryPacket(id: number, q: DnsQuestion, ednsUdpSize: number | undefined): Buffer {
    const p = emptyPacket(id, FLAG_RD);
    p.questions.push(q);
    if (ednsUdpSize !== undefined) p.edns = { udpPayloadSize: ednsUdpSize, extendedRcode: 0, version: 0, flags: 0, options: [] };
    return encode(p);
  }

  /** One UDP exchange: resolves with the matching reply, rejects with the signal's reason on abort. */
  private async udpExchange(q: DnsQuestion, signal: AbortSignal, attempt: number, ednsUdpSize: number | undefined, emit?: (e: ClientEvent) => void): Promise<{ reply: DnsPacket; id: number; rttMs: number }> {
    await this.ready;
    if (signal.aborted) throw signal.reason;
    if (this.closed) throw new WirelabError('ERR_NOT_CONNECTED', 'the client was closed');
    const id = this.freshId();
    const msg = this.queryPacket(id, q, ednsUdpSize);
    return new Promise((resolve, reject) => {
      const sentAt = performance.now();
      const onAbort = () => {
        this.pending.delete(id);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        question: q,
        resolve: (reply) => {
          signal.removeEventListener('abort', onAbort);
          resolve({ reply, id, rttMs: performance.now() - sentAt });
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      });
      emit?.({ type: 'send', attempt, id, transport: 'udp', name: q.name, qtype: typeName(q.type) });
      if (signal.aborted) return; // aborted by a listener of that very event: nothing goes out
      this.stats.sent++;
      this.socket.send(msg, this.o.server.port, this.o.server.address, (err) => {
        if (err && this.pending.delete(id)) {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        }
      });
    });
  }

  /** One TCP exchange on a fresh connection (RFC 7766): length-prefixed query, one reply, close. */
  private tcpExchange(q: DnsQuestion, signal: AbortSignal, attempt: number, emit?: (e: ClientEvent) => void): Promise<{ reply: DnsPacket; id: number; rttMs: number }> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const id = randomInt(0, 0x10000);
      const msg = this.queryPacket(id, q, undefined);
      const socket = connect({ host: this.o.server.address, port: this.o.server.port });
      this.tcpSockets.add(socket);
      tapSocket(socket, this.o.recorder, { side: 'client', annotate: dnsAnnotator('tcp') });
      this.stats.tcpQueries++;
      const decoder = new DnsTcpDecoder();
      let sentAt = 0;
      let done = false;
      const finish = (err: unknown, value?: { reply: DnsPacket; id: number; rttMs: number }) => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        this.tcpSockets.delete(socket);
        if (err) reject(err);
        else resolve(value!);
      };
      const onAbort = () => finish(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      socket.on('connect', () => {
        sentAt = performance.now();
        emit?.({ type: 'send', attempt, id, transport: 'tcp', name: q.name, qtype: typeName(q.type) });
        socket.cork();
        socket.write(tcpPrefix(msg.length));
        socket.write(msg);
        socket.uncork();
      });
      socket.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk)) {
          let reply: DnsPacket;
          try {
            reply = decode(m);
          } catch (err) {
            return finish(err);
          }
          if (reply.id !== id || !(reply.flags & FLAG_QR) || !sameQuestion(q, reply.questions[0])) continue;
          return finish(undefined, { reply, id, rttMs: performance.now() - sentAt });
        }
      });
      socket.on('error', (err) => finish(err));
      socket.on('close', () => finish(new WirelabError('ERR_CONNECTION_CLOSED', 'the server closed the TCP connection before replying')));
    });
  }

  /**
   * Resolves name/type with retries (src/client/retry.ts): each attempt is a fresh id; a TC reply is
   * fetched again over TCP within the same attempt. Rejects with ERR_RETRIES_EXHAUSTED, ERR_DEADLINE,
   * ERR_ABORTED (the caller's signal: no further datagram is sent after it) or a non-retryable error.
   */
  async query(name: string, options: QueryOptions = {}): Promise<QueryResult> {
    if (this.closed) throw new WirelabError('ERR_NOT_CONNECTED', 'the client is closed');
    const q: DnsQuestion = { name: canonicalName(name) === '' ? '' : name.replace(/\.$/, ''), type: options.type ?? TYPE.A, class: CLASS_IN };
    const emit = options.onEvent;
    const start = performance.now();
    let attempts = 0;
    const { onEvent: _e, type: _t, ednsUdpSize: _s, tcp: _tcp, tcpFallback: _f, ...retryOptions } = options;
    const r = await retry(async ({ attempt, signal }) => {
      attempts = attempt;
      if (options.tcp) return { ...(await this.tcpExchange(q, signal, attempt, emit)), transport: 'tcp' as const };
      const u = await this.udpExchange(q, signal, attempt, options.ednsUdpSize, emit);
      if (u.reply.flags & FLAG_TC && options.tcpFallback !== false) {
        this.stats.truncated++;
        emit?.({ type: 'truncated', attempt, id: u.id });
        return { ...(await this.tcpExchange(q, signal, attempt, emit)), transport: 'tcp' as const };
      }
      return { ...u, transport: 'udp' as const };
    }, {
      maxAttempts: 4, attemptTimeoutMs: 1000, strategy: 'full', baseMs: 100, capMs: 2000,
      isRetryable: (err) => {
        const code = errorCode(err);
        return code === 'ERR_TIMEOUT' || code === 'ERR_CONNECTION_CLOSED' || code === 'ECONNRESET' || code === 'ECONNREFUSED';
      },
      ...retryOptions,
      onEvent: emit,
    });
    return { name: q.name, type: q.type, id: r.id, attempts, transport: r.transport, rttMs: r.rttMs, elapsedMs: performance.now() - start, response: r.reply };
  }
}

// ---- dnspeep-style report lines ----

function answerText(p: DnsPacket): string {
  const rcode = rcodeOf(p.flags);
  if (rcode !== 0) return rcodeName(rcode);
  if (p.answers.length === 0) return 'NOERROR, no answers (NODATA)';
  return p.answers
    .map((a) => {
      let v: string;
      if (typeof a.data === 'string') v = a.type === TYPE.A || a.type === TYPE.AAAA ? a.data : fqdn(a.data);
      else if (Array.isArray(a.data)) {
        const t = a.data.map((s) => s.toString('utf8')).join('');
        v = JSON.stringify(t.length > 40 ? t.slice(0, 40) + '...' : t) + (a.data.length > 1 ? ` (${a.data.length} strings)` : '');
      } else v = `${a.data.length} bytes`;
      return `${typeName(a.type)}: ${v}`;
    })
    .join(', ');
}

export interface ReportLine {
  type: string;
  name: string;
  id?: number;
  attempts: number;
  rttMs?: number;
  transport?: string;
  answer: string;
}

export function reportLine(r: QueryResult): ReportLine {
  return { type: typeName(r.type), name: fqdn(r.name), id: r.id, attempts: r.attempts, rttMs: r.rttMs, transport: r.transport, answer: answerText(r.response) };
}

export function failedLine(name: string, type: number, attempts: number, err: unknown): ReportLine {
  return { type: typeName(type), name: fqdn(name.replace(/\.$/, '')), attempts, answer: `<no response> (${errorCode(err) ?? 'error'})` };
}

/** Like dnspeep's lines: type, name, id, attempts, rtt, transport, then the answer or `<no response>`. */
export function formatReportLine(l: ReportLine): string {
  const id = l.id === undefined ? '-' : `0x${l.id.toString(16).padStart(4, '0')}`;
  const rtt = l.rttMs === undefined ? '-' : `${l.rttMs.toFixed(2)}ms`;
  return `${l.type.padEnd(5)} ${l.name.padEnd(14)} id=${id.padEnd(6)} attempts=${l.attempts} rtt=${rtt.padEnd(8)} ${(l.transport ?? '-').padEnd(3)}  ${l.answer}`;
}

export const REPORT_HEADER = 'type  name           id       attempts rtt          via  answer';
