// The lab server's zone: a small in-memory table of records, from built-in defaults under `lab.` or
// from a zone file with one `name TYPE value [ttl]` per line (a deliberately small cousin of the RFC 1035
// 5.1 master file format). A bad line is an ERR_DNS_ZONE_SYNTAX error naming the file and line.
import { readFileSync } from 'node:fs';
import { WirelabError } from '../errors.ts';
import { TYPE, CLASS_IN, canonicalName, nameToLabels, isIPv4Text, isIPv6Text, typeName, type DnsRecord } from './dns.ts';

export const DEFAULT_TTL = 300;
export const DEFAULT_ORIGIN = 'lab';

export interface Zone {
  /** The names this server is authoritative for: the origin and everything below it. */
  origin: string;
  /** Canonical (lower-case) owner name -> its records. */
  records: Map<string, DnsRecord[]>;
}

/** The TXT strings of `big.lab.`: enough of them that a reply is over 512 bytes, so UDP truncates it. */
export function bigTxtStrings(count = 24): string[] {
  return Array.from({ length: count }, (_, i) => `wirelab large answer, string ${String(i + 1).padStart(2, '0')} of ${count}: ${'x'.repeat(20)}`);
}

export function defaultZone(): Zone {
  const r = (name: string, type: number, data: DnsRecord['data'], ttl = DEFAULT_TTL): DnsRecord => ({ name, type, class: CLASS_IN, ttl, data });
  return zoneFrom(DEFAULT_ORIGIN, [
    r('hello.lab', TYPE.A, '127.0.0.1'),
    r('hello.lab', TYPE.AAAA, '::1'),
    r('hello.lab', TYPE.TXT, [Buffer.from('hello from the wirelab DNS subset')]),
    r('www.lab', TYPE.CNAME, 'hello.lab'),
    r('big.lab', TYPE.TXT, bigTxtStrings().map((s) => Buffer.from(s))),
    r('empty.lab', TYPE.TXT, [Buffer.from('a name with only a TXT record: its A query is NODATA')]),
  ]);
}

export function zoneFrom(origin: string, records: DnsRecord[]): Zone {
  const map = new Map<string, DnsRecord[]>();
  for (const rec of records) {
    const key = canonicalName(rec.name);
    let list = map.get(key);
    if (!list) map.set(key, (list = []));
    list.push(rec);
  }
  return { origin: canonicalName(origin), records: map };
}

/** Whether name is the origin or below it (label-wise, so `xlab.` is not under `lab.`). */
export function inZone(zone: Zone, name: string): boolean {
  const n = canonicalName(name);
  return zone.origin === '' || n === zone.origin || n.endsWith('.' + zone.origin);
}

function syntax(file: string, line: number, message: string): never {
  throw new WirelabError('ERR_DNS_ZONE_SYNTAX', `${file}:${line}: ${message}`);
}

/** Splits a line into tokens; "quoted strings" keep their spaces and are marked as quoted. */
function tokenize(text: string, file: string, line: number): { text: string; quoted: boolean }[] {
  const out: { text: string; quoted: boolean }[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t') { i++; continue; }
    if (ch === ';' || ch === '#') break;
    if (ch === '"') {
      let s = '';
      i++;
      for (;;) {
        if (i >= text.length) syntax(file, line, 'unterminated quoted string');
        const c = text[i]!;
        if (c === '\\' && i + 1 < text.length) { s += text[i + 1]; i += 2; continue; }
        if (c === '"') { i++; break; }
        s += c;
        i++;
      }
      out.push({ text: s, quoted: true });
      continue;
    }
    let j = i;
    while (j < text.length && !' \t;#"'.includes(text[j]!)) j++;
    out.push({ text: text.slice(i, j), quoted: false });
    i = j;
  }
  return out;
}

const ZONE_TYPES = new Set<number>([TYPE.A, TYPE.AAAA, TYPE.TXT, TYPE.CNAME]);

/**
 * Parses zone text. `$ORIGIN name` sets the origin; without it the origin is the labels every owner
 * name shares (so a file of `*.lab` names is authoritative for `lab.`). Names are absolute.
 */
