// The DNS subset wirelab's query-ID lab speaks (RFC 1035 4, RFC 6891 for the EDNS0 OPT record):
// a 12-byte header, then questions and resource records. A pure codec in the dns-packet style:
// `encode(packet, buf?, offset?)`, `decode(buf, options?)`, `encodingLength(packet)`; nothing here
// knows about sockets. Every read is bounds-checked and every rejection is a coded error.
//
//    0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15     (RFC 1035 4.1.1)
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                      ID                       |
//   |QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
//   |                    QDCOUNT                    |
//   |                    ANCOUNT                    |
//   |                    NSCOUNT                    |
//   |                    ARCOUNT                    |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
import { WirelabError, WirelabRangeError, type ErrorCode } from '../errors.ts';

export const HEADER_SIZE = 12;
/** RFC 1035 2.3.4. */
export const MAX_LABEL = 63;
export const MAX_NAME = 255;
/** RFC 1035 4.2.1: a UDP reply without EDNS0 is at most 512 bytes. */
export const MAX_UDP_PLAIN = 512;
/** RFC 1035 4.2.2: a message over TCP is prefixed by a u16 length. */
export const MAX_MESSAGE = 65535;

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_Z = 0x0040;
export const FLAG_AD = 0x0020;
export const FLAG_CD = 0x0010;
/** EDNS0 flags (RFC 3225): the DO bit, in the OPT record's TTL field. */
export const EDNS_FLAG_DO = 0x8000;

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, OPT: 41, ANY: 255 } as const;
export type TypeName = keyof typeof TYPE;
export const CLASS_IN = 1;
export const OPCODE = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type RcodeName = keyof typeof RCODE;

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([k, v]) => [v, k]));
const OPCODE_NAMES = new Map<number, string>(Object.entries(OPCODE).map(([k, v]) => [v, k]));

export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}
export function rcodeName(rcode: number): string {
  return RCODE_NAMES.get(rcode) ?? `RCODE${rcode}`;
}
export function opcodeName(opcode: number): string {
  return OPCODE_NAMES.get(opcode) ?? `OPCODE${opcode}`;
}
/** `A`, `aaaa`, `TYPE28` or `28` -> 28. */
export function parseType(text: string): number | undefined {
  const up = text.toUpperCase();
  if (up in TYPE) return TYPE[up as TypeName];
  const m = /^(?:TYPE)?(\d{1,5})$/.exec(up);
  if (m && Number(m[1]) <= 0xffff) return Number(m[1]);
  return undefined;
}

export const opcodeOf = (flags: number): number => (flags >> 11) & 0xf;
export const rcodeOf = (flags: number): number => flags & 0xf;

export interface DnsQuestion {
  /** Dotted, without the final dot (the root is ''); bytes outside printable ASCII as \DDD, '.' in a label as '\.'. */
  name: string;
  type: number;
  class: number;
}

/** A: dotted quad. AAAA: RFC 5952 text. CNAME/NS/PTR: a name. TXT: the character-strings. Others: raw rdata. */
export type RecordData = string | Buffer[] | Buffer;

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: RecordData;
}

export interface EdnsOption {
  code: number;
  data: Buffer;
}

/** The OPT pseudo-record (RFC 6891 6.1), kept apart from the additional records it travels in. */
export interface Edns {
  /** The requestor's UDP payload size (the OPT record's CLASS field). */
  udpPayloadSize: number;
  /** The upper 8 bits of the 12-bit extended RCODE. */
  extendedRcode: number;
  version: number;
  /** DO and the reserved Z bits. */
  flags: number;
  options: EdnsOption[];
}

export interface DnsPacket {
  id: number;
  /** QR, opcode, AA, TC, RD, RA, Z, AD, CD and rcode, as on the wire. */
  flags: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  /** Without the OPT record: that one is `edns`. */
  additionals: DnsRecord[];
  edns?: Edns;
}

export function emptyPacket(id: number, flags: number): DnsPacket {
  return { id, flags, questions: [], answers: [], authorities: [], additionals: [] };
}

// ---- names ----

