// What a lab says about its own traffic: the JSON lines of `--json --trace` (src/cli/lab.ts), parsed for
// the capture tests, which compare them with what tshark reads from the captures.

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
