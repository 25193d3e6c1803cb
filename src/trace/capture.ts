// Real captures with the real tools: tcpdump on the loopback interface (needs root or the capture
// capabilities), tshark to decode, with wirelab's Lua dissector loaded. Used by `npm run capture` and by
// the interop tests. The lab's own --pcap (src/trace/pcap.ts) is the way that needs no privileges.
import { statSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { WirelabError } from '../errors.ts';

/** The dissector, loaded with `tshark -X lua_script:PATH`. */
export const DISSECTOR_PATH = fileURLToPath(new URL('../../native-notes/wireshark/wirelab.lua', import.meta.url));

export interface CaptureOptions {
  file: string;
  /** A BPF capture filter, e.g. `tcp port 7070`. */
  filter: string;
  iface?: string;
  /** Give up waiting for tcpdump to start after this long. Default 5 s. */
  startTimeoutMs?: number;
}

export interface CaptureStats {
  /** Packets the kernel dropped because tcpdump did not read them in time (tcpdump's own count at exit). */
  droppedByKernel: number | undefined;
}

export interface Capture {
  /** Stops tcpdump (SIGINT, so it flushes the file) and resolves once it has exited, with its counts. */
  stop(): Promise<CaptureStats>;
}

/** tcpdump's own words when the user may not capture (libpcap's messages). */
const NOT_PERMITTED = /permission|not permitted|operation not permitted|you don't have/i;

/**
 * Starts `tcpdump -i lo -U -w FILE FILTER` and resolves once tcpdump says it is listening, so no packet
 * sent after this resolves is missed. Fails with ERR_CAPTURE_NOT_PERMITTED when this user may not capture,
 * ERR_TOOL_MISSING without tcpdump, ERR_CAPTURE_FAILED otherwise.
 */
export function startCapture(options: CaptureOptions): Promise<Capture> {
  const iface = options.iface ?? 'lo';
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    // --immediate-mode: hand each packet over at once (TPACKET_V3 otherwise holds a block up to 1 s, lost
    // on SIGINT); -B: a 16 MiB kernel buffer for bursts; -U: write each packet to the file as it arrives; -n: no name lookups; -s 0: whole packets.
    child = spawn('tcpdump', ['-i', iface, '--immediate-mode', '-B', '16384', '-U', '-n', '-s', '0', ...keepUser(), '-w', options.file, options.filter], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let ready = false;
    let exited = false;
    const exit = new Promise<void>((r) => child.once('close', () => {
      exited = true;
      r();
    }));
    const timer = setTimeout(() => {
      if (ready) return;
      child.kill('SIGKILL');
      reject(new WirelabError('ERR_CAPTURE_FAILED', `tcpdump did not start within ${options.startTimeoutMs ?? 5000} ms: ${stderr.trim()}`));
    }, options.startTimeoutMs ?? 5000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT'
        ? new WirelabError('ERR_TOOL_MISSING', 'tcpdump is not installed (Debian: apt-get install tcpdump)')
        : new WirelabError('ERR_CAPTURE_FAILED', `tcpdump: ${err.message}`));
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      stderr += text;
      if (!ready && /listening on /.test(stderr)) {
        ready = true;
        clearTimeout(timer);
        resolve({
          async stop() {
            // SIGINT ends tcpdump's loop at once, and packets still in its ring buffer are lost (seen on a
            // busy machine). With -U each packet is written as it is read, so wait until the file has
            // stopped growing for a while (bounded) before stopping it.
            await settled(options.file);
            if (!exited) child.kill('SIGINT');
            await exit;
            const dropped = /(\d+) packets? dropped by kernel/.exec(stderr);
            return { droppedByKernel: dropped ? Number(dropped[1]) : undefined };
          },
        });
      }
    });
    child.once('close', (code) => {
      if (ready) return;
      clearTimeout(timer);
      const text = stderr.trim().split('\n').pop() ?? '';
      reject(NOT_PERMITTED.test(stderr)
        ? new WirelabError('ERR_CAPTURE_NOT_PERMITTED', `tcpdump may not capture on ${iface} as this user: ${text}`)
        : new WirelabError('ERR_CAPTURE_FAILED', `tcpdump exited with code ${code}: ${text}`));
    });
  });
}

const SETTLE_QUIET_MS = 250;
const SETTLE_MAX_MS = 3000;

async function settled(file: string): Promise<void> {
  const size = () => {
    try {
      return statSync(file).size;
    } catch {
      return -1;
    }
  };
  const until = Date.now() + SETTLE_MAX_MS;
  let last = size();
  let quietSince = Date.now();
  while (Date.now() < until && Date.now() - quietSince < SETTLE_QUIET_MS) {
    await new Promise((r) => setTimeout(r, 50));
    const now = size();
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    }
  }
}

/**
 * Run as root, tcpdump drops to the user `tcpdump` after opening its files, which then belong to that
 * user; -Z with our own name keeps them ours.
 */
function keepUser(): string[] {
  return process.getuid?.() === 0 ? ['-Z', userInfo().username] : [];
}

/** Copies the packets of `input` that match a BPF filter to `output` (tcpdump -r ... -w ...). */
export function filterCapture(input: string, output: string, filter: string): void {
  const r = spawnSync('tcpdump', ['-n', '-r', input, ...keepUser(), '-w', output, filter], { encoding: 'utf8' });
  if (r.error) throw new WirelabError('ERR_TOOL_MISSING', `tcpdump: ${r.error.message}`);
  if (r.status !== 0) throw new WirelabError('ERR_CAPTURE_FAILED', `tcpdump -r ${input} failed: ${r.stderr.trim()}`);
}

export interface TsharkOptions {
  /** Extra arguments, e.g. ['-T', 'fields', '-e', 'wirelab.id']. */
  args?: string[];
  /** `-d` decode-as rules, e.g. `tcp.port==7070,wirelab`. */
  decodeAs?: string[];
  /** Load the wirelab dissector (default true). */
  dissector?: boolean;
}

export interface TsharkResult {
  stdout: string;
  stderr: string;
  status: number | null;
}

/**
 * Runs tshark on a capture file with the wirelab dissector loaded. As root this works with Debian's
 * packaged init.lua (run_user_scripts_when_superuser = true), so `-X lua_script:` is honoured.
 */
export function tshark(file: string, options: TsharkOptions = {}): TsharkResult {
  const args = ['-n', '-r', file];
  if (options.dissector ?? true) args.push('-X', `lua_script:${DISSECTOR_PATH}`);
  for (const d of options.decodeAs ?? []) args.push('-d', d);
  args.push(...(options.args ?? []));
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw code === 'ENOENT'
      ? new WirelabError('ERR_TOOL_MISSING', 'tshark is not installed (Debian: apt-get install tshark)')
      : new WirelabError('ERR_CAPTURE_FAILED', `tshark: ${r.error.message}`);
  }
  // tshark warns on stderr when run as root; that line is noise, not an error.
  const stderr = r.stderr.split('\n').filter((l) => l && !/^Running as user "root"/.test(l)).join('\n');
  return { stdout: r.stdout, stderr, status: r.status };
}
