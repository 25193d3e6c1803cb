// A hand-written HTTP/1.1 message codec (RFC 9112), pure: no sockets. RequestParser turns request bytes into
// whole requests (bodies are small and bounded, so they are buffered); ResponseParser turns response bytes
// into a head plus streamed body events (a server-sent-event stream never ends). Every limit is named and
// every rejection is a coded HttpError carrying the status code the server answers before it closes.
import { WirelabError, type ErrorCode } from '../errors.ts';
import { ChunkedDecoder } from './chunked.ts';
import type { Annotation } from '../trace/recorder.ts';

export interface HttpLimits {
  /** Request line, CRLF excluded (RFC 9112 section 3: a server that receives a longer one answers 414). */
  maxRequestLine: number;
  /** Header section after the request line, final CRLF included (RFC 6585 section 5: 431). */
  maxHeaderBytes: number;
  /** Request body by Content-Length or chunked (RFC 9110 section 15.5.14: 413). */
  maxBodyBytes: number;
  /** Header fields in one section. */
  maxHeaderCount: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxRequestLine: 8 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxHeaderCount: 100,
};

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  ERR_HTTP_MALFORMED: 400,
  ERR_HTTP_SMUGGLING: 400,
  ERR_HTTP_BAD_CONTENT_LENGTH: 400,
  ERR_HTTP_BAD_CHUNK: 400,
  ERR_HTTP_HEADER_TIMEOUT: 408,
  ERR_HTTP_LENGTH_REQUIRED: 411,
  ERR_HTTP_BODY_TOO_LARGE: 413,
  ERR_HTTP_URI_TOO_LONG: 414,
  ERR_HTTP_HEADER_TOO_LARGE: 431,
  ERR_HTTP_UNSUPPORTED_TRANSFER_ENCODING: 501,
  ERR_HTTP_VERSION_NOT_SUPPORTED: 505,
};

/** A rejected message: the code is the contract, status is what the server answers before closing. */
export class HttpError extends WirelabError {
  readonly status: number;
  constructor(code: ErrorCode, message: string, status?: number) {
    super(code, message);
    this.status = status ?? STATUS_OF[code] ?? 400;
  }
}

export const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 304: 'Not Modified',
  400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 411: 'Length Required',
  413: 'Content Too Large', 414: 'URI Too Long', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  501: 'Not Implemented', 503: 'Service Unavailable', 505: 'HTTP Version Not Supported',
};

export type HeaderList = [name: string, value: string][];

export interface HttpRequest {
  method: string;
  /** The request-target as sent (origin-form for everything we serve). */
  target: string;
  path: string;
  query: URLSearchParams;
  /** 'HTTP/1.1' or 'HTTP/1.0'. */
  version: string;
  /** Field names lower-cased, in order, duplicates kept. */
  headers: HeaderList;
  body: Buffer;
  /** Whether the connection stays open after the response (RFC 9112 section 9.3). */
  keepAlive: boolean;
  /** Bytes this request took on the wire. */
  wireBytes: number;
}

/** The first value of a header (names are lower case). */
export function header(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}

function headerValues(headers: HeaderList, name: string): string[] {
  return headers.filter(([n]) => n === name).map(([, v]) => v);
}

/** Whether a comma-separated header such as Connection lists a token (case-insensitive). */
export function hasToken(headers: HeaderList, name: string, token: string): boolean {
  return headerValues(headers, name).some((v) => v.split(',').some((t) => t.trim().toLowerCase() === token));
}

// RFC 9110 section 5.6.2: token = 1*tchar
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 section 5.5: field-vchar = VCHAR / obs-text, with SP and HTAB inside the value; no CTLs.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// RFC 9112 section 3.2: origin-form or asterisk-form (absolute-form is for proxies; we are not one).
const TARGET = /^(\/[\x21-\x7e]*|\*)$/;

function malformed(message: string): HttpError {
  return new HttpError('ERR_HTTP_MALFORMED', message);
}

