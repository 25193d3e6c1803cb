// Queries per second on loopback: this server (the lab's `server` subcommand, its own process) and
// dnsmasq serving the same records, both under dnsperf -q 100, alternated in the same run. Then our
// client's own rate with 1, 10 and 100 queries in flight, and the burst size where replies start to be
// lost in the client socket's receive buffer.
// Usage: npm run bench -- dns [--seconds=N] [--rounds=N]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport, sampleLoad, loadNote, type Cell } from './lib/results.ts';

import { DnsClient } from '../src/patterns/dns-client.ts';
import { TYPE } from '../src/wire/dns.ts';

/** Taken before anything runs, for the note on how busy the machine was. */
const loadBefore = await sampleLoad();

const arg = (name: string, fallback: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : fallback;
};
const SECONDS = arg('seconds', 10);
const ROUNDS = arg('rounds', 2);
const LAB = fileURLToPath(new URL('../labs/02-udp-query-id.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wirelab-dns-bench-'));
const children: ChildProcess[] = [];

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function waitForLine(child: ChildProcess, re: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), 15_000);
    const on = (c: Buffer) => {
      out += c;
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.on('close', (code) => reject(new Error(`${what} exited with ${code}: ${out}`)));
  });
}

async function startOurs(recvBuffer?: number): Promise<{ port: number; child: ChildProcess }> {
  const extraArgs = recvBuffer ? ['--recv-buffer', String(recvBuffer)] : [];
  const child = spawn(process.execPath, ['--import', 'tsx', LAB, 'server', '--no-color', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const m = await waitForLine(child, /listening on udp:\/\/127\.0\.0\.1:(\d+)/, 'our server');
  return { port: Number(m[1]), child };
}

/** The floor of Node's cost: a bare dgram socket that returns a fixed reply with the id patched in. */
const ECHO = `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
const reply = Buffer.from('0000850000010001000000000568656c6c6f036c61620000010001c00c000100010000012c00047f000001', 'hex');
s.on('message', (m, r) => { const o = Buffer.from(reply); o[0] = m[0]; o[1] = m[1]; s.send(o, r.port, r.address); });
s.bind(0, '127.0.0.1', () => console.log('listening on udp://127.0.0.1:' + s.address().port));
process.on('SIGTERM', () => s.close());
`;

async function startEcho(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const m = await waitForLine(child, /listening on udp:\/\/127\.0\.0\.1:(\d+)/, 'the echo floor');
  return { port: Number(m[1]), child };
}

async function startDnsmasq(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  // The same records as the lab's zone for the names dnsperf asks; no cache, config, hosts or upstream.
  const child = spawn('dnsmasq', [
    '-k', '--conf-file=/dev/null', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
    '--pid-file=', '--user=root', '--host-record=hello.lab,127.0.0.1,::1', '--txt-record=hello.lab,hello from the wirelab DNS subset',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  // dnsmasq prints nothing on success in -k mode: ask until it answers.
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('dig', ['@127.0.0.1', '-p', String(port), '+short', '+time=1', '+tries=1', 'hello.lab']);
    if (r.stdout.toString().trim() === '127.0.0.1') return { port, child };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('dnsmasq did not answer');
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const closed = new Promise((r) => child.on('close', r));
  child.kill('SIGTERM');
  await closed;
}

interface PerfResult { qps: number; sent: number; completed: number; lost: number; latencyMs: number }

function dnsperf(port: number, queryFile: string): PerfResult {
  const r = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(SECONDS), '-q', '100'], { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
  const out = r.stdout + r.stderr;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    latencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
  };
}

/** Datagrams the kernel dropped on the loopback UDP socket bound to this port (/proc/net/udp `drops`). */
function socketDrops(port: number): number {
  const hexPort = ':' + port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(hexPort)) return Number(f[f.length - 1]);
  }
  return NaN;
}

/** `inFlight` loops each keeping one query outstanding for `ms`: completed per second, and losses. */
async function clientRate(port: number, inFlight: number, ms: number): Promise<{ qps: number; completed: number; lost: number }> {
  const c = await new DnsClient({ server: { address: '127.0.0.1', port } }).start();
  let completed = 0;
  let lost = 0;
  const until = performance.now() + ms;
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < until) {
      try {
        await c.query('hello.lab', { maxAttempts: 1, attemptTimeoutMs: 1000 });
        completed++;
      } catch {
        lost++;
      }
    }
  }));
  const elapsed = performance.now() - start;
  c.close();
  return { qps: (completed / elapsed) * 1000, completed, lost };
}