/** Splits a presentation name into wire labels, resolving `\.`, `\\` and `\DDD`. A final dot is optional. */
export function nameToLabels(name: string): Buffer[] {
  if (name === '' || name === '.') return [];
  const labels: Buffer[] = [];
  let cur: number[] = [];
  let i = 0;
  const end = name.endsWith('.') && !name.endsWith('\\.') ? name.length - 1 : name.length;
  const finish = () => {
    if (cur.length === 0) throw new WirelabRangeError('ERR_DNS_EMPTY_LABEL', `name '${name}' has an empty label`);
    if (cur.length > MAX_LABEL) throw new WirelabRangeError('ERR_DNS_LABEL_TOO_LONG', `label of ${cur.length} bytes in '${name.slice(0, 80)}' (at most ${MAX_LABEL}, RFC 1035 2.3.4)`);
    labels.push(Buffer.from(cur));
    cur = [];
  };
  while (i < end) {
    const ch = name.charCodeAt(i);
    if (ch === 0x2e) {
      finish();
      i++;
    } else if (ch === 0x5c && i + 1 < name.length) {
      const m = /^\d{3}/.exec(name.slice(i + 1, i + 4));
      if (m && Number(m[0]) <= 255) {
        cur.push(Number(m[0]));
        i += 4;
      } else {
        cur.push(name.charCodeAt(i + 1) & 0xff);
        i += 2;
      }
    } else {
      // Non-ASCII text goes out as its UTF-8 bytes (IDNA is the caller's business).
      if (ch > 0x7f) for (const b of Buffer.from(name[i]!, 'utf8')) cur.push(b);
      else cur.push(ch);
      i++;
    }
  }
  finish();
  let wire = 1;
  for (const l of labels) wire += l.length + 1;
  if (wire > MAX_NAME) throw new WirelabRangeError('ERR_DNS_NAME_TOO_LONG', `name of ${wire} bytes on the wire (at most ${MAX_NAME}, RFC 1035 2.3.4)`);
  return labels;
}

function labelText(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + String(b).padStart(3, '0');
  }
  return s;
}

/** Names compare case-insensitively (RFC 1035 2.3.3; RFC 4343). */
export function canonicalName(name: string): string {
  const n = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

/** With the final dot, as dig prints names. */
export function fqdn(name: string): string {
  return name === '' ? '.' : name + '.';
}

// ---- IP addresses ----

function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    out.push(Number(p));
  }
  return out;
}

function parseIPv6(text: string): number[] | undefined {
  let t = text;
  const dot = t.lastIndexOf('.');
  if (dot !== -1) {
    // An embedded IPv4 tail (RFC 4291 2.2, form 3) becomes two hex groups.
    const colon = t.lastIndexOf(':');
    const q = parseIPv4(t.slice(colon + 1));
    if (!q) return undefined;
    t = t.slice(0, colon + 1) + ((q[0]! << 8) | q[1]!).toString(16) + ':' + ((q[2]! << 8) | q[3]!).toString(16);
  }
  const halves = t.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - left.length - right.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...right];
  const out: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    out.push(n >> 8, n & 0xff);
  }
  return out;
}

/** RFC 5952 4: lower case, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
function formatIPv6(b: Uint8Array, at: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((n) => n.toString(16));
  if (bestStart === -1) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

export function isIPv4Text(text: string): boolean {
  return parseIPv4(text) !== undefined;
}
export function isIPv6Text(text: string): boolean {
  return parseIPv6(text) !== undefined;
}

// ---- encoding ----

export interface EncodeOptions {
  /** Compress names with pointers to earlier occurrences (RFC 1035 4.1.4). Default true. */
  compress?: boolean;
}

