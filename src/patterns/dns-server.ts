// An authoritative server for the lab's small zone, on UDP and TCP at the same port (RFC 1035 4.2,
// RFC 7766). Over UDP it keeps no state per client: each datagram is answered from itself alone, which
// is the point of the lab (`state()` proves it). Bad input is counted by kind and never crashes it.
import { createSocket, type Socket as DgramSocket, type RemoteInfo } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import { randomInt } from 'node:crypto';
import { WirelabError, errorCode } from '../errors.ts';
import { tapDgram, tapSocket, type Recorder, type Endpoint } from '../trace/recorder.ts';
import {
  decode, decodeHeader, encode, encodingLength, emptyPacket, dnsAnnotator, tcpPrefix, canonicalName, opcodeOf, rcodeName, typeName,
  DnsTcpDecoder, FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD, FLAG_CD, EDNS_FLAG_DO, MAX_UDP_PLAIN, OPCODE, RCODE, TYPE, CLASS_IN,
  type DnsPacket, type DnsRecord, type DnsQuestion, type Edns,
} from '../wire/dns.ts';
import { defaultZone, inZone, type Zone } from '../wire/zone.ts';

/** The UDP payload size this server advertises in its OPT record (the DNS Flag Day 2020 value). */
export const SERVER_UDP_PAYLOAD = 1232;
export const DEFAULT_MAX_TCP_CONNECTIONS = 64;
/** RFC 7766 6.2.3 suggests idle timeouts of seconds; ours is 10 s. */
export const DEFAULT_TCP_IDLE_MS = 10_000;
/** A bound on replies waiting out --delay, so a flood cannot queue without limit. */
export const DEFAULT_MAX_DELAYED = 10_000;
/** Entries in the reply cache (keyed by query content, never by client). */
export const DEFAULT_REPLY_CACHE = 1024;

export interface DnsServerOptions {
  host?: string;
  /** 0 (default): an ephemeral port, the same for UDP and TCP. */
  port?: number;
  zone?: Zone;
  recorder?: Recorder;
  /** --loss: drop this fraction of UDP queries, 0..1. */
  loss?: number;
  /** --delay: answer UDP queries after a uniform random delay in [min, max] ms. */
  delayMs?: [number, number];
  /** --spoof: before each UDP reply, send a forged one with a wrong id and a wrong answer. */
  spoof?: boolean;
  /** Drop the first N UDP queries (for retry tests and the demo's recovery story). */
  dropFirst?: number;
  maxTcpConnections?: number;
  tcpIdleMs?: number;
  /** SO_RCVBUF of the UDP socket in bytes (Linux doubles it, capped by net.core.rmem_max). Default: the kernel's. */
  recvBufferSize?: number;
  maxDelayed?: number;
  /** Uniform [0, 1), for --loss and --delay; injectable so runs are repeatable. */
  random?: () => number;
  onEvent?: (event: ServerEvent) => void;
}

export type ServerEvent =
  | { type: 'query'; transport: 'udp' | 'tcp'; from: Endpoint; id: number; name: string; qtype: string }
  | { type: 'reply'; transport: 'udp' | 'tcp'; to: Endpoint; id: number; rcode: string; answers: number; bytes: number; truncated: boolean }
  | { type: 'drop'; transport: 'udp'; from: Endpoint; id?: number; reason: 'loss' | 'drop-first' | 'too-short' | 'response' | 'delay-queue-full' }
  | { type: 'malformed'; transport: 'udp' | 'tcp'; from: Endpoint; code: string }
  | { type: 'spoof'; to: Endpoint; id: number };

export interface DnsServerStats {
  received: number;
  replies: number;
  udp: number;
  tcp: number;
  truncated: number;
  spoofed: number;
  dropped: Record<string, number>;
  /** Malformed inputs by error code (each answered with FORMERR when it held an id). */
  malformed: Record<string, number>;
  rcodes: Record<string, number>;
  tcpRejected: number;
}

/** Everything the server holds between datagrams. Over UDP this is zero per client. */
export interface ServerState {
  /** Entries the server keeps per UDP client: none, there is no table to keep them in. */
  udpPerClientEntries: 0;
  /** Replies waiting out --delay (timers). */
  delayedReplies: number;
  tcpConnections: number;
  /** Bytes of partial TCP messages held in connection buffers. */
  tcpBufferedBytes: number;
  /** Prepared replies, keyed by the query's bytes after the id: by content, not by client; bounded. */
  replyCacheEntries: number;
}

/** A reply ready to send, with what the 'reply' event and the stats need. */
interface Built {
  reply: Buffer;
  query?: DnsPacket;
  id: number;
  to: Endpoint;
  transport: 'udp' | 'tcp';
  rcode: string;
  answers: number;
  truncated: boolean;
}

