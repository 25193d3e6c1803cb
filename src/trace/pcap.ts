// --pcap: the lab writes a capture of its own traffic, no root and no tcpdump needed. A pure encoder from
// recorded WireEvents to the classic libpcap format (https://www.tcpdump.org/manpages/pcap-savefile.5.html),
// LINKTYPE_ETHERNET, with synthetic Ethernet / IPv4 or IPv6 / TCP or UDP headers and correct checksums.
//
// What is synthetic, and why it still reads as the real thing in Wireshark:
// - each TCP connection gets a three-way handshake at its 'open' event and a FIN exchange at its close;
//   sequence and acknowledgement numbers follow the bytes (RFC 9293 section 3.4), every segment ACKs all
//   the peer has sent, and a pure ACK is added when a direction has much unacknowledged data;
// - one TCP segment per write() call of the sender (split at the loopback MSS), except that the writes
//   made under one cork() (or queued while connecting) are one segment, as Node sends them in one writev;
//   or one per 'data' chunk of the receiver when only the receiving side is tapped. The bytes and their
//   order are exact; the segment boundaries are the program's, and the kernel may still merge or split
//   (Linux's TCP autocorking, a full send buffer);
// - when both ends of a connection are tapped (a demo runs client and server in one process) each byte is
//   recorded twice; the sender's record is used;
// - MAC addresses are all zero, as Linux's loopback interface shows them in `tcpdump -i lo`.
import { isIP } from 'node:net';
import { WirelabError } from '../errors.ts';
import type { Endpoint, WireEvent } from './recorder.ts';

export const LINKTYPE_ETHERNET = 1;
/** Microsecond-resolution classic pcap (the nanosecond variant is 0xa1b23c4d). */
export const PCAP_MAGIC = 0xa1b2c3d4;
export const PCAP_SNAPLEN = 262144;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** Linux loopback MSS (MTU 65536 minus headers), the largest TCP payload we put in one segment. */
const MSS_V4 = 65483;
const MSS_V6 = 65463;
/** Window scale shift announced in SYN / SYN-ACK (RFC 7323 section 2.2): a 64 MiB window. */
const WSCALE = 10;
const WINDOW = 65535;
/** Above this many unacknowledged bytes in one direction, the receiver sends a pure ACK. */
const ACK_EVERY = 1 << 20;

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;

/** The 24-byte global header, little-endian (as tcpdump writes it on x86; readers handle either order). */
export function pcapGlobalHeader(snaplen = PCAP_SNAPLEN): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(PCAP_MAGIC, 0);
  b.writeUInt16LE(2, 4); // version major
  b.writeUInt16LE(4, 6); // version minor
  b.writeInt32LE(0, 8); // thiszone: timestamps are UTC
  b.writeUInt32LE(0, 12); // sigfigs
  b.writeUInt32LE(snaplen, 16);
  b.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return b;
}

/** A 16-byte record header then the packet, whole (incl_len = orig_len). */
export function pcapRecord(wallUs: number, packet: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(Math.floor(wallUs / 1e6), 0);
  h.writeUInt32LE(Math.floor(wallUs % 1e6), 4);
  h.writeUInt32LE(packet.length, 8);
  h.writeUInt32LE(packet.length, 12);
  return Buffer.concat([h, packet]);
}

