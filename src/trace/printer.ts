// --trace: prints each recorded chunk in curl's --trace layout as it happens.
import { curlBlock } from './hexdump.ts';
import type { Recorder, WireEvent } from './recorder.ts';

export interface TracePrinterOptions {
  /** Prefix each block with a wall-clock time, as curl --trace-time does (HH:MM:SS.uuuuuu). */
  time?: boolean;
  write: (text: string) => void;
  /** Dim the annotation lines (colour); identity when colour is off. */
  dim?: (text: string) => string;
}

export function traceTime(wallUs: number): string {
  const d = new Date(Math.floor(wallUs / 1000));
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(wallUs % 1_000_000, 6)} `;
}

function who(e: WireEvent): string {
  const arrow = e.kind === 'recv' ? '<-' : '->';
  return `[${e.side} #${e.conn}] ${e.local.address}:${e.local.port} ${arrow} ${e.remote.address}:${e.remote.port}`;
}

export function formatTraceEvent(e: WireEvent, options: Omit<TracePrinterOptions, 'write'> = {}): string {
  const stamp = options.time ? traceTime(e.wallUs) : '';
  const dim = options.dim ?? ((s: string) => s);
  const proto = e.transport.toUpperCase();
  if (e.kind === 'open') return `${stamp}== Info: [${e.side} #${e.conn}] ${proto} ${e.local.address}:${e.local.port} <-> ${e.remote.address}:${e.remote.port} open\n`;
  if (e.kind === 'close') return `${stamp}== Info: [${e.side} #${e.conn}] ${proto} closed\n`;
  const data = e.data ?? Buffer.alloc(0);
  let out = `${stamp}== Info: ${who(e)}\n${stamp}${curlBlock(e.kind, data)}`;
  for (const note of e.notes ?? []) out += dim(`   ^ ${note}`) + '\n';
  return out;
}

export function attachTracePrinter(recorder: Recorder, options: TracePrinterOptions): void {
  recorder.onEvent((e) => options.write(formatTraceEvent(e, options)));
}