interface Cached extends Built {
  query: DnsPacket;
}

function bump(table: Record<string, number>, key: string): void {
  table[key] = (table[key] ?? 0) + 1;
}

/** The answer to one question from the zone, chasing CNAMEs inside it (RFC 1034 4.3.2). */
export function lookup(zone: Zone, q: DnsQuestion): { rcode: number; answers: DnsRecord[] } {
  if (q.class !== CLASS_IN || !inZone(zone, q.name)) return { rcode: RCODE.REFUSED, answers: [] };
  const answers: DnsRecord[] = [];
  let name = canonicalName(q.name);
  let owner = q.name;
  for (let hops = 0; hops < 8; hops++) {
    const records = zone.records.get(name);
    if (!records) return { rcode: hops === 0 ? RCODE.NXDOMAIN : RCODE.NOERROR, answers };
    const cname = records.find((r) => r.type === TYPE.CNAME);
    if (cname && q.type !== TYPE.CNAME) {
      answers.push({ ...cname, name: owner });
      owner = cname.data as string;
      name = canonicalName(owner);
      if (!inZone(zone, name)) break;
      continue;
    }
    for (const r of records) if (q.type === TYPE.ANY || r.type === q.type) answers.push({ ...r, name: owner });
    break;
  }
  return { rcode: RCODE.NOERROR, answers };
}

export class DnsServer {
  readonly stats: DnsServerStats = { received: 0, replies: 0, udp: 0, tcp: 0, truncated: 0, spoofed: 0, dropped: {}, malformed: {}, rcodes: {}, tcpRejected: 0 };
  private readonly zone: Zone;
  private readonly random: () => number;
  private readonly delayed = new Set<NodeJS.Timeout>();
  private readonly conns = new Map<Socket, DnsTcpDecoder>();
  private readonly cache = new Map<string, Cached>();
  private dropFirstLeft: number;
  private closed = false;

  private constructor(private readonly udp: DgramSocket, private readonly tcp: Server, private readonly o: DnsServerOptions) {
    this.zone = o.zone ?? defaultZone();
    this.random = o.random ?? Math.random;
    this.dropFirstLeft = o.dropFirst ?? 0;
  }