/** Splits a header block (CRLF-separated lines, no final empty line) into fields, RFC 9112 section 5. */
function parseFieldLines(lines: string[], limits: HttpLimits): HeaderList {
  if (lines.length > limits.maxHeaderCount) throw new HttpError('ERR_HTTP_HEADER_TOO_LARGE', `more than ${limits.maxHeaderCount} header fields`);
  const headers: HeaderList = [];
  for (const line of lines) {
    // RFC 9112 section 5.2: obs-fold is deprecated; a server MUST reject it with 400 (or unfold it; we reject).
    if (line[0] === ' ' || line[0] === '\t') throw malformed('obsolete line folding in a header');
    const colon = line.indexOf(':');
    if (colon === -1) throw malformed('header field without a colon');
    const name = line.slice(0, colon);
    // RFC 9112 section 5.1: no whitespace between field name and colon; a server MUST reject it with 400.
    if (!TOKEN.test(name)) throw malformed(/[ \t]$/.test(name) ? 'whitespace before the colon in a header' : 'bad header field name');
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw malformed(`bad character in header '${name}'`);
    headers.push([name.toLowerCase(), value]);
  }
  return headers;
}

/**
 * Scans for the end of a head section (CRLF CRLF), refusing bare LF and bare CR as it goes (RFC 9112
 * section 2.2 lets a recipient accept a bare LF; we do not, since lenient framing is how smuggling starts).
 */
class HeadScanner {
  private parts: Buffer[] = [];
  private size = 0;
  private lastByte = -1;
  /** Bytes from the start of the current line. */
  private lineStart = 0;
  firstLineEnd = -1;

  get length(): number {
    return this.size;
  }

  /** Consumes bytes up to the end of the head; returns the whole head (copied once) and the bytes used, or null. */
  push(buf: Buffer, onLine: (lineLength: number, index: number, total: number) => void): { head: Buffer; used: number } | null {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i]!;
      if (this.lastByte === 0x0d && b !== 0x0a) throw malformed('bare CR in the head');
      if (b === 0x0a) {
        if (this.lastByte !== 0x0d) throw malformed('bare LF in the head (CRLF required)');
        const pos = this.size + i + 1;
        const lineLength = pos - this.lineStart - 2;
        onLine(lineLength, this.firstLineEnd === -1 ? 0 : 1, pos);
        if (this.firstLineEnd === -1) this.firstLineEnd = pos;
        this.lineStart = pos;
        if (lineLength === 0) {
          this.parts.push(buf.subarray(0, i + 1));
          const head = Buffer.concat(this.parts);
          this.parts = [];
          return { head, used: i + 1 };
        }
      } else if (b === 0) {
        throw malformed('NUL in the head');
      }
      this.lastByte = b;
    }
    this.parts.push(buf);
    this.size += buf.length;
    onLine(this.size - this.lineStart, this.firstLineEnd === -1 ? 0 : 1, this.size);
    return null;
  }
}

/** Empty lines tolerated before a request line (bounded so CRLF floods cannot keep a connection busy). */
const MAX_BLANK_LINES = 8;

type ReqState = 'head' | 'body-length' | 'body-chunked' | 'dead';

/**
 * Incremental request parser: push() takes any slice of the byte stream (a request split at any byte works)
 * and returns the requests it completed, in order. Throws HttpError; after that it is dead.
 */
export class RequestParser {
  readonly limits: HttpLimits;
  private state: ReqState = 'head';
  private scanner = new HeadScanner();
  private pending: ParsedRequest | null = null;
  private bodyParts: Buffer[] = [];
  private bodySize = 0;
  private bodyRemaining = 0;
  private chunked: ChunkedDecoder | null = null;
  private headBytes = 0;
  private skippingBlankLines = true;
  private blankCr = false;
  private blankLines = 0;

  constructor(limits: Partial<HttpLimits> = {}) {
    // A complete limits object (the server's) is shared, not copied: one per server, not one per connection.
    const complete = (Object.keys(DEFAULT_HTTP_LIMITS) as (keyof HttpLimits)[]).every((k) => typeof limits[k] === 'number');
    this.limits = complete ? (limits as HttpLimits) : { ...DEFAULT_HTTP_LIMITS, ...limits };
  }

  /** True while a request has started arriving but is not complete (for the header timeout). */
  get inProgress(): boolean {
    return this.state !== 'head' || this.scanner.length > 0 || this.blankCr || this.blankLines > 0;
  }

  get headComplete(): boolean {
    return this.state === 'body-length' || this.state === 'body-chunked';
  }

  /** An error found after requests that push() returned: the caller must answer it after them. */
  error: HttpError | null = null;