/** Writes into buf when given; without one it only counts, so encodingLength runs the same code. */
class Writer {
  pos: number;
  /** Suffix key -> its offset from the message start (only offsets a pointer can hold). Exact bytes: case
   *  is kept, so `Lab` is never compressed to an earlier `LAB` (legal, RFC 1035 2.3.3, but it rewrites data). */
  readonly names = new Map<string, number>();
  constructor(readonly buf: Buffer | undefined, readonly start: number, readonly compress: boolean) {
    this.pos = start;
  }
  u8(n: number) {
    if (this.buf) this.buf[this.pos] = n;
    this.pos += 1;
  }
  u16(n: number) {
    if (this.buf) this.buf.writeUInt16BE(n & 0xffff, this.pos);
    this.pos += 2;
  }
  u32(n: number) {
    if (this.buf) this.buf.writeUInt32BE(n >>> 0, this.pos);
    this.pos += 4;
  }
  bytes(b: Uint8Array) {
    if (this.buf) this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  name(name: string) {
    const labels = nameToLabels(name);
    for (let i = 0; i < labels.length; i++) {
      let key = '';
      for (let j = i; j < labels.length; j++) key += labels[j]!.length + ':' + labels[j]!.toString('latin1');
      const at = this.compress ? this.names.get(key) : undefined;
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      const off = this.pos - this.start;
      if (off < 0x4000 && !this.names.has(key)) this.names.set(key, off);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
}

function bad(code: ErrorCode, message: string): never {
  throw new WirelabError(code, message);
}

function txtStrings(data: RecordData): Buffer[] {
  const list = Array.isArray(data) ? data : [data];
  return list.map((s) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s));
}

function writeRdata(w: Writer, r: DnsRecord): void {
  const { type, data } = r;
  if (type === TYPE.A || type === TYPE.AAAA) {
    const bytes = typeof data === 'string' ? (type === TYPE.A ? parseIPv4(data) : parseIPv6(data)) : undefined;
    if (!bytes) bad('ERR_DNS_BAD_RDATA', `${typeName(type)} record for '${r.name}' needs an ${type === TYPE.A ? 'IPv4' : 'IPv6'} address, got ${JSON.stringify(String(data))}`);
    w.bytes(Uint8Array.from(bytes));
  } else if (type === TYPE.CNAME || type === TYPE.NS || type === TYPE.PTR) {
    if (typeof data !== 'string') bad('ERR_DNS_BAD_RDATA', `${typeName(type)} record for '${r.name}' needs a name`);
    w.name(data);
  } else if (type === TYPE.TXT) {
    if (typeof data !== 'string' && !Array.isArray(data)) bad('ERR_DNS_BAD_RDATA', `TXT record for '${r.name}' needs strings`);
    for (const s of txtStrings(data)) {
      if (s.length > 255) bad('ERR_DNS_BAD_RDATA', `TXT string of ${s.length} bytes (at most 255, RFC 1035 3.3.14)`);
      w.u8(s.length);
      w.bytes(s);
    }
  } else {
    if (!Buffer.isBuffer(data)) bad('ERR_DNS_BAD_RDATA', `${typeName(type)} record for '${r.name}' needs raw rdata bytes`);
    w.bytes(data);
  }
}

function writeRecord(w: Writer, r: DnsRecord): void {
  w.name(r.name);
  w.u16(r.type);
  w.u16(r.class);
  w.u32(r.ttl);
  const lenAt = w.pos;
  w.u16(0);
  writeRdata(w, r);
  const len = w.pos - lenAt - 2;
  if (len > 0xffff) bad('ERR_DNS_MESSAGE_TOO_LARGE', `rdata of ${len} bytes`);
  if (w.buf) w.buf.writeUInt16BE(len, lenAt);
}

function writeOpt(w: Writer, e: Edns): void {
  w.u8(0); // root name (RFC 6891 6.1.2)
  w.u16(TYPE.OPT);
  w.u16(e.udpPayloadSize);
  w.u32(((e.extendedRcode & 0xff) << 24) | ((e.version & 0xff) << 16) | (e.flags & 0xffff));
  let len = 0;
  for (const o of e.options) len += 4 + o.data.length;
  w.u16(len);
  for (const o of e.options) {
    w.u16(o.code);
    w.u16(o.data.length);
    w.bytes(o.data);
  }
}

function writePacket(w: Writer, p: DnsPacket): void {
  const counts = [p.questions.length, p.answers.length, p.authorities.length, p.additionals.length + (p.edns ? 1 : 0)];
  for (const c of counts) if (c > 0xffff) bad('ERR_DNS_MESSAGE_TOO_LARGE', `${c} entries in one section`);
  w.u16(p.id);
  w.u16(p.flags);
  for (const c of counts) w.u16(c);
  for (const q of p.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of p.answers) writeRecord(w, r);
  for (const r of p.authorities) writeRecord(w, r);
  for (const r of p.additionals) writeRecord(w, r);
  if (p.edns) writeOpt(w, p.edns);
}

/** The bytes `encode` writes for this packet (compression included). */
export function encodingLength(p: DnsPacket, options: EncodeOptions = {}): number {
  const w = new Writer(undefined, 0, options.compress ?? true);
  writePacket(w, p);
  return w.pos;
}

/** Encodes into buf at offset (pointers are relative to offset), or into a new buffer. */
export function encode(p: DnsPacket, buf?: Buffer, offset = 0, options: EncodeOptions = {}): Buffer {
  const length = encodingLength(p, options);
  if (length > MAX_MESSAGE) bad('ERR_DNS_MESSAGE_TOO_LARGE', `message of ${length} bytes (at most ${MAX_MESSAGE})`);
  const target = buf ?? Buffer.alloc(length);
  const at = buf ? offset : 0;
  if (target.length - at < length) throw new WirelabRangeError('ERR_DNS_MESSAGE_TOO_LARGE', `buffer has ${target.length - at} bytes from offset ${at}, need ${length}`);
  writePacket(new Writer(target, at, options.compress ?? true), p);
  return buf ? target.subarray(at, at + length) : target;
}

// ---- decoding ----

/** One field of a decoded message, for annotated hex dumps: offsets from the message start. */
export interface Span {
  offset: number;
  length: number;
  text: string;
}

export interface DecodeOptions {
  /** Where the message starts in buf. Default 0. */
  offset?: number;
  /** Where it ends. Default buf.length. */
  end?: number;
  /** Bytes after the last counted record are an error (ERR_DNS_TRAILING_BYTES) unless this is set. */
  allowTrailing?: boolean;
  /** A compression pointer is an error (ERR_DNS_POINTER_IN_QUERY): queries have nothing to point back to. */
  forbidPointers?: boolean;
  /** When given, each field read is pushed here (for --trace annotation). */
  spans?: Span[];
}

class Reader {
  pos: number;
  pointers = 0;
  /** How the last name was laid out (labels, pointers), for annotation. */
  nameNote = '';
  constructor(readonly buf: Buffer, readonly start: number, readonly end: number, readonly o: DecodeOptions) {
    this.pos = start;
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      bad('ERR_DNS_TRUNCATED', `${what} needs ${n} bytes at offset ${this.pos - this.start}, the message ends at ${this.end - this.start}`);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  span(from: number, text: string): void {
    this.o.spans?.push({ offset: from - this.start, length: this.pos - from, text });
  }
  /**
   * A name at pos; pos moves past its in-place part. Pointers must point strictly backwards and each
   * jump strictly before the previous target (what any compressor produces), so every loop is caught.
   */
  name(what: string): string {
    const buf = this.buf;
    let p = this.pos;
    let jumped = false;
    let lastTarget = Infinity;
    let wire = 1;
    const parts: string[] = [];
    const notes: string[] = [];
    for (;;) {
      if (p >= this.end) { this.pos = p; bad('ERR_DNS_TRUNCATED', `${what}: label length byte past the end at offset ${p - this.start}`); }
      const len = buf[p]!;
      if ((len & 0xc0) === 0xc0) {
        if (p + 2 > this.end) { this.pos = p; bad('ERR_DNS_TRUNCATED', `${what}: compression pointer cut short at offset ${p - this.start}`); }
        if (this.o.forbidPointers) bad('ERR_DNS_POINTER_IN_QUERY', `${what}: compression pointer at offset ${p - this.start} in a query`);
        const target = ((len & 0x3f) << 8) | buf[p + 1]!;
        if (target >= p - this.start) bad('ERR_DNS_POINTER_FORWARD', `${what}: pointer at offset ${p - this.start} points forward to ${target}`);
        if (target >= lastTarget) bad('ERR_DNS_POINTER_LOOP', `${what}: pointer at offset ${p - this.start} to ${target} does not go back past ${lastTarget}: a loop`);
        notes.push(`pointer ${hex2(len)} ${hex2(buf[p + 1]!)} -> offset ${target} (0x${target.toString(16).padStart(4, '0')})`);
        this.pointers++;
        if (!jumped) this.pos = p + 2;
        jumped = true;
        lastTarget = target;
        p = this.start + target;
        continue;
      }
      if (len > MAX_LABEL) bad('ERR_DNS_LABEL_TOO_LONG', `${what}: label length byte 0x${hex2(len)} at offset ${p - this.start} (labels are at most ${MAX_LABEL}; 0x40 and 0x80 types are reserved)`);
      if (len === 0) {
        if (!jumped) this.pos = p + 1;
        notes.push('0 (root)');
        break;
      }
      if (p + 1 + len > this.end) { this.pos = p; bad('ERR_DNS_TRUNCATED', `${what}: label of ${len} bytes at offset ${p - this.start} runs past the end`); }
      wire += len + 1;
      if (wire > MAX_NAME) bad('ERR_DNS_NAME_TOO_LONG', `${what}: name longer than ${MAX_NAME} bytes`);
      const text = labelText(buf, p + 1, p + 1 + len);
      parts.push(text);
      notes.push(`${len} "${text}"`);
      p += 1 + len;
    }
    const name = parts.join('.');
    if (this.o.spans) this.nameNote = `${fqdn(name)}  [${notes.join(', ')}]`;
    return name;
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function readRdata(r: Reader, type: number, rdlength: number, owner: string): RecordData {
  const end = r.pos + rdlength;
  const what = `${typeName(type)} rdata of ${owner || '.'}`;
  if (type === TYPE.A || type === TYPE.AAAA) {
    const want = type === TYPE.A ? 4 : 16;
    if (rdlength !== want) bad('ERR_DNS_BAD_RDATA', `${what}: rdlength ${rdlength}, must be ${want}`);
    const at = r.pos;
    r.pos += want;
    return type === TYPE.A ? Array.from(r.buf.subarray(at, at + 4)).join('.') : formatIPv6(r.buf, at);
  }
  if (type === TYPE.CNAME || type === TYPE.NS || type === TYPE.PTR) {
    const name = r.name(what);
    if (r.pos !== end) bad('ERR_DNS_BAD_RDATA', `${what}: the name does not end at rdlength ${rdlength}`);
    return name;
  }
  if (type === TYPE.TXT) {
    const strings: Buffer[] = [];
    while (r.pos < end) {
      const len = r.buf[r.pos]!;
      if (r.pos + 1 + len > end) bad('ERR_DNS_BAD_RDATA', `${what}: a character-string of ${len} bytes runs past rdlength`);
      strings.push(r.buf.subarray(r.pos + 1, r.pos + 1 + len));
      r.pos += 1 + len;
    }
    if (strings.length === 0) bad('ERR_DNS_BAD_RDATA', `${what}: no character-string (RFC 1035 3.3.14 needs one or more)`);
    return strings;
  }
  const raw = r.buf.subarray(r.pos, end);
  r.pos = end;
  return raw;
}

function describeData(type: number, data: RecordData): string {
  if (typeof data === 'string') return type === TYPE.A || type === TYPE.AAAA ? data : fqdn(data);
  if (Array.isArray(data)) {
    const shown = data.slice(0, 2).map((s) => JSON.stringify(s.toString('latin1').replace(/[^\x20-\x7e]/g, '.'))).join(' ');
    return data.length > 2 ? `${shown} ... (${data.length} strings)` : shown;
  }
  return `${data.length} bytes`;
}

function readRecord(r: Reader, section: string, index: number, p: DnsPacket): void {
  const from = r.pos;
  const what = `${section} ${index + 1}`;
  const name = r.name(`${what} name`);
  r.span(from, `${section} name=${r.nameNote}`);
  const fixedAt = r.pos;
  const type = r.u16(`${what} type`);
  const cls = r.u16(`${what} class`);
  const ttl = r.u32(`${what} ttl`);
  const rdlength = r.u16(`${what} rdlength`);
  r.need(rdlength, `${what} rdata`);
  if (type === TYPE.OPT) {
    r.span(fixedAt, `  OPT udp-payload-size=${cls} extended-rcode=${ttl >>> 24} version=${(ttl >>> 16) & 0xff} DO=${(ttl & EDNS_FLAG_DO) ? 1 : 0} rdlength=${rdlength}`);
    if (section !== 'additional') bad('ERR_DNS_BAD_OPT', `OPT record in the ${section} section (RFC 6891 6.1.1: additional only)`);
    if (name !== '') bad('ERR_DNS_BAD_OPT', 'OPT record with a name other than the root (RFC 6891 6.1.2)');
    if (p.edns) bad('ERR_DNS_BAD_OPT', 'more than one OPT record (RFC 6891 6.1.1)');
    const end = r.pos + rdlength;
    const options: EdnsOption[] = [];
    while (r.pos < end) {
      const at = r.pos;
      if (end - r.pos < 4) bad('ERR_DNS_BAD_OPT', 'EDNS option header cut short by rdlength');
      const code = r.u16('EDNS option code');
      const len = r.u16('EDNS option length');
      if (r.pos + len > end) bad('ERR_DNS_BAD_OPT', `EDNS option ${code} of ${len} bytes runs past rdlength`);
      options.push({ code, data: r.buf.subarray(r.pos, r.pos + len) });
      r.pos += len;
      r.span(at, `  EDNS option code=${code}${code === 10 ? ' (COOKIE)' : ''} length=${len}`);
    }
    p.edns = { udpPayloadSize: cls, extendedRcode: ttl >>> 24, version: (ttl >>> 16) & 0xff, flags: ttl & 0xffff, options };
    return;
  }
  const rdAt = r.pos;
  const data = readRdata(r, type, rdlength, name);
  const pos = r.pos;
  r.pos = rdAt;
  r.span(fixedAt, `  type=${typeName(type)} class=${cls === CLASS_IN ? 'IN' : cls} ttl=${ttl} rdlength=${rdlength}`);
  r.pos = pos;
  r.span(rdAt, `  rdata ${typeof data === 'string' && type !== TYPE.A && type !== TYPE.AAAA ? r.nameNote : describeData(type, data)}`);
  const rec: DnsRecord = { name, type, class: cls, ttl, data };
  (section === 'answer' ? p.answers : section === 'authority' ? p.authorities : p.additionals).push(rec);
}

export function describeFlags(flags: number): string {
  const bit = (m: number) => ((flags & m) ? 1 : 0);
  return `QR=${bit(FLAG_QR)} opcode=${opcodeName(opcodeOf(flags))} AA=${bit(FLAG_AA)} TC=${bit(FLAG_TC)} RD=${bit(FLAG_RD)} RA=${bit(FLAG_RA)} Z=${bit(FLAG_Z)} AD=${bit(FLAG_AD)} CD=${bit(FLAG_CD)} rcode=${rcodeName(rcodeOf(flags))}`;
}

export interface DnsHeader {
  id: number;
  flags: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export function decodeHeader(buf: Buffer, offset = 0): DnsHeader {
  if (buf.length - offset < HEADER_SIZE) bad('ERR_DNS_TRUNCATED', `header needs ${HEADER_SIZE} bytes, got ${Math.max(0, buf.length - offset)}`);
  return {
    id: buf.readUInt16BE(offset),
    flags: buf.readUInt16BE(offset + 2),
    qdcount: buf.readUInt16BE(offset + 4),
    ancount: buf.readUInt16BE(offset + 6),
    nscount: buf.readUInt16BE(offset + 8),
    arcount: buf.readUInt16BE(offset + 10),
  };
}

/** Decodes one whole message. Throws only coded errors (WirelabError), whatever the bytes. */
export function decode(buf: Buffer, options: DecodeOptions = {}): DnsPacket {
  const start = options.offset ?? 0;
  const end = options.end ?? buf.length;
  const r = new Reader(buf, start, end, options);
  const id = r.u16('header id');
  r.span(start, `id=0x${id.toString(16).padStart(4, '0')} (${id})`);
  const flags = r.u16('header flags');
  r.span(start + 2, `flags=0x${flags.toString(16).padStart(4, '0')} ${describeFlags(flags)}`);
  const counts = [r.u16('QDCOUNT'), r.u16('ANCOUNT'), r.u16('NSCOUNT'), r.u16('ARCOUNT')] as const;
  r.span(start + 4, `qdcount=${counts[0]} ancount=${counts[1]} nscount=${counts[2]} arcount=${counts[3]}`);
  const p = emptyPacket(id, flags);
  for (let i = 0; i < counts[0]; i++) {
    const from = r.pos;
    const name = r.name(`question ${i + 1} name`);
    r.span(from, `question name=${r.nameNote}`);
    const at = r.pos;
    const type = r.u16(`question ${i + 1} type`);
    const cls = r.u16(`question ${i + 1} class`);
    r.span(at, `  qtype=${typeName(type)} qclass=${cls === CLASS_IN ? 'IN' : cls}`);
    p.questions.push({ name, type, class: cls });
  }
  for (let i = 0; i < counts[1]; i++) readRecord(r, 'answer', i, p);
  for (let i = 0; i < counts[2]; i++) readRecord(r, 'authority', i, p);
  for (let i = 0; i < counts[3]; i++) readRecord(r, 'additional', i, p);
  if (!options.allowTrailing && r.pos !== end) bad('ERR_DNS_TRAILING_BYTES', `${end - r.pos} bytes after the last record (offset ${r.pos - start})`);
  return p;
}

// ---- TCP framing (RFC 1035 4.2.2, RFC 7766 8): a u16 length, then the message ----

/** The two-byte length prefix for a message sent over TCP. */
export function tcpPrefix(length: number): Buffer {
  if (length > MAX_MESSAGE) throw new WirelabRangeError('ERR_DNS_MESSAGE_TOO_LARGE', `message of ${length} bytes does not fit a u16 length`);
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(length, 0);
  return b;
}

/**
 * Splits a TCP byte stream into messages. Keeps the chunks and a byte count; yields views when a
 * message sits inside one chunk, copies only when it spans chunks. A u16 length cannot exceed 64 KiB,
 * so at most one message plus a prefix is ever buffered.
 */
export class DnsTcpDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private want = -1;

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.want === -1) {
        if (this.buffered < 2) break;
        this.want = this.take(2).readUInt16BE(0);
      }
      if (this.buffered < this.want) break;
      out.push(this.take(this.want));
      this.want = -1;
    }
    return out;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first && first.length >= n) {
      const view = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const c = this.chunks[0]!;
      const k = Math.min(n - got, c.length);
      c.copy(out, got, 0, k);
      got += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

// ---- annotation for --trace ----

/** One line per field of a message: `0000  id=0x1a2b (6699)`, offsets in hex from the message start. */
export function annotateMessage(msg: Buffer, base = 0): string[] {
  const spans: Span[] = [];
  let tail: string | undefined;
  try {
    decode(msg, { spans });
  } catch (err) {
    tail = `malformed: ${(err as { code?: string }).code} ${(err as Error).message}`;
  }
  const lines = spans.map((s) => `${(s.offset + base).toString(16).padStart(4, '0')}  ${s.text}`);
  if (tail) lines.push(tail);
  return lines;
}

/**
 * One short line for a whole message, the arrow label of --diagram: `query id=0x1a2b hello.lab A`,
 * `reply id=0x1a2b hello.lab A an=1`, `reply id=0x1a2b nope.lab A NXDOMAIN`, `... TC` when truncated.
 */
export function summarizeMessage(msg: Buffer): string {
  const hex = (id: number) => `id=0x${id.toString(16).padStart(4, '0')}`;
  let p: DnsPacket;
  try {
    p = decode(msg);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (msg.length < HEADER_SIZE) return `malformed: ${msg.length} bytes (${code})`;
    const h = decodeHeader(msg);
    return `${h.flags & FLAG_QR ? 'reply' : 'query'} ${hex(h.id)} malformed (${code})`;
  }
  const q = p.questions[0];
  let s = `${p.flags & FLAG_QR ? 'reply' : 'query'} ${hex(p.id)}`;
  if (q) s += ` ${q.name || '.'} ${typeName(q.type)}`;
  // As dig +short would judge it: the answer count when NOERROR, else the rcode.
  if (p.flags & FLAG_QR) s += `${rcodeOf(p.flags) === RCODE.NOERROR ? ` an=${p.answers.length}` : ` ${rcodeName(rcodeOf(p.flags))}`}${p.flags & FLAG_TC ? ' TC' : ''}`;
  return s;
}

/**
 * An annotator factory for tapDgram (one datagram, one message) or tapSocket (length-prefixed stream):
 * the notes annotate each message field by field, the units name each message in one line.
 */
export function dnsAnnotator(transport: 'udp' | 'tcp'): () => (chunk: Buffer) => { notes: string[]; units: string[] } {
  return () => {
    if (transport === 'udp') return (chunk) => ({ notes: annotateMessage(chunk), units: [summarizeMessage(chunk)] });
    const decoder = new DnsTcpDecoder();
    return (chunk) => {
      const notes: string[] = [];
      const units: string[] = [];
      for (const m of decoder.push(chunk)) {
        notes.push(`length prefix=${m.length} (RFC 1035 4.2.2), offsets below from the message start`);
        notes.push(...annotateMessage(m));
        units.push(summarizeMessage(m));
      }
      return { notes, units };
    };
  };
}