/** Sends `burst` queries in one synchronous loop: replies pile up in the client socket until it reads. */
async function burst(port: number, size: number, recvBufferSize?: number): Promise<{ lost: number; rcvbuf: number; clientDrops: number; serverDrops: number }> {
  const c = await new DnsClient({ server: { address: '127.0.0.1', port }, maxPending: 60_000, recvBufferSize }).start();
  const serverBefore = socketDrops(port);
  const results = await Promise.allSettled(Array.from({ length: size }, () => c.query('hello.lab', { type: TYPE.A, maxAttempts: 1, attemptTimeoutMs: 5000 })));
  const lost = results.filter((r) => r.status === 'rejected').length;
  const rcvbuf = c.recvBufferSize();
  const clientDrops = socketDrops(c.localPort);
  c.close();
  return { lost, rcvbuf, clientDrops, serverDrops: socketDrops(port) - serverBefore };
}

async function main(): Promise<void> {
  for (const tool of ['dnsperf', 'dnsmasq', 'dig']) {
    if (!have(tool)) throw new Error(`${tool} is not installed (.ci/packages/dns.list)`);
  }
  const queryFile = join(dir, 'queries.txt');
  writeFileSync(queryFile, 'hello.lab A\nhello.lab AAAA\nhello.lab TXT\n');
  const rows: Record<string, Cell>[] = [];
  const ours: PerfResult[] = [];
  const theirs: PerfResult[] = [];
  const floor: PerfResult[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const which of ['wirelab', 'dnsmasq', 'node dgram echo (floor)'] as const) {
      const srv = which === 'wirelab' ? await startOurs() : which === 'dnsmasq' ? await startDnsmasq() : await startEcho();
      const r = dnsperf(srv.port, queryFile);
      await stop(srv.child);
      (which === 'wirelab' ? ours : which === 'dnsmasq' ? theirs : floor).push(r);
      rows.push({ measure: `dnsperf -q 100, ${SECONDS} s, round ${round}`, server: which, 'in flight': 100, qps: Math.round(r.qps), lost: r.lost, 'avg latency ms': Math.round(r.latencyMs * 100) / 100 });
      process.stdout.write(`${which} round ${round}: ${Math.round(r.qps)} q/s, ${r.lost} lost\n`);
    }
  }
  const best = (rs: PerfResult[]) => Math.max(...rs.map((r) => r.qps));
  const ratio = best(ours) / best(theirs);
  const oursLost = ours.reduce((n, r) => n + r.lost, 0);

  let srv = await startOurs();
  const rates: { inFlight: number; qps: number; lost: number }[] = [];
  for (const inFlight of [1, 10, 100]) {
    const r = await clientRate(srv.port, inFlight, 4000);
    rates.push({ inFlight, qps: r.qps, lost: r.lost });
    rows.push({ measure: 'our client, 4 s', server: 'wirelab', 'in flight': inFlight, qps: Math.round(r.qps), lost: r.lost });
    process.stdout.write(`client ${inFlight} in flight: ${Math.round(r.qps)} q/s, ${r.lost} lost\n`);
  }
  const rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const BIG = 4 * 1024 * 1024;
  const series = [
    { label: 'both sockets at the default SO_RCVBUF', client: undefined, server: undefined },
    { label: 'client asks 4 MiB, server default', client: BIG, server: undefined },
    { label: 'both ask 4 MiB', client: BIG, server: BIG },
  ];
  const lossStarts: { series: string; at: number | undefined; where: string }[] = [];
  for (const se of series) {
    if (se.server) {
      await stop(srv.child);
      srv = await startOurs(se.server);
    }
    let at: number | undefined;
    let where = '';
    for (const n of [100, 200, 400, 800, 1600, 3200, 6400, 12800]) {
      const r = await burst(srv.port, n, se.client);
      rows.push({ measure: `burst: ${se.label} (client granted ${r.rcvbuf})`, server: 'wirelab', 'in flight': n, lost: r.lost, 'drops at server socket': r.serverDrops, 'drops at client socket': r.clientDrops });
      process.stdout.write(`burst ${n} [${se.label}]: ${r.lost} lost, drops server ${r.serverDrops} client ${r.clientDrops}\n`);
      if (r.lost > 0) {
        at = n;
        where = r.serverDrops >= r.clientDrops ? 'the server socket' : 'the client socket';
        break;
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    lossStarts.push({ series: se.label, at, where });
  }
  await stop(srv.child);

  const pct = Math.round(ratio * 100);
  writeReport({
    name: 'dns',
    title: 'DNS subset: queries per second on loopback (dnsperf vs dnsmasq), our client, and where loss starts',
    columns: ['measure', 'server', 'in flight', 'qps', 'lost', 'avg latency ms', 'drops at server socket', 'drops at client socket'],
    rows,
    notes: [
      `Goal: at least 75% of dnsmasq's queries per second with zero lost replies under dnsperf -q 100. Best of ${ROUNDS} rounds: wirelab ${Math.round(best(ours))} q/s, dnsmasq ${Math.round(best(theirs))} q/s = ${pct}%: goal ${pct >= 75 && oursLost === 0 ? 'met' : 'NOT met'}; wirelab lost ${oursLost} replies in all.`,
      `All three servers run as separate processes under the same dnsperf (one thread, one socket, 100 outstanding) on the same 2 cores, so each figure is bounded by dnsperf and the scheduler as well as by the server. The floor row is a bare Node dgram socket returning a fixed reply (best ${Math.round(best(floor))} q/s): no Node server can pass it, and ours reached ${Math.round((best(ours) / best(floor)) * 100)}% of it.`,
      'Our server answers repeated questions from a bounded reply cache keyed by the query bytes after the id (the zone never changes); a first-seen question is decoded, looked up and encoded. One event-loop thread: it cannot use the second core.',
      `Our client: ${rates.map((r) => `${r.inFlight} in flight ${Math.round(r.qps)} q/s`).join(', ')}. One in flight is bound by the round trip (two event-loop wake-ups per query); 10 and 100 by our own per-query work (crypto.randomInt, a retry() with an AbortController and a timer, decode, matching) on one thread shared with the server's process on 2 cores.`,
      `Where loss starts: a burst sent in one synchronous loop; the queries queue in the server socket and the replies in the client socket until each side reads. net.core.rmem_default is ${rmemDefault}, net.core.rmem_max ${rmemMax} (a 4 MiB request is granted as twice the capped value). ${lossStarts.map((l) => `${l.series}: loss from ${l.at ?? 'none up to 12,800'} queries${l.at ? `, dropped at ${l.where}` : ''}`).join('; ')}. Drops per socket come from /proc/net/udp; "lost" counts queries with no reply within 5 s, so past the drops it includes replies stuck behind a long queue.`,
      loadNote(loadBefore),
    ],
    extra: { seconds: SECONDS, rounds: ROUNDS, ours, dnsmasq: theirs, floor, ratio, clientRates: rates, lossStarts, rmemDefault, rmemMax },
  });
}

try {
  await main();
} finally {
  await Promise.all(children.map((c) => stop(c)));
  rmSync(dir, { recursive: true, force: true });
}
