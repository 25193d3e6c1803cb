// The wirelab frame protocol, v1 (native-notes/wire-formats.md): a 12-byte big-endian header and a payload.
//
//   0       1       2               4                               8                              12
//   +-------+-------+---------------+-------------------------------+-------------------------------+
//   |version| type  |     flags     |              id               |            length             |
//   +-------+-------+---------------+-------------------------------+-------------------------------+
//   |                                 payload (length bytes) ...
//
// A pure codec: nothing here knows about sockets. FrameDecoder is the incremental piece on top.
import { WirelabError, WirelabRangeError } from '../errors.ts';

export const FRAME_VERSION = 1;
export const HEADER_SIZE = 12;
/** Default limit on a frame's payload (1 MiB); flag `--max-payload`. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** PING payloads are at most 64 bytes. */
export const MAX_PING_PAYLOAD = 64;
/** The id that names the connection itself (protocol errors). */
export const CONNECTION_ID = 0;
export const MAX_ID = 0xffff_ffff;

export const FrameType = {
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
  PUSH: 4,
  PING: 5,
  PONG: 6,
  CANCEL: 7,
} as const;
export type FrameTypeName = keyof typeof FrameType;
export type FrameTypeValue = (typeof FrameType)[FrameTypeName];

const TYPE_NAMES: readonly (FrameTypeName | undefined)[] = [undefined, 'REQUEST', 'RESPONSE', 'ERROR', 'PUSH', 'PING', 'PONG', 'CANCEL'];

export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `UNKNOWN(${type})`;
}

export function isKnownType(type: number): type is FrameTypeValue {
  return type >= 1 && type <= 7;
}

/** The u16 codes an ERROR frame carries. 100 and above are application errors. */
export const WireError = {
  BAD_VERSION: 1,
  UNKNOWN_TYPE: 2,
  FRAME_TOO_LARGE: 3,
  BAD_REQUEST: 4,
  TIMEOUT: 5,
  CANCELLED: 6,
  DUPLICATE_ID: 7,
  APPLICATION: 100,
} as const;

/** The ERROR code a receiver sends (with id 0, then closes) for a decoder failure of the given code. */
export function wireErrorFor(code: string | undefined): number {
  if (code === 'ERR_BAD_VERSION') return WireError.BAD_VERSION;
  if (code === 'ERR_UNKNOWN_TYPE') return WireError.UNKNOWN_TYPE;
  return WireError.FRAME_TOO_LARGE; // ERR_FRAME_TOO_LARGE: the only other way a decoder fails mid-stream
}

export interface FrameHeader {
  version: number;
  type: number;
  flags: number;
  id: number;
  length: number;
}

export interface Frame {
  type: FrameTypeValue;
  /** Reserved in v1: sent as 0, ignored by receivers. */
  flags: number;
  id: number;
  /** A view into the received bytes when the frame arrived in one chunk; a copy only when it spanned chunks. */
  payload: Buffer;
}

export type Payload = Uint8Array | readonly Uint8Array[];

function payloadLength(payload: Payload): number {
  if (payload instanceof Uint8Array) return payload.byteLength;
  let n = 0;
  for (const p of payload) n += p.byteLength;
  return n;
}

/** Writes a header into buf at offset (or into a new 12-byte buffer). */
export function encodeHeader(type: number, id: number, length: number, flags = 0, buf?: Buffer, offset = 0): Buffer {
  const out = buf ?? Buffer.allocUnsafe(HEADER_SIZE);
  if (offset < 0 || out.length - offset < HEADER_SIZE) throw new WirelabRangeError('ERR_FRAME_TRUNCATED', `no room for a ${HEADER_SIZE}-byte header at offset ${offset}`);
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new WirelabRangeError('ERR_BAD_REQUEST', `id ${id} is not a u32`);
  if (!Number.isInteger(length) || length < 0 || length > MAX_ID) throw new WirelabRangeError('ERR_FRAME_TOO_LARGE', `length ${length} is not a u32`);
  out[offset] = FRAME_VERSION;
  out[offset + 1] = type;
  out.writeUInt16BE(flags, offset + 2);
  out.writeUInt32BE(id, offset + 4);
  out.writeUInt32BE(length, offset + 8);
  return out;
}