  push(chunk: Buffer): HttpRequest[] {
    if (this.error) throw this.error;
    if (this.state === 'dead') throw malformed('parser already failed');
    const out: HttpRequest[] = [];
    try {
      let buf = chunk;
      while (buf.length > 0) {
        if (this.state === 'head') {
          // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before the request-line.
          if (this.skippingBlankLines) {
            let i = 0;
            while (i < buf.length) {
              const b = buf[i]!;
              if (this.blankCr) {
                if (b !== 0x0a) throw malformed('bare CR before the request line');
                this.blankCr = false;
                if (++this.blankLines > MAX_BLANK_LINES) throw malformed('too many empty lines before the request line');
              } else if (b === 0x0d) this.blankCr = true;
              else if (b === 0x0a) throw malformed('bare LF before the request line');
              else break;
              i++;
            }
            buf = buf.subarray(i);
            if (buf.length === 0) return out;
            this.skippingBlankLines = false;
          }
          const found = this.scanner.push(buf, (len, index, total) => {
            if (index === 0 && len > this.limits.maxRequestLine) throw new HttpError('ERR_HTTP_URI_TOO_LONG', `request line over ${this.limits.maxRequestLine} bytes`);
            if (index === 1 && total - this.scanner.firstLineEnd > this.limits.maxHeaderBytes) throw new HttpError('ERR_HTTP_HEADER_TOO_LARGE', `header section over ${this.limits.maxHeaderBytes} bytes`);
          });
          if (!found) return out;
          this.headBytes = found.head.length;
          this.scanner = new HeadScanner();
          buf = buf.subarray(found.used);
          const done = this.startRequest(found.head);
          if (done) out.push(done);
        } else if (this.state === 'body-length') {
          const n = Math.min(this.bodyRemaining, buf.length);
          this.bodyParts.push(buf.subarray(0, n));
          this.bodyRemaining -= n;
          buf = buf.subarray(n);
          if (this.bodyRemaining === 0) out.push(this.finish());
        } else if (this.state === 'body-chunked') {
          const { events, consumed } = this.chunked!.push(buf);
          buf = buf.subarray(consumed);
          for (const e of events) {
            if (e.type === 'chunk' && this.bodySize + e.size > this.limits.maxBodyBytes) {
              throw new HttpError('ERR_HTTP_BODY_TOO_LARGE', `chunked body over ${this.limits.maxBodyBytes} bytes`);
            }
            if (e.type === 'data') {
              this.bodyParts.push(e.data);
              this.bodySize += e.data.length;
            }
            // Chunk framing bytes count toward the wire size; track it as consumed bytes.
          }
          this.headBytes += consumed;
          if (this.chunked!.done) out.push(this.finish());
        }
      }
    } catch (err) {
      this.state = 'dead';
      // The chunked decoder throws plain coded errors: give them their status.
      const e = err instanceof HttpError ? err : err instanceof WirelabError ? new HttpError(err.code, err.message) : err;
      if (out.length === 0) throw e;
      // Good requests came before the bad bytes: hand them over; the error waits in `error` and is thrown by
      // the next push, so a server answers them in order before it answers the error (RFC 9112 section 9.3.2).
      this.error = e as HttpError;
    }
    return out;
  }

