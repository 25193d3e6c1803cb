// HTTP/1.1 chunked transfer coding (RFC 9112 section 7.1): each chunk is a hex length line, the bytes, CRLF;
// a zero-length chunk and an optional trailer section end the body. The chunk framing is one more length
// prefix on the wire, which --trace annotates.
import { WirelabError } from '../errors.ts';

const CRLF = Buffer.from('\r\n');
/** The last chunk with an empty trailer section (RFC 9112 section 7.1). */
export const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** Longest chunk-size line we accept, extensions included (RFC 9112 section 7.1.1 lets a server limit it). */
export const MAX_CHUNK_LINE = 1024;
/** More hex digits than this cannot be a size we would accept (2^52 is already far past any body limit). */
const MAX_SIZE_DIGITS = 13;

/** The three buffers of one chunk, to be written corked: size line, payload, CRLF. Empty data is refused (it would end the body). */
export function encodeChunk(data: Uint8Array): Buffer[] {
  if (data.byteLength === 0) throw new WirelabError('ERR_HTTP_BAD_CHUNK', 'a zero-length chunk ends the body: use LAST_CHUNK');
  return [Buffer.from(data.byteLength.toString(16) + '\r\n', 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength), CRLF];
}

/** One chunk as a single buffer (for fan-out: frame once, write the same bytes to every connection). */
export function encodeChunkBuffer(data: Uint8Array): Buffer {
  return Buffer.concat(encodeChunk(data));
}

export function chunkEncodingLength(size: number): number {
  return size === 0 ? LAST_CHUNK.length : size.toString(16).length + 2 + size + 2;
}

export type ChunkEvent =
  | { type: 'chunk'; size: number; ext: string }
  | { type: 'data'; data: Buffer }
  | { type: 'end'; trailers: [string, string][] };

const enum State {
  SIZE,
  DATA,
  DATA_CR,
  DATA_LF,
  TRAILER,
  DONE,
}

function badChunk(message: string): WirelabError {
  return new WirelabError('ERR_HTTP_BAD_CHUNK', message);
}

/**
 * Incremental chunked-body decoder. push() returns events in order; the payload comes out as views of the
 * input (no copy). After an error it is dead: the connection must be closed, never resynced.
 */
export class ChunkedDecoder {
  private state = State.SIZE;
  private line = '';
  private remaining = 0;
  private trailerBytes = 0;
  private readonly trailers: [string, string][] = [];
  private failed = false;

  constructor(private readonly maxTrailerBytes = 16 * 1024) {}

  get done(): boolean {
    return this.state === State.DONE;
  }

  /** Between chunks: the last chunk's CRLF is consumed and no byte of the next size line is held. */
  get atChunkBoundary(): boolean {
    return this.state === State.SIZE && this.line === '';
  }

  /** Returns the events for this chunk and how many input bytes were consumed (bytes after the body are left). */
  push(buf: Buffer): { events: ChunkEvent[]; consumed: number } {
    if (this.failed) throw badChunk('decoder already failed');
    const events: ChunkEvent[] = [];
    let i = 0;
    try {
      while (i < buf.length && this.state !== State.DONE) {
        switch (this.state) {
          case State.SIZE:
          case State.TRAILER: {
            const lf = buf.indexOf(0x0a, i);
            const end = lf === -1 ? buf.length : lf + 1;
            this.line += buf.toString('latin1', i, end);
            i = end;
            const limit = this.state === State.SIZE ? MAX_CHUNK_LINE : this.maxTrailerBytes - this.trailerBytes;
            if (this.line.length > limit) throw badChunk(this.state === State.SIZE ? 'chunk-size line too long' : 'trailer section too large');
            if (lf === -1) break;
            if (!this.line.endsWith('\r\n')) throw badChunk('bare LF in chunk framing (RFC 9112 section 7.1 requires CRLF)');
            const text = this.line.slice(0, -2);
            this.line = '';
            if (this.state === State.SIZE) this.sizeLine(text, events);
            else this.trailerLine(text, events);
            break;
          }
          case State.DATA: {
            const n = Math.min(this.remaining, buf.length - i);
            events.push({ type: 'data', data: buf.subarray(i, i + n) });
            this.remaining -= n;
            i += n;
            if (this.remaining === 0) this.state = State.DATA_CR;
            break;
          }
          case State.DATA_CR:
            if (buf[i] !== 0x0d) throw badChunk('chunk data not followed by CRLF');
            i++;
            this.state = State.DATA_LF;
            break;
          case State.DATA_LF:
            if (buf[i] !== 0x0a) throw badChunk('chunk data not followed by CRLF');
            i++;
            this.state = State.SIZE;
            break;
        }
      }
    } catch (err) {
      this.failed = true;
      throw err;
    }
    return { events, consumed: i };
  }

  private sizeLine(text: string, events: ChunkEvent[]): void {
    // chunk = chunk-size [ chunk-ext ] CRLF; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
    const semi = text.indexOf(';');
    const hex = (semi === -1 ? text : text.slice(0, semi)).replace(/[ \t]+$/, '');
    if (!/^[0-9a-fA-F]+$/.test(hex)) throw badChunk(`bad chunk size '${hex.slice(0, 20)}'`);
    if (hex.replace(/^0+(?=.)/, '').length > MAX_SIZE_DIGITS) throw badChunk('chunk size too large');
    const size = parseInt(hex, 16);
    const ext = semi === -1 ? '' : text.slice(semi);
    events.push({ type: 'chunk', size, ext });
    if (size === 0) {
      this.state = State.TRAILER;
    } else {
      this.remaining = size;
      this.state = State.DATA;
    }
  }

  private trailerLine(text: string, events: ChunkEvent[]): void {
    this.trailerBytes += text.length + 2;
    if (text === '') {
      this.state = State.DONE;
      events.push({ type: 'end', trailers: this.trailers });
      return;
    }
    const colon = text.indexOf(':');
    if (colon <= 0 || /[ \t]/.test(text.slice(0, colon))) throw badChunk('malformed trailer field');
    this.trailers.push([text.slice(0, colon).toLowerCase(), text.slice(colon + 1).trim()]);
  }
}