/**
 * Writes a header with no checks, for hot paths whose values are already known to be valid u8/u16/u32
 * (a decoded id, a payload's length). Plain byte stores: no range validation, no bounds checks.
 */
export function writeHeaderUnchecked(out: Uint8Array, at: number, type: number, id: number, length: number): void {
  out[at] = FRAME_VERSION;
  out[at + 1] = type;
  out[at + 2] = 0;
  out[at + 3] = 0;
  out[at + 4] = id >>> 24;
  out[at + 5] = id >>> 16;
  out[at + 6] = id >>> 8;
  out[at + 7] = id;
  out[at + 8] = length >>> 24;
  out[at + 9] = length >>> 16;
  out[at + 10] = length >>> 8;
  out[at + 11] = length;
}

/**
 * A frame as buffers to write: [header, ...payload parts]. The payload is not copied, so the caller can
 * write header and body separately under cork()/uncork().
 */
export function encodeFrame(type: FrameTypeValue, id: number, payload: Payload = EMPTY, flags = 0): Buffer[] {
  const header = encodeHeader(type, id, payloadLength(payload), flags);
  const parts = payload instanceof Uint8Array ? [payload] : payload;
  const out: Buffer[] = [header];
  for (const p of parts) if (p.byteLength > 0) out.push(Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  return out;
}

export function encodingLength(payload: Payload = EMPTY): number {
  return HEADER_SIZE + payloadLength(payload);
}

const EMPTY = Buffer.alloc(0);

/** Reads a header at offset. The caller makes sure 12 bytes are there; nothing is validated here. */
export function readHeader(buf: Uint8Array, offset = 0): FrameHeader {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    version: b[offset]!,
    type: b[offset + 1]!,
    flags: b.readUInt16BE(offset + 2),
    id: b.readUInt32BE(offset + 4),
    length: b.readUInt32BE(offset + 8),
  };
}

function checkVersion(version: number): void {
  if (version !== FRAME_VERSION) throw new WirelabError('ERR_BAD_VERSION', `unsupported frame version ${version} (expected ${FRAME_VERSION})`);
}
function checkType(type: number): void {
  if (!isKnownType(type)) throw new WirelabError('ERR_UNKNOWN_TYPE', `unknown frame type ${type}`);
}
function checkLength(length: number, maxPayload: number): void {
  if (length > maxPayload) throw new WirelabRangeError('ERR_FRAME_TOO_LARGE', `frame payload of ${length} bytes is over the limit of ${maxPayload}`);
}

/** Decodes one whole frame at offset of a buffer that holds it all. Throws a coded error otherwise. */
export function decodeFrame(buf: Buffer, offset = 0, maxPayload = DEFAULT_MAX_PAYLOAD): Frame {
  const available = buf.length - offset;
  if (available >= 1) checkVersion(buf[offset]!);
  if (available >= 2) checkType(buf[offset + 1]!);
  if (available < HEADER_SIZE) throw new WirelabError('ERR_FRAME_TRUNCATED', `${available} bytes cannot hold a ${HEADER_SIZE}-byte header`);
  const h = readHeader(buf, offset);
  checkLength(h.length, maxPayload);
  if (available - HEADER_SIZE < h.length) throw new WirelabError('ERR_FRAME_TRUNCATED', `payload of ${h.length} bytes but only ${available - HEADER_SIZE} present`);
  const start = offset + HEADER_SIZE;
  return { type: h.type as FrameTypeValue, flags: h.flags, id: h.id, payload: buf.subarray(start, start + h.length) };
}

/** A decoded frame without an object: its payload is buf[start, end). */
export type FrameCallback = (type: FrameTypeValue, flags: number, id: number, buf: Buffer, start: number, end: number) => void;

const STATE_HEADER = 0;
const STATE_PAYLOAD = 1;
const STATE_FAILED = 2;

export interface FrameDecoderOptions {
  /** Largest payload accepted; checked as soon as the header is read, before any payload is buffered. */
  maxPayload?: number;
}

/**
 * Incremental decoder: feed it chunks of any size (one byte, or many frames at once) and it returns the
 * frames each chunk completed. Frames wholly inside a chunk are views of it; a frame that spans chunks is
 * copied once. After an error it stays failed (ERR_DECODER_FAILED): framing cannot be trusted again, so
 * the caller closes the connection rather than resynchronise.
 */