/** The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit words. */
export function internetChecksum(parts: readonly Buffer[]): number {
  let sum = 0;
  let odd: number | undefined;
  for (const p of parts) {
    let i = 0;
    if (odd !== undefined && p.length > 0) {
      sum += (odd << 8) | p[0]!;
      odd = undefined;
      i = 1;
    }
    for (; i + 1 < p.length; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    if (i < p.length) odd = p[i]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (odd !== undefined) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

interface Addr {
  family: 4 | 6;
  bytes: Buffer;
  text: string;
}

const UNSPECIFIED = new Set(['0.0.0.0', '::', '']);

/** An address as bytes; IPv4-mapped IPv6 (::ffff:a.b.c.d, Node's dual-stack form) becomes plain IPv4. */
export function parseAddress(text: string): Addr {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  const t = mapped ? mapped[1]! : text;
  const kind = isIP(t);
  if (kind === 4) return { family: 4, bytes: Buffer.from(t.split('.').map(Number)), text: t };
  if (kind === 6) {
    const [head, tail] = t.split('::') as [string, string | undefined];
    const words = (s: string | undefined) => (s ? s.split(':').filter((w) => w !== '') : []);
    let groups = words(head);
    if (tail !== undefined) {
      const back = words(tail);
      groups = [...groups, ...Array(8 - groups.length - back.length).fill('0'), ...back];
    }
    const bytes = Buffer.alloc(16);
    groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
    return { family: 6, bytes, text: t };
  }
  throw new WirelabError('ERR_PCAP_ADDRESS', `'${text}' is not an IP address`);
}

/** A socket bound to the wildcard address sends from loopback here: take the peer's family's loopback. */
function concrete(local: Endpoint, remote: Endpoint): Endpoint {
  if (!UNSPECIFIED.has(local.address)) return local;
  const r = parseAddress(UNSPECIFIED.has(remote.address) ? '127.0.0.1' : remote.address);
  return { address: r.family === 4 ? '127.0.0.1' : '::1', port: local.port };
}

function ethernet(family: 4 | 6): Buffer {
  const b = Buffer.alloc(14); // destination and source MAC 00:00:00:00:00:00, as on lo
  b.writeUInt16BE(family === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6, 12);
  return b;
}

function ipHeader(src: Addr, dst: Addr, protocol: number, payloadLength: number, ipId: number): { header: Buffer; pseudo: Buffer } {
  if (src.family !== dst.family) throw new WirelabError('ERR_PCAP_ADDRESS', `cannot mix ${src.text} and ${dst.text} in one packet`);
  if (src.family === 4) {
    const h = Buffer.alloc(20);
    h[0] = 0x45; // version 4, IHL 5 words
    h.writeUInt16BE(20 + payloadLength, 2);
    h.writeUInt16BE(ipId & 0xffff, 4);
    h.writeUInt16BE(0x4000, 6); // don't fragment
    h[8] = 64; // TTL
    h[9] = protocol;
    src.bytes.copy(h, 12);
    dst.bytes.copy(h, 16);
    h.writeUInt16BE(internetChecksum([h]), 10);
    // RFC 9293 section 3.1 / RFC 768: source, destination, zero, protocol, length.
    const pseudo = Buffer.alloc(12);
    src.bytes.copy(pseudo, 0);
    dst.bytes.copy(pseudo, 4);
    pseudo[9] = protocol;
    pseudo.writeUInt16BE(payloadLength, 10);
    return { header: h, pseudo };
  }
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0); // version 6, traffic class 0, flow label 0
  h.writeUInt16BE(payloadLength, 4);
  h[6] = protocol;
  h[7] = 64; // hop limit
  src.bytes.copy(h, 8);
  dst.bytes.copy(h, 24);
  // RFC 8200 section 8.1: the upper-layer pseudo-header.
  const pseudo = Buffer.alloc(40);
  src.bytes.copy(pseudo, 0);
  dst.bytes.copy(pseudo, 16);
  pseudo.writeUInt32BE(payloadLength, 32);
  pseudo[39] = protocol;
  return { header: h, pseudo };
}

function tcpPacket(src: Addr, sport: number, dst: Addr, dport: number, seq: number, ack: number, flags: number, data: Buffer, ipId: number): Buffer {
  const syn = (flags & TCP_SYN) !== 0;
  // SYN options: MSS (kind 2), NOP, window scale (kind 3): RFC 9293 section 3.2, RFC 7323 section 2.
  const options = syn ? Buffer.from([2, 4, 0, 0, 1, 3, 3, WSCALE]) : Buffer.alloc(0);
  if (syn) options.writeUInt16BE(src.family === 4 ? MSS_V4 : MSS_V6, 2);
  const t = Buffer.alloc(20 + options.length);
  t.writeUInt16BE(sport, 0);
  t.writeUInt16BE(dport, 2);
  t.writeUInt32BE(seq >>> 0, 4);
  t.writeUInt32BE(flags & TCP_ACK ? ack >>> 0 : 0, 8);
  t[12] = (t.length / 4) << 4;
  t[13] = flags;
  t.writeUInt16BE(WINDOW, 14);
  options.copy(t, 20);
  const { header, pseudo } = ipHeader(src, dst, IPPROTO_TCP, t.length + data.length, ipId);
  t.writeUInt16BE(internetChecksum([pseudo, t, data]), 16);
  return Buffer.concat([ethernet(src.family), header, t, data]);
}

function udpPacket(src: Addr, sport: number, dst: Addr, dport: number, data: Buffer, ipId: number): Buffer {
  const u = Buffer.alloc(8);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(8 + data.length, 4);
  const { header, pseudo } = ipHeader(src, dst, IPPROTO_UDP, 8 + data.length, ipId);
  // RFC 768: a computed checksum of zero is sent as all ones (zero means "no checksum").
  u.writeUInt16BE(internetChecksum([pseudo, u, data]) || 0xffff, 6);
  return Buffer.concat([ethernet(src.family), header, u, data]);
}

const key = (e: Endpoint) => `${e.address}|${e.port}`;

/** Deterministic initial sequence numbers, so two runs of the encoder on the same events agree. */
function isn(a: Endpoint, b: Endpoint): number {
  let h = 0x811c9dc5;
  for (const ch of `${key(a)}>${key(b)}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

interface Half {
  ep: Endpoint;
  addr: Addr;
  seq: number;
  /** Bytes this end sent that the other has not acknowledged in a segment of its own. */
  unacked: number;
  finSent: boolean;
}

interface TcpConn {
  client: Half;
  server: Half;
  /** Recorder conn numbers of the taps on this connection, by the endpoint they sit on. */
  taps: Map<string, Set<number>>;
  closedTaps: Set<number>;
  firstCloser: Half | undefined;
  done: boolean;
}

export interface PcapEncoderOptions {
  snaplen?: number;
}

/**
 * Turns recorded events into pcap records as they come (a server with --pcap can run for hours without
 * holding its traffic in memory). `header()` once, then `push(event)` per event, then `end()`.
 */
export class PcapEncoder {
  /** Packets written so far. */
  packets = 0;
  private readonly conns = new Map<string, TcpConn>();
  /** Recorder conn number -> its TCP connection. */
  private readonly byTap = new Map<number, TcpConn>();
  /** UDP sockets that are tapped, by local endpoint: their sends are recorded, so skip the peer's receives. */
  private readonly udpTapped = new Set<string>();
  private lastUs = 0;
  private ipId = 0;
  /** Writes made under one cork() of one socket, sent as one segment when the next event comes. */
  private held: { e: WireEvent; parts: Buffer[] } | undefined;

  constructor(private readonly options: PcapEncoderOptions = {}) {}

  header(): Buffer {
    return pcapGlobalHeader(this.options.snaplen ?? PCAP_SNAPLEN);
  }

  push(e: WireEvent): Buffer[] {
    this.lastUs = Math.max(this.lastUs, e.wallUs);
    if (e.transport === 'tcp' && e.kind === 'send' && e.corkGroup !== undefined && e.data?.length) {
      const h = this.held;
      if (h && h.e.conn === e.conn && h.e.corkGroup === e.corkGroup) {
        h.parts.push(e.data);
        return [];
      }
      const out = this.flushHeld();
      this.held = { e, parts: [e.data] };
      return out;
    }
    const out = this.flushHeld();
    out.push(...(e.transport === 'udp' ? this.udp(e) : this.tcp(e)));
    return out;
  }

  /** The held cork group as one segment, stamped with its first write's time. */
  private flushHeld(): Buffer[] {
    const h = this.held;
    if (!h) return [];
    this.held = undefined;
    return this.tcp({ ...h.e, data: h.parts.length === 1 ? h.parts[0]! : Buffer.concat(h.parts) });
  }

  /** Closes every connection still open (the process is about to exit, which closes its sockets). */
  end(wallUs = this.lastUs): Buffer[] {
    const out: Buffer[] = this.flushHeld();
    for (const c of this.conns.values()) if (!c.done) this.close(c, c.firstCloser ?? c.client, wallUs, out);
    return out;
  }

  private record(wallUs: number, packet: Buffer, out: Buffer[]): void {
    this.packets++;
    this.ipId++;
    out.push(pcapRecord(wallUs, packet));
  }

  private udp(e: WireEvent): Buffer[] {
    if (e.kind !== 'send' && e.kind !== 'recv') return [];
    const local = concrete(e.local, e.remote);
    const remote = concrete(e.remote, e.local);
    this.udpTapped.add(key(local));
    if (e.kind === 'recv' && this.udpTapped.has(key(remote))) return []; // the sender's record has it
    const out: Buffer[] = [];
    const [src, dst] = e.kind === 'send' ? [local, remote] : [remote, local];
    this.datagram(src, dst, e, out);
    return out;
  }

  private datagram(src: Endpoint, dst: Endpoint, e: WireEvent, out: Buffer[]): void {
    this.record(e.wallUs, udpPacket(parseAddress(src.address), src.port, parseAddress(dst.address), dst.port, e.data ?? Buffer.alloc(0), this.ipId + 1), out);
  }

  private conn(e: WireEvent, out: Buffer[]): TcpConn {
    const existing = this.byTap.get(e.conn);
    if (existing) return existing;
    const local = concrete(e.local, e.remote);
    const remote = concrete(e.remote, e.local);
    const [clientEp, serverEp] = e.side === 'client' ? [local, remote] : [remote, local];
    const id = `${key(clientEp)}>${key(serverEp)}`;
    let c = this.conns.get(id);
    if (!c || c.done) {
      const half = (ep: Endpoint, peer: Endpoint): Half => ({ ep, addr: parseAddress(ep.address), seq: isn(ep, peer), unacked: 0, finSent: false });
      c = { client: half(clientEp, serverEp), server: half(serverEp, clientEp), taps: new Map(), closedTaps: new Set(), firstCloser: undefined, done: false };
      this.conns.set(id, c);
      // The three-way handshake (RFC 9293 section 3.5): SYN, SYN-ACK, ACK. Each SYN uses one sequence number.
      this.segment(c, c.client, TCP_SYN, Buffer.alloc(0), e.wallUs, out);
      this.segment(c, c.server, TCP_SYN | TCP_ACK, Buffer.alloc(0), e.wallUs, out);
      this.segment(c, c.client, TCP_ACK, Buffer.alloc(0), e.wallUs, out);
    }
    const onKey = key(local);
    if (!c.taps.has(onKey)) c.taps.set(onKey, new Set());
    c.taps.get(onKey)!.add(e.conn);
    this.byTap.set(e.conn, c);
    return c;
  }

  private segment(c: TcpConn, from: Half, flags: number, data: Buffer, wallUs: number, out: Buffer[]): void {
    const to = from === c.client ? c.server : c.client;
    const ack = flags & TCP_SYN && !(flags & TCP_ACK) ? 0 : to.seq;
    this.record(wallUs, tcpPacket(from.addr, from.ep.port, to.addr, to.ep.port, from.seq, ack, flags, data, this.ipId + 1), out);
    from.seq = (from.seq + data.length + (flags & (TCP_SYN | TCP_FIN) ? 1 : 0)) >>> 0;
    from.unacked += data.length;
    if (flags & TCP_ACK) to.unacked = 0;
  }

  private tcp(e: WireEvent): Buffer[] {
    const out: Buffer[] = [];
    const c = this.conn(e, out);
    if (c.done) return out;
    const local = concrete(e.local, e.remote);
    const me = key(local) === key(c.client.ep) ? c.client : c.server;
    const peer = me === c.client ? c.server : c.client;
    if (e.kind === 'open') return out;
    if (e.kind === 'close') {
      c.closedTaps.add(e.conn);
      c.firstCloser ??= e.closedBy === 'peer' ? peer : me;
      // Close once every tap on this connection has seen its close (or at end()).
      let taps = 0;
      for (const s of c.taps.values()) taps += s.size;
      if (c.closedTaps.size >= taps) this.close(c, c.firstCloser, e.wallUs, out);
      return out;
    }
    const data = e.data ?? Buffer.alloc(0);
    if (data.length === 0) return out;
    let from: Half;
    if (e.kind === 'send') from = me;
    else {
      if (c.taps.has(key(peer.ep))) return out; // the sender is tapped: its own record is used
      from = peer;
    }
    if (from.finSent) return out;
    const mss = from.addr.family === 4 ? MSS_V4 : MSS_V6;
    for (let off = 0; off < data.length; off += mss) {
      this.segment(c, from, TCP_PSH | TCP_ACK, data.subarray(off, off + mss), e.wallUs, out);
      const to = from === c.client ? c.server : c.client;
      if (from.unacked >= ACK_EVERY) this.segment(c, to, TCP_ACK, Buffer.alloc(0), e.wallUs, out);
    }
    return out;
  }

  /** FIN from the side that closed first, the peer's FIN-ACK, the last ACK (RFC 9293 section 3.6). */
  private close(c: TcpConn, first: Half, wallUs: number, out: Buffer[]): void {
    const second = first === c.client ? c.server : c.client;
    this.segment(c, first, TCP_FIN | TCP_ACK, Buffer.alloc(0), wallUs, out);
    first.finSent = true;
    this.segment(c, second, TCP_FIN | TCP_ACK, Buffer.alloc(0), wallUs, out);
    second.finSent = true;
    this.segment(c, first, TCP_ACK, Buffer.alloc(0), wallUs, out);
    c.done = true;
  }
}

/** A whole pcap file from a list of recorded events. */
export function encodePcap(events: readonly WireEvent[], options: PcapEncoderOptions = {}): Buffer {
  const enc = new PcapEncoder(options);
  const parts = [enc.header()];
  for (const e of events) parts.push(...enc.push(e));
  parts.push(...enc.end());
  return Buffer.concat(parts);
}
