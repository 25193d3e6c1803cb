// tshark queries shared by the capture tests.
import { tshark } from '../../src/trace/capture.ts';

export interface DecodedFrame {
  /** The TCP ports the frame was sent from and to. */
  srcport: number;
  dstport: number;
  type: number;
  id: number;
  /** REQUEST only. */
  method?: string;
}

/**
 * Every wirelab frame tshark decodes, in order. tshark prints one row per packet with each field's
 * occurrences comma-separated; every frame has a type and an id, only REQUESTs have a method.
 */
export function framesOf(file: string, decodeAs: string[] = []): DecodedFrame[] {
  const r = tshark(file, { decodeAs, args: ['-Y', 'wirelab', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'wirelab.type', '-e', 'wirelab.id', '-e', 'wirelab.method'] });
  const frames: DecodedFrame[] = [];
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    const [port, dport, types, ids, methods] = line.split('\t') as [string, string, string, string, string];
    if (!types) continue; // bytes after a protocol violation: no frame fields
    const ms = methods ? methods.split(',') : [];
    const idList = ids.split(',');
    types.split(',').forEach((t, i) => {
      const f: DecodedFrame = { srcport: Number(port), dstport: Number(dport), type: Number(t), id: Number(idList[i]) };
      if (f.type === 1) f.method = ms.shift();
      frames.push(f);
    });
  }
  return frames;
}

/**
 * What would make Wireshark's reading of a capture wrong: malformed packets, expert warnings and errors
 * (e.g. "previous segment not captured", bad checksums), TCP analysis flags. One line per problem.
 */
export function problemsOf(file: string, decodeAs: string[] = [], options: { checksums?: boolean; allow?: RegExp } = {}): string[] {
  // Checksums are checked in our own pcaps only: in a real loopback capture they are left to the NIC
  // (checksum offload), so tcpdump sees partial sums, and Wireshark then declines to reassemble.
  const checks = options.checksums ?? true
    ? ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE']
    : [];
  const r = tshark(file, {
    decodeAs,
    args: [...checks,
      '-Y', '_ws.malformed || _ws.expert.severity >= 0x00600000 || tcp.analysis.flags',
      '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message'],
  });
  if (r.status !== 0) return [`tshark exited ${r.status}: ${r.stderr}`];
  // `allow`: expert messages that are the point of the capture (a protocol violation the lab sends on purpose).
  return r.stdout.split('\n').filter((l) => l.trim() && !(options.allow && l.split('\t')[1]!.split(',').every((m) => options.allow!.test(m))));
}