export class FrameDecoder {
  readonly maxPayload: number;
  private state = STATE_HEADER;
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  private type: FrameTypeValue = FrameType.REQUEST;
  private flags = 0;
  private id = 0;
  private length = 0;
  private parts: Buffer[] = [];
  private partsFill = 0;
  private failure: Error | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  }

  /** Bytes held for an incomplete frame (never more than 12 + maxPayload). */
  get bufferedBytes(): number {
    return this.headerFill + this.partsFill;
  }

  get failed(): boolean {
    return this.state === STATE_FAILED;
  }

  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    this.pushTo(chunk, frames);
    return frames;
  }

  /** Like push, appending to a caller's array (no allocation per chunk on the hot path). */
  pushTo(chunk: Buffer, frames: Frame[]): void {
    this.each(chunk, (type, flags, id, buf, start, end) => {
      frames.push({ type, flags, id, payload: start === 0 && end === buf.length ? buf : buf.subarray(start, end) });
    });
  }

  /**
   * The allocation-free form: calls onFrame for each whole frame with the buffer holding its payload and
   * the payload's bounds in it (the chunk itself, or the one copy when the frame spanned chunks). No Frame
   * object and no view is made; the caller makes the view it needs, if any. Frames completed before an
   * error are delivered before the error is thrown.
   */
  each(chunk: Buffer, onFrame: FrameCallback): void {
    if (this.state === STATE_FAILED) throw new WirelabError('ERR_DECODER_FAILED', 'decoder failed earlier; close the connection', { cause: this.failure });
    try {
      this.run(chunk, onFrame);
    } catch (err) {
      this.fail(err as Error);
      throw err;
    }
  }

  /** End of stream: a partial frame left over is an error (ERR_FRAME_TRUNCATED). */
  end(): void {
    if (this.state === STATE_FAILED) return;
    if (this.bufferedBytes > 0 || this.state === STATE_PAYLOAD) {
      const err = new WirelabError('ERR_FRAME_TRUNCATED', `stream ended inside a frame (${this.bufferedBytes} bytes buffered)`);
      this.fail(err);
      throw err;
    }
  }

  private fail(err: Error): void {
    this.state = STATE_FAILED;
    this.failure = err;
    this.parts = [];
    this.partsFill = 0;
    this.headerFill = 0;
  }

  private run(chunk: Buffer, emit: FrameCallback): void {
    const max = this.maxPayload;
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.state === STATE_HEADER) {
        if (this.headerFill === 0 && end - off >= HEADER_SIZE) {
          // Fast path: the whole header is in this chunk.
          const version = chunk[off]!;
          if (version !== FRAME_VERSION) checkVersion(version);
          const type = chunk[off + 1]!;
          if (type < 1 || type > 7) checkType(type);
          const length = chunk.readUInt32BE(off + 8);
          if (length > max) checkLength(length, max);
          const id = chunk.readUInt32BE(off + 4);
          const flags = chunk.readUInt16BE(off + 2);
          off += HEADER_SIZE;
          if (end - off >= length) {
            emit(type as FrameTypeValue, flags, id, chunk, off, off + length);
            off += length;
            continue;
          }
          this.type = type as FrameTypeValue;
          this.flags = flags;
          this.id = id;
          this.length = length;
          this.state = STATE_PAYLOAD;
          continue;
        }
        // Slow path: the header arrives in pieces. Check each field as soon as its bytes are here.
        const n = Math.min(HEADER_SIZE - this.headerFill, end - off);
        chunk.copy(this.header, this.headerFill, off, off + n);
        const before = this.headerFill;
        this.headerFill += n;
        off += n;
        if (before < 1) checkVersion(this.header[0]!);
        if (before < 2 && this.headerFill >= 2) checkType(this.header[1]!);
        if (this.headerFill < HEADER_SIZE) return;
        const h = readHeader(this.header);
        checkLength(h.length, max);
        this.headerFill = 0;
        this.type = h.type as FrameTypeValue;
        this.flags = h.flags;
        this.id = h.id;
        this.length = h.length;
        if (h.length === 0) {
          emit(this.type, h.flags, h.id, EMPTY, 0, 0);
          continue;
        }
        this.state = STATE_PAYLOAD;
        continue;
      }
      // STATE_PAYLOAD
      const need = this.length - this.partsFill;
      const available = end - off;
      if (this.partsFill === 0 && available >= need) {
        emit(this.type, this.flags, this.id, chunk, off, off + need);
        off += need;
        this.state = STATE_HEADER;
        continue;
      }
      const take = Math.min(need, available);
      this.parts.push(chunk.subarray(off, off + take));
      this.partsFill += take;
      off += take;
      if (this.partsFill < this.length) return;
      // The frame spanned chunks: the one copy.
      const payload = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length);
      this.parts = [];
      this.partsFill = 0;
      this.state = STATE_HEADER;
      emit(this.type, this.flags, this.id, payload, 0, payload.length);
    }
  }
}

