// tshark queries shared by the capture tests. One tshark run per file (cached): tshark with Lua loaded
// costs a few hundred milliseconds to start, and the tests ask several questions of each file.
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

interface Decoded {
  frames: DecodedFrame[];
  /** Per packet with a problem: `number\tmessages` (warnings and errors only). */
  problems: string[];
  status: number | null;
  stderr: string;
}

const WARNING = 0x00600000;
const cache = new Map<string, Decoded>();

/**
 * Every packet once: ports, wirelab fields, expert messages with their severities, malformed and TCP
 * analysis flags. Checksums are verified in our own pcaps only: in a real loopback capture they are
 * left to the NIC (checksum offload), so tcpdump sees partial sums and Wireshark would then decline to
 * reassemble.
 */
function decode(file: string, decodeAs: string[], checksums: boolean): Decoded {
  const key = JSON.stringify([file, decodeAs, checksums]);
  const hit = cache.get(key);
  if (hit) return hit;
  const checks = checksums ? ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'] : [];
  const fields = ['frame.number', 'tcp.srcport', 'tcp.dstport', 'wirelab.type', 'wirelab.id', 'wirelab.method', '_ws.expert.message', '_ws.expert.severity', '_ws.malformed', 'tcp.analysis.flags'];
  const r = tshark(file, { decodeAs, args: [...checks, '-T', 'fields', '-E', 'aggregator=|', ...fields.flatMap((f) => ['-e', f])] });
  const out: Decoded = { frames: [], problems: [], status: r.status, stderr: r.stderr };
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    const [num, sport, dport, types, ids, methods, messages, severities, malformed, analysis] = line.split('\t') as string[];
    if (types) {
      // Every frame has a type and an id; only REQUESTs have a method.
      const ms = methods ? methods.split('|') : [];
      const idList = ids!.split('|');
      types.split('|').forEach((t, i) => {
        const f: DecodedFrame = { srcport: Number(sport), dstport: Number(dport), type: Number(t), id: Number(idList[i]) };
        if (f.type === 1) f.method = ms.shift();
        out.frames.push(f);
      });
    }
    const sev = severities ? severities.split('|').map(Number) : [];
    const msg = messages ? messages.split('|') : [];
    const bad = msg.filter((_, i) => (sev[i] ?? 0) >= WARNING);
    if (malformed) bad.push('Malformed');
    if (analysis) bad.push('tcp.analysis.flags');
    if (bad.length) out.problems.push(`${num}\t${bad.join(',')}`);
  }
  cache.set(key, out);
  return out;
}

const rowsCache = new Map<string, Record<string, string>[]>();

/**
 * Any fields of every packet, one row per packet (field name -> value, several values joined by `|`,
 * '' when absent), for protocols other than wirelab (DNS, HTTP). Checksums verified as in framesOf.
 */
export function fieldsOf(file: string, decodeAs: string[], fields: string[], options: { checksums?: boolean } = {}): Record<string, string>[] {
  const checksums = options.checksums ?? true;
  const key = JSON.stringify([file, decodeAs, fields, checksums]);
  const hit = rowsCache.get(key);
  if (hit) return hit;
  const checks = checksums ? ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'] : [];
  const r = tshark(file, { dissector: false, decodeAs, args: [...checks, '-T', 'fields', '-E', 'aggregator=|', ...fields.flatMap((f) => ['-e', f])] });
  if (r.status !== 0) throw new Error(`tshark exited ${r.status}: ${r.stderr}`);
  const rows = r.stdout.split('\n').filter((l) => l.trim()).map((line) => {
    const values = line.split('\t');
    return Object.fromEntries(fields.map((f, i) => [f, values[i] ?? '']));
  });
  rowsCache.set(key, rows);
  return rows;
}

/** Every wirelab frame tshark decodes, in packet order. Pass checksums: false for real loopback captures. */
export function framesOf(file: string, decodeAs: string[] = [], options: { checksums?: boolean } = {}): DecodedFrame[] {
  return decode(file, decodeAs, options.checksums ?? true).frames;
}

/**
 * What would make Wireshark's reading of a capture wrong: malformed packets, expert warnings and errors
 * (e.g. "previous segment not captured", bad checksums), TCP analysis flags. One line per packet.
 * `allow`: expert messages that are the point of the capture (a protocol violation sent on purpose).
 */
export function problemsOf(file: string, decodeAs: string[] = [], options: { checksums?: boolean; allow?: RegExp } = {}): string[] {
  const d = decode(file, decodeAs, options.checksums ?? true);
  if (d.status !== 0) return [`tshark exited ${d.status}: ${d.stderr}`];
  return d.problems.filter((l) => !(options.allow && l.split('\t')[1]!.split(',').every((m) => options.allow!.test(m))));
}
