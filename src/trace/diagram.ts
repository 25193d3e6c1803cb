// --diagram: a sequence diagram in the terminal, drawn from the same recorded events as --trace and
// --pcap. One arrow per protocol unit (a frame, a datagram, an HTTP message: whatever the socket's
// annotator names in the event's units, or else its notes), with its time offset; connects and closes
// as double lines. A label too long for its arrow is written after the arrowhead.
//
//     time  conn  client                                          server :7070
//  0.000ms   #1   |============== connect 127.0.0.1:51234 =========>|
//  0.412ms   #1   |------------- REQUEST id=1 echo ---------------->|
//  0.655ms   #1   |<------------ RESPONSE id=1 ----------------------|
import type { Endpoint, WireEvent } from './recorder.ts';

export interface DiagramOptions {
  /** Total width in columns (default 78). */
  width?: number;
  /** Turns one annotation note into an arrow label (default: shortLabel). */
  label?: (note: string) => string;
}

/** One arrow of the diagram, in time order. */
export interface DiagramArrow {
  /** Milliseconds since the first event. */
  t: number;
  /** Connection (TCP) or flow (UDP) number, from 1 in order of appearance. */
  conn: number;
  from: 'client' | 'server';
  /** The server column this arrow touches (index into `servers`). */
  server: number;
  kind: 'open' | 'data' | 'close';
  label: string;
}

export interface Diagram {
  servers: string[];
  arrows: DiagramArrow[];
}

/**
 * `version=1 type=REQUEST id=3 length=9 method=echo body="hi"` -> `REQUEST id=3 echo`; ERROR keeps its
 * code; other notes (other protocols' annotators) are kept as they are.
 */
export function shortLabel(note: string): string {
  const m = /^version=\d+ type=(\S+) id=(\d+) length=\d+(.*)$/.exec(note);
  if (!m) return note;
  const [, type, id, rest] = m as unknown as [string, string, string, string];
  let s = `${type} id=${id}`;
  const method = / method=(\S+)/.exec(rest);
  if (method) s += ` ${method[1]}`;
  const code = / code=(\d+)/.exec(rest);
  if (code) s += ` code=${code[1]}`;
  return s;
}

const norm = (e: Endpoint) => `${e.address.replace(/^::ffff:(?=\d+\.)/i, '')}|${e.port}`;
const show = (e: Endpoint) => {
  const a = e.address.replace(/^::ffff:(?=\d+\.)/i, '');
  return a.includes(':') ? `[${a}]:${e.port}` : `${a}:${e.port}`;
};

/** Which arrows to draw: each unit once, from the sender's record when the sender is tapped. */
export function buildDiagram(events: readonly WireEvent[], options: DiagramOptions = {}): Diagram {
  const label = options.label ?? shortLabel;
  const t0 = events[0]?.t ?? 0;
  // A connection or flow is named by its client and server endpoints, whichever tap recorded it.
  const ends = (e: WireEvent) => {
    const [client, server] = e.side === 'client' ? [e.local, e.remote] : [e.remote, e.local];
    return { client, server, id: `${e.transport}:${norm(client)}>${norm(server)}` };
  };
  // UDP sockets bound to the wildcard address record 0.0.0.0 locally; match flows by port then.
  const flowId = (e: WireEvent) => {
    const { client, server } = ends(e);
    return e.transport === 'udp' ? `udp:${client.port}>${server.port}` : ends(e).id;
  };
  const tapped = new Map<string, Set<string>>(); // flow -> sides with a tap
  for (const e of events) {
    const id = flowId(e);
    if (!tapped.has(id)) tapped.set(id, new Set());
    tapped.get(id)!.add(e.side);
  }
  const servers: string[] = [];
  const serverIndex = new Map<string, number>();
  const connNumber = new Map<string, number>();
  const closed = new Set<string>();
  // Per direction, the synchronous runs (batches) that carried bytes of the unit not yet complete: writes
  // made together (header and payload under cork) are one piece, a byte per timer tick is one piece each.
  const pending = new Map<string, Set<number | undefined>>();
  const arrows: DiagramArrow[] = [];
  for (const e of events) {
    const id = flowId(e);
    const { client, server } = ends(e);
    // By port: a DNS server answers UDP and TCP on one port, one column; wildcard UDP binds record 0.0.0.0.
    const serverKey = String(server.port);
    let si = serverIndex.get(serverKey);
    if (si === undefined) {
      si = servers.length;
      servers.push(show(server));
      serverIndex.set(serverKey, si);
    }
    let conn = connNumber.get(id);
    if (conn === undefined) connNumber.set(id, (conn = connNumber.size + 1));
    const t = e.t - t0;
    if (e.kind === 'open') {
      // Both taps record the open; draw the first only.
      if (arrows.some((a) => a.conn === conn && a.kind === 'open')) continue;
      arrows.push({ t, conn, from: 'client', server: si, kind: 'open', label: `connect ${show(client)}` });
      continue;
    }
    if (e.kind === 'close') {
      if (closed.has(id)) continue;
      closed.add(id);
      const from = e.closedBy === 'peer' ? (e.side === 'client' ? 'server' : 'client') : e.side;
      arrows.push({ t, conn, from, server: si, kind: 'close', label: 'close' });
      continue;
    }
    const senderSide = e.kind === 'send' ? e.side : e.side === 'client' ? 'server' : 'client';
    if (e.kind === 'recv' && tapped.get(id)!.has(senderSide)) continue; // the sender's record is drawn
    const dir = `${id}:${senderSide}`;
    const bytes = e.data?.length ?? 0;
    if (bytes === 0) continue; // an empty write (node:http ends a message with one) sends nothing
    const units = e.units ?? e.notes;
    if (units === undefined) {
      arrows.push({ t, conn, from: senderSide, server: si, kind: 'data', label: `${bytes} bytes` });
      continue;
    }
    const pieces = pending.get(dir) ?? new Set();
    // Events without a batch number (recorded elsewhere) count one piece each.
    pieces.add(e.batch ?? -pieces.size - 1);
    if (units.length === 0) {
      pending.set(dir, pieces);
      continue;
    }
    pending.set(dir, new Set());
    units.forEach((note, i) => {
      let text = label(note);
      if (i === 0 && pieces.size > 1) text += ` (in ${pieces.size} ${e.kind === 'send' ? 'writes' : 'reads'})`;
      else if (units.length > 1) text += ` (${i + 1}/${units.length} in one ${e.kind === 'send' ? 'write' : 'read'})`;
      arrows.push({ t, conn, from: senderSide, server: si, kind: 'data', label: text });
    });
  }
  return { servers, arrows };
}