  private startRequest(head: Buffer): HttpRequest | null {
    const lines = head.toString('latin1', 0, head.length - 4).split('\r\n');
    const requestLine = lines.shift()!;
    // RFC 9112 section 3: request-line = method SP request-target SP HTTP-version, single spaces.
    const parts = requestLine.split(' ');
    if (parts.length !== 3) throw malformed('request line is not METHOD SP TARGET SP VERSION');
    const [method, target, version] = parts as [string, string, string];
    if (!TOKEN.test(method)) throw malformed('bad method');
    if (!/^HTTP\/\d\.\d$/.test(version)) throw malformed('bad HTTP version');
    if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') throw new HttpError('ERR_HTTP_VERSION_NOT_SUPPORTED', `${version} is not supported`);
    if (!TARGET.test(target)) throw malformed('bad request target');
    const headers = parseFieldLines(lines, this.limits);
    // RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host or with more than one.
    const hosts = headerValues(headers, 'host');
    if (hosts.length > 1 || (version === 'HTTP/1.1' && hosts.length === 0)) throw malformed('HTTP/1.1 needs exactly one Host header');
    const keepAlive = version === 'HTTP/1.1' ? !hasToken(headers, 'connection', 'close') : hasToken(headers, 'connection', 'keep-alive');
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    this.pending = new ParsedRequest(method, target, path, q, version, headers, keepAlive);
    this.bodyParts = [];
    this.bodySize = 0;

    const te = headerValues(headers, 'transfer-encoding');
    const cl = headerValues(headers, 'content-length');
    if (te.length > 0) {
      // RFC 9112 section 6.1: a server MAY reject a request with both as a smuggling attempt; it ought to
      // be handled as an error, and the connection MUST be closed afterwards. We refuse it.
      if (cl.length > 0) throw new HttpError('ERR_HTTP_SMUGGLING', 'both Transfer-Encoding and Content-Length');
      if (version === 'HTTP/1.0') throw new HttpError('ERR_HTTP_SMUGGLING', 'Transfer-Encoding in an HTTP/1.0 request');
      const codings = te.join(',').split(',').map((c) => c.trim().toLowerCase());
      // RFC 9112 section 6.3: if chunked is not the final coding of a request, answer 400 and close.
      if (codings[codings.length - 1] !== 'chunked') throw new HttpError('ERR_HTTP_SMUGGLING', 'chunked is not the final transfer coding');
      if (codings.length !== 1) throw new HttpError('ERR_HTTP_UNSUPPORTED_TRANSFER_ENCODING', `transfer coding '${codings[0]}' not implemented`);
      this.chunked = new ChunkedDecoder(this.limits.maxHeaderBytes);
      this.state = 'body-chunked';
      return null;
    }
    let length = 0;
    if (cl.length > 0) {
      // RFC 9112 section 6.3 item 5: a list of identical values may be taken as one; anything else is invalid framing.
      const values = cl.join(',').split(',').map((v) => v.trim());
      if (!values.every((v) => /^\d+$/.test(v))) throw new HttpError('ERR_HTTP_BAD_CONTENT_LENGTH', 'Content-Length is not a number');
      if (!values.every((v) => v === values[0])) throw new HttpError('ERR_HTTP_BAD_CONTENT_LENGTH', 'conflicting Content-Length values');
      const digits = values[0]!.replace(/^0+(?=\d)/, '');
      // Checked before a byte of body is buffered: a huge value is refused, not counted down.
      if (digits.length > 15 || Number(digits) > this.limits.maxBodyBytes) throw new HttpError('ERR_HTTP_BODY_TOO_LARGE', `Content-Length ${digits.slice(0, 20)} over ${this.limits.maxBodyBytes}`);
      length = Number(digits);
    }
    if (length === 0) return this.finish();
    this.bodyRemaining = length;
    this.bodySize = length;
    this.state = 'body-length';
    return null;
  }

  private finish(): HttpRequest {
    const parts = this.bodyParts;
    // Copied out of the socket's read buffers so a kept request does not pin them; an empty body is shared.
    const body = parts.length === 0 ? EMPTY : parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
    const req = this.pending!;
    req.body = body;
    req.wireBytes = this.headBytes + (this.chunked ? 0 : body.length);
    this.pending = null;
    this.bodyParts = [];
    this.chunked = null;
    this.state = 'head';
    this.skippingBlankLines = true;
    this.blankLines = 0;
    return req;
  }
}

const EMPTY = Buffer.alloc(0);

/** A parsed request; the query is parsed on first use (most requests never look at it). */
class ParsedRequest implements HttpRequest {
  body: Buffer = EMPTY;
  wireBytes = 0;
  private parsedQuery: URLSearchParams | undefined;
  constructor(
    readonly method: string,
    readonly target: string,
    readonly path: string,
    private readonly queryAt: number,
    readonly version: string,
    readonly headers: HeaderList,
    readonly keepAlive: boolean,
  ) {}

  get query(): URLSearchParams {
    this.parsedQuery ??= new URLSearchParams(this.queryAt === -1 ? '' : this.target.slice(this.queryAt + 1));
    return this.parsedQuery;
  }
}

/** The status line and header section of a response, as one buffer. */
export function encodeResponseHead(status: number, headers: HeaderList, reason = STATUS_TEXT[status] ?? 'Unknown'): Buffer {
  let text = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [n, v] of headers) {
    if (!TOKEN.test(n) || !FIELD_VALUE.test(v)) throw new WirelabError('ERR_HTTP_BAD_RESPONSE', `bad response header '${n}'`);
    text += `${n}: ${v}\r\n`;
  }
  return Buffer.from(text + '\r\n', 'latin1');
}