  /** Binds UDP, then TCP on the same port (retrying with a fresh ephemeral port if TCP's is taken). */
  static async start(o: DnsServerOptions = {}): Promise<DnsServer> {
    const host = o.host ?? '127.0.0.1';
    for (let tries = 0; ; tries++) {
      const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: o.recvBufferSize });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(o.port ?? 0, host, () => { udp.off('error', reject); resolve(); });
      });
      const port = udp.address().port;
      const tcp = createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, host, () => { tcp.off('error', reject); resolve(); });
        });
      } catch (err) {
        udp.close();
        if (errorCode(err) === 'EADDRINUSE' && !o.port && tries < 10) continue;
        throw err;
      }
      const server = new DnsServer(udp, tcp, o);
      server.attach();
      return server;
    }
  }

  get address(): Endpoint {
    const a = this.udp.address();
    return { address: a.address, port: a.port };
  }

  state(): ServerState {
    let buffered = 0;
    for (const d of this.conns.values()) buffered += d.bufferedBytes;
    return { udpPerClientEntries: 0, delayedReplies: this.delayed.size, tcpConnections: this.conns.size, tcpBufferedBytes: buffered, replyCacheEntries: this.cache.size };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
    for (const s of this.conns.keys()) s.destroy();
    await Promise.all([
      new Promise<void>((r) => this.udp.close(() => r())),
      new Promise<void>((r) => this.tcp.close(() => r())),
    ]);
  }

  private emit(e: ServerEvent): void {
    this.o.onEvent?.(e);
  }

  private attach(): void {
    const rec = this.o.recorder;
    tapDgram(this.udp, rec, { side: 'server', annotate: dnsAnnotator('udp') });
    // A send to a vanished client (ICMP unreachable) must not take the server down.
    this.udp.on('error', () => {});
    this.udp.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    this.tcp.on('connection', (socket) => this.onConnection(socket));
  }

  // ---- UDP ----

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    this.stats.received++;
    this.stats.udp++;
    const from: Endpoint = rinfo;
    // RFC 1035 4.1.1: without two bytes there is no id to answer to.
    if (msg.length < 2) return this.drop(from, 'too-short', undefined, 'ERR_DNS_TOO_SHORT');
    const id = msg.readUInt16BE(0);
    // A reply sent to a server is never answered: answering could start a reflection loop.
    if (msg.length >= 4 && msg.readUInt16BE(2) & FLAG_QR) return this.drop(from, 'response', id);
    if (this.dropFirstLeft > 0) {
      this.dropFirstLeft--;
      return this.drop(from, 'drop-first', id);
    }
    if (this.o.loss && this.random() < this.o.loss) return this.drop(from, 'loss', id);
    const built = this.answer(msg, 'udp', from);
    if (!built) return;
    const d = this.o.delayMs;
    if (!d || d[1] === 0) return this.sendUdp(built, rinfo);
    {
      if (this.delayed.size >= (this.o.maxDelayed ?? DEFAULT_MAX_DELAYED)) return this.drop(from, 'delay-queue-full', id);
      const t = setTimeout(() => {
        this.delayed.delete(t);
        this.sendUdp(built, rinfo);
      }, d[0] + (d[1] - d[0]) * this.random());
      this.delayed.add(t);
    }
  }

  private sendUdp(built: Built, to: RemoteInfo): void {
    if (this.closed) return;
    if (this.o.spoof && built.query?.questions.length === 1) this.sendSpoof(built.query, built.id, to);
    this.udp.send(built.reply, to.port, to.address);
    this.sent(built);
  }

  private drop(from: Endpoint, reason: 'loss' | 'drop-first' | 'too-short' | 'response' | 'delay-queue-full', id?: number, code?: string): void {
    bump(this.stats.dropped, reason);
    if (code) bump(this.stats.malformed, code);
    this.emit({ type: 'drop', transport: 'udp', from, id, reason });
  }

  /** The forged reply of --spoof: the right question, a wrong id, a wrong address. */
  private sendSpoof(q: DnsPacket, realId: number, to: Endpoint): void {
    const question = q.questions[0]!;
    const id = (realId + randomInt(1, 0x10000)) & 0xffff;
    const forged: DnsPacket = {
      ...emptyPacket(id, FLAG_QR | FLAG_AA | (q.flags & FLAG_RD)),
      questions: [question],
      answers: question.type === TYPE.A ? [{ name: question.name, type: TYPE.A, class: CLASS_IN, ttl: 86400, data: '6.6.6.6' }] : [],
    };
    this.stats.spoofed++;
    this.emit({ type: 'spoof', to, id });
    this.udp.send(encode(forged), to.port, to.address);
  }

  // ---- TCP ----

  private onConnection(socket: Socket): void {
    if (this.closed || this.conns.size >= (this.o.maxTcpConnections ?? DEFAULT_MAX_TCP_CONNECTIONS)) {
      this.stats.tcpRejected++;
      socket.destroy();
      return;
    }
    const decoder = new DnsTcpDecoder();
    this.conns.set(socket, decoder);
    tapSocket(socket, this.o.recorder, { side: 'server', annotate: dnsAnnotator('tcp') });
    const from = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    socket.setTimeout(this.o.tcpIdleMs ?? DEFAULT_TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => this.conns.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      for (const msg of decoder.push(chunk)) {
        this.stats.received++;
        this.stats.tcp++;
        if (msg.length < 2) {
          // Nothing to answer to: a framing error, so the connection is closed, never resynced.
          bump(this.stats.malformed, 'ERR_DNS_TOO_SHORT');
          this.emit({ type: 'malformed', transport: 'tcp', from, code: 'ERR_DNS_TOO_SHORT' });
          socket.destroy();
          return;
        }
        const built = this.answer(msg, 'tcp', from);
        if (!built) continue;
        socket.cork();
        socket.write(tcpPrefix(built.reply.length));
        const ok = socket.write(built.reply);
        socket.uncork();
        this.sent(built);
        if (!ok) {
          socket.pause();
          socket.once('drain', () => socket.resume());
        }
      }
    });
  }

  // ---- answering ----

  /**
   * Builds the reply to one query message, or undefined when there is nothing to send. Never throws.
   * Well-formed queries hit a cache keyed by their bytes after the id (flags, question, OPT) and the
   * transport: the zone never changes, so the reply is the same bytes but for the id. The cache is
   * keyed by content, never by client, and bounded (DEFAULT_REPLY_CACHE entries, then cleared).
   */
  private answer(msg: Buffer, transport: 'udp' | 'tcp', from: Endpoint): Built | undefined {
    if (transport === 'tcp' && msg.length >= 4 && msg.readUInt16BE(2) & FLAG_QR) {
      bump(this.stats.dropped, 'response');
      return undefined;
    }
    const key = transport + msg.toString('latin1', 2);
    const hit = this.cache.get(key);
    if (hit) {
      const reply = Buffer.allocUnsafe(hit.reply.length);
      hit.reply.copy(reply);
      reply[0] = msg[0]!;
      reply[1] = msg[1]!;
      if (hit.truncated) this.stats.truncated++;
      const id = msg.readUInt16BE(0);
      if (this.o.onEvent) this.emit({ type: 'query', transport, from, id, name: hit.query.questions[0]!.name, qtype: typeName(hit.query.questions[0]!.type) });
      return { reply, query: hit.query, id, to: from, transport, rcode: hit.rcode, answers: hit.answers, truncated: hit.truncated };
    }
    let query: DnsPacket;
    try {
      query = decode(msg, { forbidPointers: true });
      if (opcodeOf(query.flags) !== OPCODE.QUERY) return this.finish(this.errorReply(msg, RCODE.NOTIMP, query), transport, from, query.edns, query);
      if (query.questions.length !== 1) throw new WirelabError('ERR_DNS_BAD_QDCOUNT', `QDCOUNT is ${query.questions.length}, this server answers exactly one question`);
    } catch (err) {
      const code = errorCode(err) ?? 'ERR_UNKNOWN';
      bump(this.stats.malformed, code);
      this.emit({ type: 'malformed', transport, from, code });
      // RFC 1035 4.1.1 FORMERR; a header cut short still has its id, so it is answered.
      return this.finish(this.errorReply(msg, RCODE.FORMERR), transport, from, undefined);
    }
    const q = query.questions[0]!;
    this.emit({ type: 'query', transport, from, id: query.id, name: q.name, qtype: typeName(q.type) });
    const reply = emptyPacket(query.id, FLAG_QR | FLAG_AA | (query.flags & (FLAG_RD | FLAG_CD)));
    reply.questions.push(q);
    if (query.edns && query.edns.version > 0) {
      // RFC 6891 6.1.3: an unsupported EDNS version is BADVERS (16: extended rcode 1, header rcode 0).
      reply.edns = { udpPayloadSize: SERVER_UDP_PAYLOAD, extendedRcode: 1, version: 0, flags: query.edns.flags & EDNS_FLAG_DO, options: [] };
    } else {
      const { rcode, answers } = lookup(this.zone, q);
      reply.flags |= rcode;
      reply.answers = answers;
      if (query.edns) reply.edns = { udpPayloadSize: SERVER_UDP_PAYLOAD, extendedRcode: 0, version: 0, flags: query.edns.flags & EDNS_FLAG_DO, options: [] };
    }
    const built = this.finish(reply, transport, from, query.edns, query);
    if (this.cache.size >= DEFAULT_REPLY_CACHE) this.cache.clear();
    this.cache.set(key, { ...built, query });
    return built;
  }

  private sent(b: Built): void {
    this.stats.replies++;
    bump(this.stats.rcodes, b.rcode);
    if (this.o.onEvent) this.emit({ type: 'reply', transport: b.transport, to: b.to, id: b.id, rcode: b.rcode, answers: b.answers, bytes: b.reply.length, truncated: b.truncated });
  }

  private errorReply(msg: Buffer, rcode: number, query?: DnsPacket): DnsPacket {
    let flags = 0;
    try {
      flags = decodeHeader(msg).flags;
    } catch {
      /* a header cut short: only the id is known */
    }
    const reply = emptyPacket(msg.readUInt16BE(0), FLAG_QR | (flags & 0x7800) | (flags & FLAG_RD) | rcode);
    if (query && query.questions.length === 1) reply.questions.push(query.questions[0]!);
    if (query?.edns) reply.edns = { udpPayloadSize: SERVER_UDP_PAYLOAD, extendedRcode: 0, version: 0, flags: 0, options: [] };
    return reply;
  }

  /** Encodes, truncating over UDP past 512 bytes or the query's advertised EDNS0 size (RFC 6891 6.2.5). */
  private finish(reply: DnsPacket, transport: 'udp' | 'tcp', to: Endpoint, queryEdns: Edns | undefined, query?: DnsPacket): Built {
    let truncated = false;
    if (transport === 'udp') {
      const limit = queryEdns ? Math.max(MAX_UDP_PLAIN, queryEdns.udpPayloadSize) : MAX_UDP_PLAIN;
      if (encodingLength(reply) > limit) {
        // RFC 2181 9: TC set, and the partial answer set dropped so no cache mistakes it for the whole.
        reply.flags |= FLAG_TC;
        reply.answers = [];
        reply.authorities = [];
        reply.additionals = [];
        truncated = true;
        this.stats.truncated++;
      }
    }
    let out: Buffer;
    try {
      out = encode(reply);
    } catch {
      // Only a zone too big for one message gets here: SERVFAIL, no answers.
      reply.flags = (reply.flags & ~0xf) | RCODE.SERVFAIL;
      reply.answers = [];
      out = encode(reply);
    }
    return { reply: out, query, id: reply.id, to, transport, rcode: rcodeName(reply.flags & 0xf), answers: reply.answers.length, truncated };
  }
}
