// What a lab says about its own traffic: the JSON lines of `--json --trace` (src/cli/lab.ts), parsed for
// the capture tests, which compare them with what tshark reads from the captures.
import * as assert from 'uvu/assert';
import { runLabProcess } from '../labs/_spawn.ts';

/** One `wire` event: a chunk or datagram as the lab's recorder saw it. */
export interface LabWireEvent {
  kind: 'open' | 'send' | 'recv' | 'close';
  transport: 'tcp' | 'udp';
  side: 'client' | 'server';
  conn: number;
  /** `ADDRESS:PORT` */
  local: string;
  remote: string;
  notes?: string[];
  units?: string[];
}

export interface LabJson {
  /** Every JSON line, in order. */
  events: Record<string, unknown>[];
  wire: LabWireEvent[];
}

/** The port of an `ADDRESS:PORT` endpoint (IPv6 addresses contain colons too). */
export const endpointPort = (endpoint: string): number => Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));

export function parseLabJson(stdout: string): LabJson {
  const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { events, wire: events.filter((e) => e.event === 'wire') as unknown as LabWireEvent[] };
}

/** An arrow of the lab's --diagram, as its JSON event lists them. */
export interface LabArrow {
  kind: string;
  label: string;
}

/**
 * Runs a lab once with `--json --trace --pcap FILE --diagram` (plus its own args) and parses what it says:
 * every JSON line, the wire events and the diagram's arrows. Fails the test if the lab does not exit 0.
 */
export async function runLabWithCapture(lab: string, args: string[], pcap: string): Promise<LabJson & { arrows: LabArrow[] }> {
  const r = await runLabProcess(lab, [...args, '--json', '--trace', '--pcap', pcap, '--diagram']);
  assert.is(r.code, 0, r.stderr);
  const parsed = parseLabJson(r.stdout);
  const arrows = (parsed.events.find((e) => e.event === 'diagram') as { arrows: LabArrow[] }).arrows;
  return { ...parsed, arrows };
}

/** One lab run for a capture test: what the lab said it sent, its arrows, and tshark's decode-as rules for its ports. */
export interface CaptureRun {
  wire: LabWireEvent[];
  decodeAs: string[];
  arrows: LabArrow[];
}
