// The text/event-stream format (WHATWG HTML, section 9.2 "Server-sent events"): UTF-8 lines of `field: value`,
// an empty line dispatches the event; lines starting with ':' are comments (heartbeats). Pure codec.
import { WirelabError } from '../errors.ts';

export interface SseEvent {
  id?: string;
  event?: string;
  /** May contain line breaks: each line becomes its own `data:` line. */
  data: string;
  /** Reconnection time the client should use, in ms (`retry:`). */
  retry?: number;
}

const LINE_BREAK = /\r\n|\r|\n/;

function checkField(name: string, value: string): void {
  // A line break would end the field early; the spec's parser also ignores an id containing NULL.
  if (/[\r\n]/.test(value) || (name === 'id' && value.includes('\0'))) {
    throw new WirelabError('ERR_SSE_BAD_FIELD', `${name} must not contain a line break${name === 'id' ? ' or NUL' : ''}`);
  }
}

/** One event as text, ending with the blank line that dispatches it. */
export function encodeEvent(e: SseEvent): string {
  let text = '';
  if (e.id !== undefined) {
    checkField('id', e.id);
    text += `id: ${e.id}\n`;
  }
  if (e.event !== undefined) {
    checkField('event', e.event);
    text += `event: ${e.event}\n`;
  }
  if (e.retry !== undefined) {
    if (!Number.isInteger(e.retry) || e.retry < 0) throw new WirelabError('ERR_SSE_BAD_FIELD', 'retry must be a whole number of ms');
    text += `retry: ${e.retry}\n`;
  }
  for (const line of e.data.split(LINE_BREAK)) text += `data: ${line}\n`;
  return text + '\n';
}

/** A comment line (ignored by clients; keeps idle proxies and NAT entries from timing the stream out). */
export function encodeComment(text = ''): string {
  return text.split(LINE_BREAK).map((l) => `:${l ? ' ' + l : ''}\n`).join('') + '\n';
}

export function encodeRetry(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) throw new WirelabError('ERR_SSE_BAD_FIELD', 'retry must be a whole number of ms');
  return `retry: ${ms}\n\n`;
}

export interface ParsedSseEvent {
  /** The last event ID after this event (sticky across events, as the spec says). */
  lastEventId: string;
  /** 'message' when no event field was given. */
  type: string;
  data: string;
}

/**
 * The spec's stream parser ("Interpreting an event stream"): CR, LF and CRLF line ends, a leading BOM dropped,
 * `retry` only when all digits, `id` with NUL ignored, an event with empty data not dispatched.
 */
export class SseParser {
  lastEventId = '';
  retry: number | undefined;
  comments = 0;
  private buffer = '';
  private pendingCr = false;
  private started = false;
  private data = '';
  private type = '';
  private readonly decoder = new TextDecoder('utf-8');

  constructor(private readonly maxLine = 1024 * 1024) {}

  push(bytes: Uint8Array): ParsedSseEvent[] {
    let text = this.decoder.decode(bytes, { stream: true });
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const out: ParsedSseEvent[] = [];
    let i = 0;
    if (this.pendingCr && text[0] === '\n') i = 1;
    this.pendingCr = false;
    while (i < text.length) {
      const cr = text.indexOf('\r', i);
      const lf = text.indexOf('\n', i);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) {
        this.buffer += text.slice(i);
        if (this.buffer.length > this.maxLine) throw new WirelabError('ERR_SSE_BAD_FIELD', 'event-stream line too long');
        break;
      }
      const line = this.buffer + text.slice(i, end);
      this.buffer = '';
      if (text[end] === '\r') {
        if (end + 1 === text.length) this.pendingCr = true;
        else if (text[end + 1] === '\n') i = end + 2;
        else i = end + 1;
        if (end + 1 === text.length) i = end + 1;
      } else i = end + 1;
      const e = this.line(line);
      if (e) out.push(e);
    }
    return out;
  }

  private line(line: string): ParsedSseEvent | null {
    if (line === '') {
      const data = this.data;
      const type = this.type;
      this.data = '';
      this.type = '';
      if (data === '') return null;
      return { lastEventId: this.lastEventId, type: type || 'message', data: data.endsWith('\n') ? data.slice(0, -1) : data };
    }
    if (line[0] === ':') {
      this.comments++;
      return null;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') this.data += value + '\n';
    else if (field === 'event') this.type = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastEventId = value;
    } else if (field === 'retry') {
      if (/^\d+$/.test(value)) this.retry = Number(value);
    }
    return null;
  }
}