function fmtTime(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(3)}s` : `${ms.toFixed(3)}ms`;
}

/** The diagram as text lines. */
export function renderDiagram(events: readonly WireEvent[], options: DiagramOptions = {}): string {
  const { servers, arrows } = buildDiagram(events, options);
  if (arrows.length === 0) return '(no traffic recorded)\n';
  const width = Math.max(40, options.width ?? 78);
  const timeW = Math.max(8, ...arrows.map((a) => fmtTime(a.t).length));
  const connW = Math.max(4, ...arrows.map((a) => `#${a.conn}`.length));
  const prefix = timeW + 1 + connW + 2;
  const laneW = width - prefix;
  // Column 0 is the client; the servers share the rest evenly, the last at the right edge.
  const cols = [0, ...servers.map((_, i) => Math.round(((i + 1) * (laneW - 1)) / servers.length))];
  const lines: string[] = [];
  const head = Array.from({ length: laneW }, () => ' ');
  const put = (row: string[], at: number, text: string) => {
    for (let i = 0; i < text.length && at + i < row.length; i++) if (at + i >= 0) row[at + i] = text[i]!;
  };
  put(head, 0, 'client');
  // Each server's name right-aligned on its column; when they do not fit side by side, short names
  // (s1, s2...) on the columns and a legend line per server above.
  const names = servers.map((s) => `server ${s}`);
  const fits = names.every((text, i) => cols[i + 1]! - text.length + 1 >= cols[i]! + (i === 0 ? 8 : 2));
  if (!fits) {
    servers.forEach((s, i) => lines.push(`${' '.repeat(prefix)}s${i + 1} = server ${s}`));
    names.forEach((_, i) => (names[i] = `s${i + 1}`));
  }
  names.forEach((text, i) => put(head, Math.max(cols[i]! + 1, cols[i + 1]! - text.length + 1), text));
  lines.push(`${'time'.padStart(timeW)} ${'conn'.padEnd(connW)}  ${head.join('').trimEnd()}`);
  const lanes = () => {
    const row = Array.from({ length: laneW }, () => ' ');
    for (const c of cols) row[c] = '|';
    return row;
  };
  lines.push(`${' '.repeat(prefix)}${lanes().join('').trimEnd()}`);
  for (const a of arrows) {
    const row = lanes();
    const sc = cols[a.server + 1]!;
    const [left, right] = [0, sc];
    const fill = a.kind === 'data' ? '-' : '=';
    for (let i = left + 1; i < right; i++) row[i] = fill;
    if (a.from === 'client') row[right - 1] = '>';
    else row[left + 1] = '<';
    const room = right - left - 5;
    const after = laneW - right - 2;
    if (a.label.length > room && after > room) {
      // Too long for the arrow: after the arrowhead, over the lanes further right, cut at the width.
      put(row, right + 2, a.label.length > after ? a.label.slice(0, after - 1) + '~' : a.label);
    } else {
      const text = ` ${a.label.length > room ? a.label.slice(0, Math.max(0, room - 1)) + '~' : a.label} `;
      put(row, left + Math.max(2, Math.floor((right - left - text.length) / 2)), text);
    }
    lines.push(`${fmtTime(a.t).padStart(timeW)} ${`#${a.conn}`.padEnd(connW)}  ${row.join('').trimEnd()}`);
  }
  return lines.join('\n') + '\n';
}
