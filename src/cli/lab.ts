// The conventions every lab follows: subcommands, the common flags, one-line usage errors with exit
// code 2, `listening on tcp://HOST:PORT`, clean exit on SIGINT/SIGTERM, and the wire recorder behind
// --trace. A lab file only declares its own flags and writes its demo/server/client functions.
import { parseArgs } from 'node:util';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { relative } from 'node:path';
import type { AddressInfo } from 'node:net';
import { WirelabError, errorCode } from '../errors.ts';
import { createOutput, colorWanted, type Output } from './output.ts';
import { Recorder } from '../trace/recorder.ts';
import { attachTracePrinter } from '../trace/printer.ts';
import { PcapEncoder } from '../trace/pcap.ts';
import { buildDiagram, renderDiagram } from '../trace/diagram.ts';
import { DISSECTOR_PATH } from '../trace/capture.ts';

type OptionSpec = { type: 'string' | 'boolean'; short?: string; default?: string | boolean; multiple?: false };
export type LabOptions = Record<string, OptionSpec & { description: string; valueName?: string }>;

export const COMMON_OPTIONS = {
  port: { type: 'string', description: 'port to listen on or connect to (server default: 0, an ephemeral port)', valueName: 'PORT' },
  host: { type: 'string', default: '127.0.0.1', description: 'address to listen on or connect to', valueName: 'HOST' },
  json: { type: 'boolean', default: false, description: 'print one JSON event per line' },
  trace: { type: 'boolean', default: false, description: 'hex-dump every chunk sent and received (curl --trace layout)' },
  'trace-time': { type: 'boolean', default: false, description: 'with --trace: prefix each block with the time' },
  pcap: { type: 'string', description: "write this run's traffic to a pcap file (Wireshark, tshark; no root needed)", valueName: 'FILE' },
  diagram: { type: 'boolean', default: false, description: 'after the run, draw a sequence diagram of the traffic' },
  'no-color': { type: 'boolean', default: false, description: 'no colours (also: NO_COLOR=1)' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} satisfies LabOptions;

export interface CommonValues {
  port: number | undefined;
  host: string;
  json: boolean;
  trace: boolean;
  traceTime: boolean;
  /** --pcap FILE: where the lab writes its own capture. */
  pcap: string | undefined;
  diagram: boolean;
  color: boolean;
}

export interface LabSpec<O extends LabOptions> {
  /** File name without extension, e.g. `01-request-response`. */
  name: string;
  summary: string;
  /** Subcommand -> one-line description. The first is the default. */
  commands: Record<string, string>;
  options: O;
  /** Extra usage lines, e.g. `client [--port P] METHOD [BODY]`. */
  usage?: readonly string[];
  /**
   * The Wireshark dissector for this lab's server ports (`wirelab`, `dns`, `http`), for `npm run capture`
   * and the hint printed after --pcap: `tshark -d tcp.port==PORT,NAME`.
   */
  dissector?: { readonly tcp?: string; readonly udp?: string };
  /**
   * The port the `server` command listens on when --port is absent (default 0, an ephemeral port), e.g.
   * the dissector's registered port. The demo and the tests still use port 0.
   */
  defaultPort?: number;
}

type Values<O extends LabOptions> = {
  [K in keyof O]: O[K]['type'] extends 'boolean' ? boolean : O[K] extends { default: string } ? string : string | undefined;
};

export interface LabContext<O extends LabOptions> {
  command: string;
  common: CommonValues;
  values: Values<O>;
  positionals: string[];
  out: Output;
  recorder: Recorder;
  /** Resolves on SIGINT or SIGTERM (for servers). */
  untilSignal(): Promise<NodeJS.Signals>;
}

/** A bad command line: one line on stderr, exit code 2. */
export class UsageError extends WirelabError {
  constructor(message: string) {
    super('ERR_BAD_ARGS', message);
  }
}

export function parseIntOption(name: string, raw: string | undefined, range: { min: number; max: number; default?: number }): number | undefined {
  if (raw === undefined) return range.default;
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got '${raw}'`);
  const n = Number(raw);
  if (n < range.min || n > range.max) throw new UsageError(`--${name} must be from ${range.min} to ${range.max}, got ${n}`);
  return n;
}

export function parseNumberOption(name: string, raw: string | undefined, range: { min: number; max: number; default?: number }): number | undefined {
  if (raw === undefined) return range.default;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${raw}'`);
  if (n < range.min || n > range.max) throw new UsageError(`--${name} must be from ${range.min} to ${range.max}, got ${n}`);
  return n;
}