// ---- payloads ----

export interface RequestPayload {
  method: string;
  body: Buffer;
}

/** Methods are printable ASCII without spaces. */
const METHOD_RE = /^[\x21-\x7e]+$/;

/** `method SP body`; a payload without a space is a method with an empty body. */
export function parseRequest(payload: Buffer): RequestPayload {
  const sp = payload.indexOf(0x20);
  const method = payload.toString('latin1', 0, sp === -1 ? payload.length : sp);
  if (!METHOD_RE.test(method)) throw new WirelabError('ERR_BAD_REQUEST', method.length === 0 ? 'empty method name' : 'method name is not printable ASCII');
  return { method, body: sp === -1 ? EMPTY : payload.subarray(sp + 1) };
}

/** The request payload as parts (method and space, then the body uncopied). */
export function requestPayload(method: string, body: Uint8Array | string = EMPTY): Buffer[] {
  if (!METHOD_RE.test(method)) throw new WirelabError('ERR_BAD_REQUEST', `method '${method}' is not printable ASCII without spaces`);
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  if (b.byteLength === 0) return [Buffer.from(method, 'latin1')];
  return [Buffer.from(method + ' ', 'latin1'), Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)];
}

export interface ErrorPayload {
  code: number;
  message: string;
}

/** ERROR payload: a u16 code, then a UTF-8 message. */
export function errorPayload(code: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

export function parseError(payload: Buffer): ErrorPayload {
  if (payload.length < 2) throw new WirelabError('ERR_BAD_REQUEST', `ERROR payload of ${payload.length} bytes has no u16 code`);
  return { code: payload.readUInt16BE(0), message: payload.toString('utf8', 2) };
}

// ---- annotation for --trace ----

function preview(buf: Buffer, max = 24): string {
  const s = buf.toString('latin1', 0, Math.min(buf.length, max)).replace(/[^\x20-\x7e]/g, '.');
  return JSON.stringify(s) + (buf.length > max ? '...' : '');
}

/** One line naming a frame's fields, e.g. `version=1 type=REQUEST id=7 length=11 method=echo`. */
export function describeFrame(f: Frame): string {
  let s = `version=1 type=${typeName(f.type)} id=${f.id} length=${f.payload.length}`;
  if (f.flags) s += ` flags=0x${f.flags.toString(16)}`;
  if (f.type === FrameType.REQUEST) {
    const sp = f.payload.indexOf(0x20);
    s += ` method=${f.payload.toString('latin1', 0, sp === -1 ? f.payload.length : sp)}`;
    if (sp !== -1) s += ` body=${preview(f.payload.subarray(sp + 1))}`;
  } else if (f.type === FrameType.ERROR && f.payload.length >= 2) {
    const e = parseError(f.payload);
    s += ` code=${e.code} message=${JSON.stringify(e.message)}`;
  } else if (f.payload.length > 0) {
    s += ` payload=${preview(f.payload)}`;
  }
  return s;
}

/** An annotator factory for the socket tap: a decoder per direction that never throws. */
export function frameAnnotator(maxPayload = DEFAULT_MAX_PAYLOAD): () => (chunk: Buffer) => string[] {
  return () => {
    const decoder = new FrameDecoder({ maxPayload });
    return (chunk) => {
      if (decoder.failed) return [];
      try {
        return decoder.push(chunk).map(describeFrame);
      } catch (err) {
        return [`framing error ${(err as { code?: string }).code}: ${(err as Error).message}`];
      }
    };
  };
}
