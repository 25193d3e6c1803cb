// npm run capture -- <lab> [out.pcap] [-- lab arguments]: runs a lab (its demo by default) while
// `tcpdump -i lo` captures, keeps the packets of the lab's own ports, and prints tshark's summary with
// the wirelab dissector loaded. Capturing needs root or the capture capabilities; a lab's own
// `--pcap FILE` needs neither.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCapture, filterCapture, tshark, DISSECTOR_PATH } from '../src/trace/capture.ts';
import { errorCode } from '../src/errors.ts';
import type { LabEndpoints } from '../src/cli/lab.ts';

const USAGE = 'usage: npm run capture -- <lab> [out.pcap] [-- lab arguments]   e.g. npm run capture -- 01 /tmp/rr.pcap';
const labsDir = fileURLToPath(new URL('../labs/', import.meta.url));

class Exit extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}
function fail(message: string, code: number): never {
  throw new Exit(message, code);
}

/**
 * As root, the capture runs in a network namespace of its own (unshare --net): its loopback interface
 * carries the lab's traffic and nothing else, so a busy machine's other loopback traffic can neither
 * crowd the capture nor make tcpdump drop packets. Returns the exit code, or undefined when that is
 * not possible here (then the shared lo is used).
 */
function inOwnNetns(argv: string[]): number | undefined {
  if (process.env.WIRELAB_CAPTURE_NETNS === '1' || process.getuid?.() !== 0) return undefined;
  if (spawnSync('unshare', ['--net', 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' }).status !== 0) return undefined;
  const r = spawnSync('unshare', ['--net', '--', process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), ...argv], {
    stdio: 'inherit',
    env: { ...process.env, WIRELAB_CAPTURE_NETNS: '1' },
  });
  return r.status ?? 1;
}

async function main(argv: string[]): Promise<number> {
  const isolated = inOwnNetns(argv);
  if (isolated !== undefined) return isolated;
  if (process.env.WIRELAB_CAPTURE_NETNS === '1' && spawnSync('ip', ['link', 'set', 'lo', 'up']).status !== 0) fail('cannot bring up lo in the new network namespace', 1);
  const dashes = argv.indexOf('--');
  const own = dashes === -1 ? argv : argv.slice(0, dashes);
  const labArgs = dashes === -1 ? [] : argv.slice(dashes + 1);
  if (own.length < 1 || own.length > 2 || own[0] === '--help' || own[0] === '-h') fail(USAGE, own[0]?.startsWith('-h') || own[0] === '--help' ? 0 : 2);
  const names = readdirSync(labsDir).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
  const wanted = own[0]!.replace(/^labs\//, '').replace(/\.ts$/, '');
  const matches = names.includes(wanted) ? [wanted] : names.filter((n) => n.startsWith(wanted) || n.includes(wanted));
  if (matches.length !== 1) fail(`${matches.length === 0 ? 'no lab matches' : 'several labs match'} '${wanted}' (labs: ${names.join(', ')})`, 2);
  const lab = matches[0]!;
  const out = own[1] ?? `${lab}.pcap`;

  const work = mkdtempSync(join(tmpdir(), 'wirelab-capture-'));
  const raw = join(work, 'raw.pcap');
  const endpointsFile = join(work, 'endpoints.json');
  let labCode = 1;
  try {
    // The lab's ports are ephemeral and unknown until it runs: capture all TCP/UDP on lo, keep the lab's after.
    let capture;
    try {
      capture = await startCapture({ file: raw, filter: 'tcp or udp' });
    } catch (err) {
      if (errorCode(err) === 'ERR_CAPTURE_NOT_PERMITTED') {
        fail(`${(err as Error).message}\n` +
          '  Capturing on the loopback interface needs root, or tcpdump with the capture capabilities:\n' +
          '    sudo setcap cap_net_raw,cap_net_admin=eip "$(command -v tcpdump)"\n' +
          `  No privileges at all: let the lab write its own capture: npx tsx labs/${lab}.ts --pcap ${out}`, 1);
      }
      fail((err as Error).message, 1);
    }
      const where = process.env.WIRELAB_CAPTURE_NETNS === '1' ? 'lo of a network namespace of its own' : 'lo (shared with the rest of this machine)';
    process.stderr.write(`capture: tcpdump is listening on ${where}; running labs/${lab}.ts ${labArgs.join(' ')}\n`);
    labCode = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(labsDir, `${lab}.ts`), ...labArgs], {
        stdio: 'inherit',
        env: { ...process.env, WIRELAB_ENDPOINTS_FILE: endpointsFile },
      });
      const forward = (sig: NodeJS.Signals) => child.kill(sig);
      process.on('SIGINT', forward);
      process.on('SIGTERM', forward);
      child.on('close', (code) => {
        process.off('SIGINT', forward);
        process.off('SIGTERM', forward);
        resolve(code ?? 1);
      });
    });
    await new Promise((r) => setTimeout(r, 200)); // the last packets reach tcpdump
    const stats = await capture.stop();
    if (stats.droppedByKernel) {
      process.stderr.write(`capture: tcpdump could not keep up and the kernel dropped ${stats.droppedByKernel} packets: the capture has holes ` +
        `(tshark: "previous segment not captured"). The lab's own --pcap has every byte: npx tsx labs/${lab}.ts --pcap FILE\n`);
    }
    if (!existsSync(endpointsFile)) fail(`labs/${lab}.ts reported no endpoints (exit code ${labCode}); nothing to keep`, 1);
    const doc = JSON.parse(readFileSync(endpointsFile, 'utf8')) as LabEndpoints;
    if (doc.servers.length === 0) fail(`labs/${lab}.ts recorded no traffic (does it tap its sockets?)`, 1);
    const ports = (t: 'tcp' | 'udp') => [...new Set(doc.servers.filter((s) => s.transport === t).map((s) => s.port))];
    const clause = (t: 'tcp' | 'udp') => (ports(t).length ? [`(${t} and (${ports(t).map((p) => `port ${p}`).join(' or ')}))`] : []);
    const filter = [...clause('tcp'), ...clause('udp')].join(' or ');
    filterCapture(raw, out, filter);
    const decodeAs = doc.servers.flatMap((s) => (doc.dissector?.[s.transport] ? [`${s.transport}.port==${s.port},${doc.dissector[s.transport]}`] : []));
    const summary = tshark(out, { decodeAs });
    process.stdout.write(`\n== tshark summary of ${out} (capture filter: ${filter})\n${summary.stdout}`);
    if (summary.stderr) process.stderr.write(summary.stderr + '\n');
    const rel = relative(process.cwd(), DISSECTOR_PATH);
    process.stdout.write(`\nopen it again with: tshark -r ${out} -X lua_script:${rel}${decodeAs.map((d) => ` -d ${d}`).join('')}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return labCode;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof Exit)) throw err;
  (err.code === 0 ? process.stdout : process.stderr).write(err.code === 0 ? `${err.message}\n` : `capture: ${err.message}\n`);
  process.exitCode = err.code;
}