/** A request's head (for our own clients): origin-form target, Host first. */
export function encodeRequestHead(method: string, target: string, headers: HeaderList): Buffer {
  if (!TOKEN.test(method) || !TARGET.test(target)) throw new WirelabError('ERR_BAD_ARGS', `bad request line ${method} ${target}`);
  let text = `${method} ${target} HTTP/1.1\r\n`;
  for (const [n, v] of headers) {
    if (!TOKEN.test(n) || !FIELD_VALUE.test(v)) throw new WirelabError('ERR_BAD_ARGS', `bad request header '${n}'`);
    text += `${n}: ${v}\r\n`;
  }
  return Buffer.from(text + '\r\n', 'latin1');
}

export interface ResponseHead {
  status: number;
  reason: string;
  version: string;
  headers: HeaderList;
  /** How the body is delimited (RFC 9112 section 6.3). */
  framing: 'none' | 'length' | 'chunked' | 'close';
  contentLength?: number;
}

export type ResponseEvent =
  | { type: 'head'; head: ResponseHead }
  | { type: 'chunk'; size: number }
  | { type: 'data'; data: Buffer }
  | { type: 'end' };

function badResponse(message: string): HttpError {
  return new HttpError('ERR_HTTP_BAD_RESPONSE', message, 502);
}

/**
 * Incremental response parser for our own clients and the trace annotator. Call expect(method) before each
 * response so a HEAD response is known to have no body (RFC 9112 section 6.3 item 1).
 */
export class ResponseParser {
  private scanner = new HeadScanner();
  private state: 'head' | 'length' | 'chunked' | 'close' | 'dead' = 'head';
  private remaining = 0;
  private chunked: ChunkedDecoder | null = null;
  private methods: string[] = [];

  constructor(private readonly maxHeadBytes = 64 * 1024) {}

  expect(method: string): void {
    this.methods.push(method);
  }

  /** Inside a chunked body, between two chunks (the previous one fully read, its CRLF included). */
  get atChunkBoundary(): boolean {
    return this.state === 'chunked' && this.chunked!.atChunkBoundary;
  }

  push(chunk: Buffer): ResponseEvent[] {
    if (this.state === 'dead') throw badResponse('parser already failed');
    const out: ResponseEvent[] = [];
    let buf = chunk;
    try {
      while (buf.length > 0) {
        if (this.state === 'head') {
          const found = this.scanner.push(buf, (_len, _i, total) => {
            if (total > this.maxHeadBytes) throw badResponse('response head too large');
          });
          if (!found) return out;
          this.scanner = new HeadScanner();
          buf = buf.subarray(found.used);
          const head = this.parseHead(found.head);
          out.push({ type: 'head', head });
          if (head.status < 200) continue; // 1xx: another head follows
          this.methods.shift();
          if (head.framing === 'none' || (head.framing === 'length' && head.contentLength === 0)) {
            out.push({ type: 'end' });
          } else if (head.framing === 'length') {
            this.remaining = head.contentLength!;
            this.state = 'length';
          } else if (head.framing === 'chunked') {
            this.chunked = new ChunkedDecoder(this.maxHeadBytes);
            this.state = 'chunked';
          } else {
            this.state = 'close';
          }
        } else if (this.state === 'length') {
          const n = Math.min(this.remaining, buf.length);
          out.push({ type: 'data', data: buf.subarray(0, n) });
          this.remaining -= n;
          buf = buf.subarray(n);
          if (this.remaining === 0) {
            out.push({ type: 'end' });
            this.state = 'head';
          }
        } else if (this.state === 'chunked') {
          const { events, consumed } = this.chunked!.push(buf);
          buf = buf.subarray(consumed);
          for (const e of events) {
            if (e.type === 'chunk') out.push({ type: 'chunk', size: e.size });
            else if (e.type === 'data') out.push(e);
          }
          if (this.chunked!.done) {
            out.push({ type: 'end' });
            this.state = 'head';
            this.chunked = null;
          }
        } else {
          out.push({ type: 'data', data: buf });
          buf = buf.subarray(buf.length);
        }
      }
    } catch (err) {
      this.state = 'dead';
      throw err instanceof HttpError ? new HttpError(err.code === 'ERR_HTTP_BAD_CHUNK' ? 'ERR_HTTP_BAD_CHUNK' : 'ERR_HTTP_BAD_RESPONSE', err.message, 502) : err;
    }
    return out;
  }