export function parseChoice<T extends string>(name: string, raw: string | undefined, choices: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  if (!(choices as readonly string[]).includes(raw)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got '${raw}'`);
  return raw as T;
}

/** The --help text: usage lines, commands, common and lab options with their defaults. */
export function labHelp<O extends LabOptions>(spec: LabSpec<O>): string {
  const lines = [`${spec.name}: ${spec.summary}`, '', `usage: npx tsx labs/${spec.name}.ts [${Object.keys(spec.commands).join('|')}] [options]`];
  for (const u of spec.usage ?? []) lines.push(`       npx tsx labs/${spec.name}.ts ${u}`);
  lines.push('', 'commands:');
  for (const [cmd, text] of Object.entries(spec.commands)) lines.push(`  ${cmd.padEnd(22)}${text}`);
  lines.push('', 'options:');
  const all: LabOptions = { ...COMMON_OPTIONS, ...spec.options };
  for (const [name, o] of Object.entries(all)) {
    const flag = `--${name}${o.type === 'string' ? ' ' + (o.valueName ?? 'VALUE') : ''}`;
    const def = o.default !== undefined && o.type === 'string' ? ` (default ${o.default})` : '';
    let text = o.description;
    if (name === 'port' && spec.defaultPort !== undefined) text = text.replace(/\(server default: [^)]*\)/, `(server default: ${spec.defaultPort})`);
    lines.push(`  ${flag.padEnd(22)}${text}${def}`);
  }
  return lines.join('\n') + '\n';
}

export function parseLabArgs<O extends LabOptions>(spec: LabSpec<O>, argv: string[]) {
  const options: Record<string, OptionSpec> = {};
  for (const [name, o] of Object.entries({ ...COMMON_OPTIONS, ...spec.options } as LabOptions)) {
    const { description: _d, valueName: _v, ...rest } = o;
    options[name] = rest;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs' messages are one line already, e.g. "Unknown option '--bogus'".
    const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    throw new UsageError(msg.replace(/\. To specify a positional argument.*$/, ''));
  }
  const raw = parsed.values as Record<string, string | boolean | undefined>;
  const positionals = [...parsed.positionals];
  const commands = Object.keys(spec.commands);
  let command = commands[0]!;
  if (positionals.length > 0 && commands.includes(positionals[0]!)) command = positionals.shift()!;
  const port = parseIntOption('port', raw.port as string | undefined, { min: 0, max: 65535 });
  const common: CommonValues = {
    port: port ?? (command === 'server' ? spec.defaultPort : undefined),
    host: raw.host as string,
    json: raw.json === true,
    trace: raw.trace === true || raw['trace-time'] === true,
    traceTime: raw['trace-time'] === true,
    pcap: raw.pcap as string | undefined,
    diagram: raw.diagram === true,
    color: colorWanted(raw['no-color'] === true),
  };
  return { command, common, values: raw as Values<O>, positionals, help: raw.help === true };
}

export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function urlOf(scheme: 'tcp' | 'udp' | 'http', address: AddressInfo | string): string {
  if (typeof address === 'string') return `${scheme}://${address}`;
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** The line a peer waits for before it connects. */
export function announceListening(out: Output, scheme: 'tcp' | 'udp' | 'http', address: AddressInfo | string): void {
  const url = urlOf(scheme, address);
  out.event('listening', { url }, `listening on ${url}`);
}

interface WireViews {
  /** Writes the end of the pcap, draws the diagram, reports. Safe to call twice. */
  finish(): Promise<void>;
}

/** Where the lab's servers listened, as `npm run capture` reads it (WIRELAB_ENDPOINTS_FILE). */
export interface LabEndpoints {
  lab: string;
  dissector: { tcp?: string; udp?: string } | undefined;
  servers: { transport: 'tcp' | 'udp'; address: string; port: number }[];
}

/** The tshark command line that decodes a lab's capture, for the hint printed after --pcap. */
export function tsharkHint(file: string, spec: Pick<LabSpec<LabOptions>, 'dissector'>, servers: LabEndpoints['servers']): string {
  const args = [`tshark -r ${file}`, `-X lua_script:${relative(process.cwd(), DISSECTOR_PATH)}`];
  for (const s of servers) {
    const name = spec.dissector?.[s.transport];
    if (name) args.push(`-d ${s.transport}.port==${s.port},${name}`);
  }
  return args.join(' ');
}

/**
 * --pcap streams pcap records to the file as the events happen (a server running for hours holds none
 * of its traffic in memory); --diagram draws from the kept events once the run is over. When
 * WIRELAB_ENDPOINTS_FILE is set (by `npm run capture`), the lab's server endpoints are written there.
 */
function startWireViews<O extends LabOptions>(spec: LabSpec<O>, ctx: LabContext<O>): WireViews {
  const { common, recorder, out } = ctx;
  const servers = new Map<string, LabEndpoints['servers'][number]>();
  const endpointsFile = process.env.WIRELAB_ENDPOINTS_FILE;
  let fd: number | undefined;
  let encoder: PcapEncoder | undefined;
  let writeError: unknown;
  if (common.pcap !== undefined) {
    try {
      fd = openSync(common.pcap, 'w');
    } catch (err) {
      throw new WirelabError('ERR_PCAP_WRITE', `cannot write ${common.pcap}: ${(err as Error).message}`);
    }
    encoder = new PcapEncoder();
    writeSync(fd, encoder.header());
  }
  const write = (records: Buffer[]) => {
    if (fd === undefined || records.length === 0 || writeError) return;
    try {
      writeSync(fd, records.length === 1 ? records[0]! : Buffer.concat(records));
    } catch (err) {
      writeError = err; // reported at the end; a full disk must not break the lab's sockets
    }
  };
  if (encoder || endpointsFile) {
    recorder.onEvent((e) => {
      const server = e.side === 'server' ? e.local : e.remote;
      servers.set(`${e.transport}|${server.port}`, { transport: e.transport, address: server.address, port: server.port });
      if (encoder) write(encoder.push(e));
    });
  }
  let finished = false;
  return {
    async finish() {
      if (finished) return;
      finished = true;
      // Sockets closed just before the handler returned report 'close' on the next turns of the loop.
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      const list = [...servers.values()];
      if (encoder && fd !== undefined) {
        write(encoder.end());
        closeSync(fd);
        if (writeError) throw new WirelabError('ERR_PCAP_WRITE', `writing ${common.pcap} failed: ${(writeError as Error).message}`);
        out.event('pcap', { file: common.pcap, packets: encoder.packets },
          `wrote ${encoder.packets} packets to ${common.pcap}; decode with:\n  ${tsharkHint(common.pcap!, spec, list)}`);
      }
      if (common.diagram) {
        if (out.json) out.event('diagram', { ...buildDiagram(recorder.events) });
        else out.raw(`\n${out.c.bold('sequence diagram')}\n${renderDiagram(recorder.events)}`);
      }
      if (endpointsFile) {
        const doc: LabEndpoints = { lab: spec.name, dissector: spec.dissector, servers: list };
        writeFileSync(endpointsFile, JSON.stringify(doc) + '\n');
      }
    },
  };
}

/**
 * Runs a lab's entry point: parses the command line (exit 2 on a bad one), sets up output and the wire
 * recorder, runs the chosen subcommand, and turns any error into one line and exit code 1.
 */
export async function runLab<O extends LabOptions>(
  spec: LabSpec<O>,
  handlers: Record<string, (ctx: LabContext<O>) => Promise<number | void>>,
  argv: string[] = process.argv.slice(2),
): Promise<void> {
  let ctx: LabContext<O>;
  try {
    const parsed = parseLabArgs(spec, argv);
    if (parsed.help) {
      process.stdout.write(labHelp(spec));
      return;
    }
    if (parsed.common.pcap === '') throw new UsageError('--pcap needs a file name');
    const out = createOutput({ json: parsed.common.json, color: parsed.common.color });
    const recorder = new Recorder(parsed.common.diagram);
    if (parsed.common.trace) {
      if (out.json) {
        recorder.onEvent((e) =>
          out.event('wire', {
            kind: e.kind, transport: e.transport, side: e.side, conn: e.conn, t: Math.round(e.t * 1000) / 1000,
            local: `${e.local.address}:${e.local.port}`, remote: `${e.remote.address}:${e.remote.port}`,
            bytes: e.data?.length, hex: e.data?.toString('hex'), notes: e.notes, units: e.units,
          }),
        );
      } else {
        attachTracePrinter(recorder, { time: parsed.common.traceTime, write: (t) => void process.stdout.write(t), dim: out.c.dim });
      }
    }
    ctx = { ...parsed, out, recorder, untilSignal };
  } catch (err) {
    process.stderr.write(`${spec.name}: ${err instanceof Error ? err.message : String(err)} (see --help)\n`);
    process.exitCode = 2;
    return;
  }
  let views: WireViews | undefined;
  try {
    const handler = handlers[ctx.command];
    if (!handler) throw new UsageError(`unknown command '${ctx.command}'`);
    views = startWireViews(spec, ctx);
    const code = await handler(ctx);
    process.exitCode = code ?? 0;
    await views.finish();
  } catch (err) {
    await views?.finish().catch((e: unknown) => process.stderr.write(`${spec.name}: ${(e as Error).message}\n`));
    if (err instanceof UsageError) {
      process.stderr.write(`${spec.name}: ${err.message} (see --help)\n`);
      process.exitCode = 2;
      return;
    }
    const code = errorCode(err);
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${spec.name}: error${code ? ' ' + code : ''}: ${message}\n`);
    if (process.env.WIRELAB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