export function parseZone(text: string, file = '<zone>'): Zone {
  const records: DnsRecord[] = [];
  const lineOf = new Map<DnsRecord, number>();
  let origin: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let n = 1; n <= lines.length; n++) {
    const tokens = tokenize(lines[n - 1]!, file, n);
    if (tokens.length === 0) continue;
    const checkName = (name: string): string => {
      try {
        nameToLabels(name);
      } catch (err) {
        syntax(file, n, `bad name '${name.slice(0, 80)}': ${(err as Error).message}`);
      }
      return canonicalName(name);
    };
    if (tokens[0]!.text.toUpperCase() === '$ORIGIN' && !tokens[0]!.quoted) {
      if (tokens.length !== 2) syntax(file, n, '$ORIGIN takes one name');
      origin = checkName(tokens[1]!.text);
      continue;
    }
    if (tokens.length < 3) syntax(file, n, `expected 'name TYPE value [ttl]', got ${tokens.length} field${tokens.length === 1 ? '' : 's'}`);
    const name = checkName(tokens[0]!.text);
    const typeText = tokens[1]!.text.toUpperCase();
    const type = (TYPE as Record<string, number>)[typeText];
    if (type === undefined || !ZONE_TYPES.has(type)) syntax(file, n, `unsupported type '${tokens[1]!.text}' (A, AAAA, TXT or CNAME)`);
    let values = tokens.slice(2);
    let ttl = DEFAULT_TTL;
    const last = values[values.length - 1]!;
    if (values.length > 1 && !last.quoted && /^\d+$/.test(last.text)) {
      ttl = Number(last.text);
      if (ttl > 0x7fffffff) syntax(file, n, `ttl ${last.text} is over 2^31-1 (RFC 2181 8)`);
      values = values.slice(0, -1);
    }
    let data: DnsRecord['data'];
    if (type === TYPE.TXT) {
      const strings = values.map((v) => Buffer.from(v.text, 'utf8'));
      const long = strings.find((s) => s.length > 255);
      if (long) syntax(file, n, `TXT string of ${long.length} bytes (at most 255, RFC 1035 3.3.14)`);
      data = strings;
    } else {
      if (values.length !== 1) syntax(file, n, `${typeText} takes one value and an optional ttl, got ${values.map((v) => v.text).join(' ')}`);
      const v = values[0]!.text;
      if (type === TYPE.A && !isIPv4Text(v)) syntax(file, n, `'${v}' is not an IPv4 address`);
      if (type === TYPE.AAAA && !isIPv6Text(v)) syntax(file, n, `'${v}' is not an IPv6 address`);
      data = type === TYPE.CNAME ? checkName(v) : v;
    }
    const rec: DnsRecord = { name, type, class: CLASS_IN, ttl, data };
    records.push(rec);
    lineOf.set(rec, n);
  }
  // RFC 1034 3.6.2: a name with a CNAME has no other data.
  const byName = new Map<string, DnsRecord[]>();
  for (const r of records) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  for (const [name, list] of byName) {
    const cname = list.filter((r) => r.type === TYPE.CNAME);
    if (cname.length > 0 && list.length > 1) {
      const other = list.find((r) => r !== cname[0])!;
      syntax(file, lineOf.get(other)!, `'${name}' has a CNAME, so it can have no other record (RFC 1034 3.6.2), but here is a ${typeName(other.type)}`);
    }
  }
  if (origin === undefined) origin = commonSuffix(records.map((r) => r.name));
  for (const r of records) {
    if (!(origin === '' || r.name === origin || r.name.endsWith('.' + origin))) syntax(file, lineOf.get(r)!, `'${r.name}' is outside the origin '${origin}.'`);
  }
  return zoneFrom(origin, records);
}

function commonSuffix(names: string[]): string {
  if (names.length === 0) return '';
  let common = names[0]!.split('.').reverse();
  for (const n of names.slice(1)) {
    const labels = n.split('.').reverse();
    let k = 0;
    while (k < common.length && k < labels.length && common[k] === labels[k]) k++;
    common = common.slice(0, k);
  }
  // A single name: its parent is the zone, so NXDOMAIN (not REFUSED) answers its siblings.
  if (names.every((n) => n.split('.').length === common.length) && common.length > 1) common = common.slice(0, -1);
  return common.reverse().join('.');
}

export function loadZoneFile(path: string): Zone {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new WirelabError('ERR_DNS_ZONE_SYNTAX', `${path}: cannot read the zone file: ${(err as Error).message}`, { cause: err });
  }
  return parseZone(text, path);
}