  /** The connection closed: ends a close-delimited body; anything else mid-message is a truncation. */
  close(): ResponseEvent[] {
    if (this.state === 'close') {
      this.state = 'dead';
      return [{ type: 'end' }];
    }
    return [];
  }

  get midMessage(): boolean {
    return this.state !== 'head' || this.scanner.length > 0;
  }

  private parseHead(head: Buffer): ResponseHead {
    const lines = head.toString('latin1', 0, head.length - 4).split('\r\n');
    const m = /^(HTTP\/1\.[01]) (\d{3}) ?(.*)$/.exec(lines.shift()!);
    if (!m) throw badResponse('bad status line');
    const headers = parseFieldLines(lines, { ...DEFAULT_HTTP_LIMITS, maxHeaderCount: 1000 });
    const status = Number(m[2]);
    const method = this.methods[0] ?? 'GET';
    let framing: ResponseHead['framing'];
    let contentLength: number | undefined;
    const te = header(headers, 'transfer-encoding');
    const cl = header(headers, 'content-length');
    if (method === 'HEAD' || status < 200 || status === 204 || status === 304) framing = 'none';
    else if (te !== undefined) framing = te.trim().toLowerCase().endsWith('chunked') ? 'chunked' : 'close';
    else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) throw badResponse('bad Content-Length');
      framing = 'length';
      contentLength = Number(cl);
    } else framing = 'close';
    return { status, reason: m[3]!, version: m[1]!, headers, framing, contentLength };
  }
}

/**
 * The --trace annotator. Notes (--trace): one line per request line / status line with its header count,
 * one per chunk size (the chunk framing is one more length prefix), where each starts. Units (--diagram):
 * one short label per message, in the chunk that completes it (`GET /jobs/1`, `202 Accepted`); a chunked
 * response is its head (`200 OK chunked`), then one unit per chunk (`chunk 65`, `last chunk`), so a
 * stream that never ends still draws. Direction is told by the first bytes.
 */
export function httpAnnotator(): () => (chunk: Buffer) => Annotation {
  return () => {
    let kind: 'request' | 'response' | null = null;
    let req: RequestParser | null = null;
    let res: ResponseParser | null = null;
    let failed = false;
    /** The unit whose last byte has not been seen yet. */
    let open: string | null = null;
    return (chunk) => {
      if (failed) return { notes: [], units: [] };
      if (kind === null) {
        kind = chunk.subarray(0, 5).toString('latin1') === 'HTTP/' ? 'response' : 'request';
        if (kind === 'request') req = new RequestParser({ maxBodyBytes: Number.MAX_SAFE_INTEGER });
        else res = new ResponseParser();
      }
      try {
        if (req) {
          const done = req.push(chunk);
          return {
            notes: done.map((r) => `${r.method} ${r.target} ${r.version} (${r.headers.length} headers, body ${r.body.length} bytes)`),
            units: done.map((r) => `${r.method} ${r.target}`),
          };
        }
        const notes: string[] = [];
        const units: string[] = [];
        const close = () => {
          if (open !== null) units.push(open);
          open = null;
        };
        for (const e of res!.push(chunk)) {
          if (e.type === 'head') {
            const h = e.head;
            const body = h.framing === 'length' ? `Content-Length ${h.contentLength}` : h.framing === 'chunked' ? 'chunked' : h.framing === 'close' ? 'body until close' : 'no body';
            notes.push(`${h.version} ${h.status} ${h.reason} (${h.headers.length} headers, ${body})`);
            const label = `${h.status} ${h.reason}`;
            // A Content-Length message is one unit, complete with its body; the others are complete here.
            if (h.framing === 'length' && h.contentLength! > 0 && h.status >= 200) open = label;
            else units.push(h.framing === 'chunked' ? `${label} chunked` : label);
          } else if (e.type === 'chunk') {
            notes.push(e.size === 0 ? 'chunk size 0x0: last chunk' : `chunk size 0x${e.size.toString(16)} (${e.size} bytes)`);
            close();
            open = e.size === 0 ? 'last chunk' : `chunk ${e.size}`;
          } else if (e.type === 'end') {
            close();
          }
        }
        if (res!.atChunkBoundary) close();
        return { notes, units };
      } catch (err) {
        failed = true;
        return { notes: [`unparsable: ${(err as Error).message}`], units: ['unparsable'] };
      }
    };
  };
}
