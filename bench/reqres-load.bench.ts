// Loopback load run of the request/response server (issue 2) beside its references, measured in the same
// run and alternated A B C D A B C D within each scenario so drift (other work on the machine, CPU
// frequency) hits every target alike:
//   wirelab  labs/01-request-response.ts server (src/patterns/frame-server.ts), 32-byte `echo`
//   inline   bench/lib/inline-server.ts: the same frames, hand-inlined (the ceiling for Node)
//   redis    redis-server 7 answering PING over RESP (the real system that does this job)
//   http     node:http keep-alive (bench/lib/http-server.ts) under wrk, pipelined with a Lua script
// The frame and RESP targets are driven by one load client (bench/lib/frame-load.ts) in its own process;
// redis-benchmark -P 100 -c 50 -t ping_mbulk against the same redis-server calibrates it: our client must
// reach at least 70% of redis-benchmark's figure, or the other figures measure the client, not the servers.
//
// Usage: [WIRELAB_LAB=labs/x.ts] npm run bench -- reqres [--duration S] [--rounds N] [--pin]
//          [--only wirelab,inline,redis,http] [--scenarios 1x1,1x100,50x1,50x100] [--profile]
//   --duration  seconds measured per run (default 2; wrk takes whole seconds)
//   --rounds    runs per target and scenario, alternated (default 3); the table gives the median
//   --pin       taskset: servers on CPU 0, load clients (ours, wrk, redis-benchmark) on CPU 1, for repeatable
//               figures (unpinned, the single-connection lockstep figures swing 2-6x with core placement)
//   --profile   run the wirelab server under node --cpu-prof and print where its time went (the profiler
//               costs a little throughput: leave it off for the figures); e.g. --profile --scenarios 50x100
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeReport, sampleLoad, loadNote, type Cell } from './lib/results.ts';

import { processCpuSeconds, type LoadOptions, type LoadResult } from './lib/frame-load.ts';
import { summarise } from './lib/cpuprofile.ts';
import { startServer, stopServer, freePort, hasCommand, pin, type Started } from './lib/procs.ts';

/** Taken before anything runs, for the note on how busy the machine was. */
const loadBefore = await sampleLoad();

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIB = join(ROOT, 'bench', 'lib');
// WIRELAB_LAB=path benches another build of the lab (same CLI: `server --port 0`), e.g. a server variant.
const LAB = process.env.WIRELAB_LAB ?? join(ROOT, 'labs', '01-request-response.ts');

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: false, // npm run bench passes every bench the same flags
  options: {
    duration: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    pin: { type: 'boolean', default: false },
    only: { type: 'string' },
    scenarios: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
const rounds = Number(values.rounds);
if (!(durationS > 0 && durationS <= 600) || !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 50)) {
  process.stderr.write('--duration must be a number of seconds (0-600], --rounds a whole number 1-50\n');
  process.exit(2);
}
const durationMs = durationS * 1000;
const wrkSeconds = Math.max(1, Math.round(durationS));
const WARMUP_MS = 300;
const PIN = values.pin === true;
const SERVER_CPU = 0;
const CLIENT_CPU = 1;
if (PIN && (!hasCommand('taskset') || cpus().length < 2)) {
  process.stderr.write('--pin needs taskset (util-linux) and at least 2 CPUs\n');
  process.exit(2);
}
const only = typeof values.only === 'string' ? values.only.split(',') : null;
const KEYS = ['wirelab', 'inline', 'redis', 'http'];
if (only?.some((k) => !KEYS.includes(k))) {
  process.stderr.write(`--only takes a comma-separated list of ${KEYS.join(', ')}\n`);
  process.exit(2);
}
const PROFILE = values.profile === true;
const PROFILE_DIR = join(ROOT, 'tmp', 'profile'); // tmp/ is git-ignored

type Key = 'wirelab' | 'inline' | 'redis' | 'http';
interface Target {
  key: Key;
  label: string;
  server?: Started;
  unavailable?: string;
}
const TARGETS: Target[] = [
  { key: 'wirelab', label: 'wirelab server (frame echo)' },
  { key: 'inline', label: 'hand-inlined Node (frame echo)' },
  { key: 'redis', label: 'redis-server (RESP PING)' },
  { key: 'http', label: 'node:http keep-alive (wrk)' },
];
const ALL_SCENARIOS = [
  { connections: 1, depth: 1 },
  { connections: 1, depth: 100 },
  { connections: 50, depth: 1 },
  { connections: 50, depth: 100 },
];
const wanted = typeof values.scenarios === 'string' ? values.scenarios.split(',') : null;
const SCENARIOS = ALL_SCENARIOS.filter((s) => wanted === null || wanted.includes(`${s.connections}x${s.depth}`));
if (SCENARIOS.length === 0) {
  process.stderr.write(`--scenarios: none of ${values.scenarios} is one of ${ALL_SCENARIOS.map((s) => `${s.connections}x${s.depth}`).join(',')}\n`);
  process.exit(2);
}
const scenarioName = (s: { connections: number; depth: number }): string => `${s.connections} conn x ${s.depth === 1 ? 'lockstep' : `${s.depth} pipelined`}`;

interface Measurement {
  rps: number;
  serverCpu: number | null;
  clientCpu: number | null;
  problem?: string;
}

// ---- start everything ----

const log = (s: string): void => void process.stdout.write(s + '\n');
const node = (file: string, args: string[] = []): [string, string[]] => [process.execPath, ['--import', 'tsx', file, ...args]];

async function startTarget(t: Target): Promise<void> {
  if (only && !only.includes(t.key)) {
    t.unavailable = 'skipped (--only)';
    return;
  }
  try {
    if (t.key === 'wirelab') {
      if (!existsSync(LAB)) throw new Error(`${LAB} does not exist (labs/01-request-response.ts not on this branch yet?)`);
      const prof = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
      t.server = await startServer(process.execPath, [...prof, '--import', 'tsx', LAB, 'server', '--port', '0'], { cwd: ROOT });
    } else if (t.key === 'inline') {
      t.server = await startServer(...node(join(LIB, 'inline-server.ts'), ['--port', '0']), { cwd: ROOT });
    } else if (t.key === 'http') {
      if (!hasCommand('wrk')) throw new Error('wrk is not installed (apt-get install wrk)');
      t.server = await startServer(...node(join(LIB, 'http-server.ts'), ['--port', '0']), { cwd: ROOT });
    } else {
      if (!hasCommand('redis-server')) throw new Error('redis-server is not installed (apt-get install redis-server)');
      // No persistence, loopback only; the port was free a moment ago (redis cannot listen on port 0).
      const port = await freePort();
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'notice'];
      t.server = await startServer('redis-server', args, { ready: /Ready to accept connections/, port, cwd: tmpdir() });
    }
    if (PIN) pin(t.server.pid, SERVER_CPU);
  } catch (err) {
    t.unavailable = (err as Error).message.split('\n')[0]!;
  }
}

// The load client: one long-lived process, so no start-up per run, and the server gets its own core.
let loadWorker: ChildProcess | undefined;
function startLoadWorker(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(LIB, 'frame-load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', () => resolve(child)); // {ready: true}
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`load client exited with ${code}`)));
  });
}

function runLoadInWorker(options: LoadOptions): Promise<LoadResult> {
  const w = loadWorker!;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('load run did not finish')), WARMUP_MS + durationMs + 15_000);
    w.once('message', (msg: { result?: LoadResult; error?: string }) => {
      clearTimeout(timer);
      if (msg.result) resolve(msg.result);
      else reject(new Error(msg.error ?? 'load client failed'));
    });
    w.send({ run: options });
  });
}

/** Runs a tool to completion (pinned to the client CPU with --pin); resolves with its stdout and stderr. */
function runTool(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const [c, a] = PIN ? ['taskset', ['-c', String(CLIENT_CPU), cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), wrkSeconds * 1000 + 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function measureWrk(t: Target, connections: number, depth: number): Promise<Measurement> {
  const server = t.server!;
  const url = `http://127.0.0.1:${server.port}/`;
  const args = ['-t1', `-c${connections}`, `-d${wrkSeconds}s`];
  if (depth > 1) args.push('-s', join(LIB, 'wrk-pipeline.lua'), url, '--', String(depth));
  else args.push(url);
  const c0 = processCpuSeconds(server.pid);
  const t0 = performance.now();
  const { code, out } = await runTool('wrk', args);
  const elapsed = (performance.now() - t0) / 1000;
  const c1 = processCpuSeconds(server.pid);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (code !== 0 || !m) throw new Error(`wrk failed (code ${code}): ${out.trim().slice(-300)}`);
  const problems = [/Non-2xx or 3xx responses: \d+/.exec(out)?.[0], /Socket errors:[^\n]+/.exec(out)?.[0]].filter(Boolean);
  return {
    rps: Math.round(Number(m[1])),
    serverCpu: c0 !== null && c1 !== null ? Math.round(((c1 - c0) / elapsed) * 100) / 100 : null,
    clientCpu: null,
    ...(problems.length ? { problem: problems.join('; ') } : {}),
  };
}

async function measureLoad(t: Target, connections: number, depth: number): Promise<Measurement> {
  const r = await runLoadInWorker({
    port: t.server!.port,
    protocol: t.key === 'redis' ? 'resp' : 'frame',
    connections,
    depth,
    durationMs,
    warmupMs: WARMUP_MS,
    watchPid: t.server!.pid,
  });
  const problems: string[] = [];
  if (r.errors) problems.push(`${r.errors} bad responses (${r.errorSamples.slice(0, 2).join('; ')})`);
  if (r.errorResponses) problems.push(`${r.errorResponses} ERROR replies`);
  if (r.lost) problems.push(`${r.lost} lost`);
  return { rps: r.rps, serverCpu: r.serverCpu, clientCpu: r.clientCpu, ...(problems.length ? { problem: problems.join('; ') } : {}) };
}

/** redis-benchmark's own figure against the same redis-server: the calibration of our load client. */
async function measureRedisBenchmark(t: Target, expectedRps: number, connections: number, depth: number): Promise<Measurement> {
  // It has no duration flag: size -n from the rate seen so far so it runs about --duration.
  const n = Math.max(20_000, Math.round(expectedRps * durationS));
  const server = t.server!;
  const c0 = processCpuSeconds(server.pid);
  const t0 = performance.now();
  const { code, out } = await runTool('redis-benchmark', ['-h', '127.0.0.1', '-p', String(server.port), '-P', String(depth), '-c', String(connections), '-n', String(n), '-t', 'ping_mbulk', '--csv']);
  const elapsed = (performance.now() - t0) / 1000;
  const c1 = processCpuSeconds(server.pid);
  const m = /"PING_MBULK","([\d.]+)"/.exec(out);
  if (code !== 0 || !m) throw new Error(`redis-benchmark failed (code ${code}): ${out.trim().slice(-300)}`);
  return { rps: Math.round(Number(m[1])), serverCpu: c0 !== null && c1 !== null ? Math.round(((c1 - c0) / elapsed) * 100) / 100 : null, clientCpu: null };
}

// ---- run ----

const started = Date.now();
log(`reqres-load: ${rounds} round(s) of ${durationS} s per target and scenario${PIN ? `, pinned (servers on CPU ${SERVER_CPU}, clients on CPU ${CLIENT_CPU})` : ', unpinned (--pin for repeatable lockstep figures)'}`);
if (PROFILE) rmSync(PROFILE_DIR, { recursive: true, force: true });
await Promise.all(TARGETS.map(startTarget));
for (const t of TARGETS) log(`  ${t.key.padEnd(8)} ${t.unavailable ? `NOT MEASURED: ${t.unavailable}` : `pid ${t.server!.pid}, tcp://127.0.0.1:${t.server!.port}`}`);

const cleanup = async (): Promise<void> => {
  loadWorker?.disconnect();
  await Promise.all(TARGETS.map((t) => stopServer(t.server)));
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

type Runs = Map<string, Measurement[]>;
const runs: Runs = new Map();
const failures: string[] = [];
const keyOf = (scenario: string, target: string): string => `${scenario}|${target}`;
const record = (scenario: string, target: string, m: Measurement): void => {
  const k = keyOf(scenario, target);
  runs.set(k, [...(runs.get(k) ?? []), m]);
};

try {
  loadWorker = await startLoadWorker();
  if (PIN) pin(loadWorker.pid!, CLIENT_CPU);
  const live = TARGETS.filter((t) => !t.unavailable);
  for (const sc of SCENARIOS) {
    const name = scenarioName(sc);
    for (let round = 1; round <= rounds; round++) {
      for (const t of live) {
        try {
          const m = t.key === 'http' ? await measureWrk(t, sc.connections, sc.depth) : await measureLoad(t, sc.connections, sc.depth);
          record(name, t.key, m);
          const warn = sc.connections === 1 && sc.depth === 1 && !PIN ? '  (⚠ core placement swings this 2-6x: --pin)' : '';
          log(`  ${name.padEnd(24)} round ${round}  ${t.key.padEnd(8)} ${m.rps.toLocaleString('en-US').padStart(11)} req/s  server CPU ${m.serverCpu ?? '?'}${m.problem ? `  PROBLEM: ${m.problem}` : ''}${warn}`);
        } catch (err) {
          failures.push(`${name} ${t.key}: ${(err as Error).message}`);
          log(`  ${name.padEnd(24)} round ${round}  ${t.key.padEnd(8)} FAILED: ${(err as Error).message}`);
        }
      }
      // The calibration runs in the same rotation, right after our client's redis figure: at 50 x 100 it
      // is the goal's check; at 50 x lockstep it shows how near the client is to its limit there too.
      const redis = live.find((t) => t.key === 'redis');
      if (redis && sc.connections === 50 && hasCommand('redis-benchmark')) {
        try {
          const ours = runs.get(keyOf(name, 'redis'))?.at(-1)?.rps ?? 100_000 * sc.depth;
          const m = await measureRedisBenchmark(redis, ours, sc.connections, sc.depth);
          record(name, 'redis-benchmark', m);
          log(`  ${name.padEnd(24)} round ${round}  ${'redis-benchmark'.padEnd(8)} ${m.rps.toLocaleString('en-US').padStart(11)} req/s  server CPU ${m.serverCpu ?? '?'}`);
        } catch (err) {
          failures.push(`redis-benchmark: ${(err as Error).message}`);
        }
      }
    }
  }
} finally {
  await cleanup();
}

// The profile is written when the server exits (it exits on SIGTERM): summarise the main thread's.
let profileLines: string[] = [];
if (PROFILE) {
  const files = existsSync(PROFILE_DIR) ? readdirSync(PROFILE_DIR).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)).sort() : [];
  const latest = files.at(-1);
  profileLines = latest ? [`wirelab server profile (${join('tmp/profile', latest)}):`, ...summarise(join(PROFILE_DIR, latest), 25)] : ['no wirelab server profile was written'];
  log('\n' + profileLines.join('\n'));
}

// ---- report ----

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : Math.round((s[mid - 1]! + s[mid]!) / 2);
};
const figure = (scenario: string, target: string): number | null => {
  const r = runs.get(keyOf(scenario, target));
  return r && r.length ? median(r.map((m) => m.rps)) : null;
};
const pct = (x: number): string => `${Math.round(x * 100)}%`;
const LOCKSTEP_WARNING = 'single-connection lockstep: swings 2-6x with which core each process lands on; --pin for repeatable figures';

// Server CPU time per request does not depend on how much CPU the server got, so on a busy machine it is
// the steadier comparison; it is shown beside the goals, which are judged on req/s as specified.
const nsPerRequest = (scenario: string, target: string): number | null => {
  const xs = (runs.get(keyOf(scenario, target)) ?? []).filter((m) => m.serverCpu !== null && m.rps > 0).map((m) => (m.serverCpu! * 1e9) / m.rps);
  return xs.length ? Math.round(median(xs)) : null;
};
const columns = ['scenario', 'target', 'req/s (median)', 'runs', 'server CPU', 'client CPU', 'server ns/req', 'wirelab / target', 'limited by', 'note'];
const rows: Record<string, Cell>[] = [];
const rowTargets: { key: string; label: string }[] = [...TARGETS, { key: 'redis-benchmark', label: 'redis-benchmark -t ping_mbulk, same -c and -P (calibration)' }];
for (const sc of SCENARIOS) {
  const name = scenarioName(sc);
  const ours = figure(name, 'wirelab');
  for (const t of rowTargets) {
    const r = runs.get(keyOf(name, t.key));
    const target = TARGETS.find((x) => x.key === t.key);
    if (!r?.length) {
      if (target?.unavailable && sc === SCENARIOS[0]) rows.push({ scenario: name, target: t.label, note: `not measured: ${target.unavailable}` });
      continue;
    }
    const f = median(r.map((m) => m.rps));
    // What limits the figure, read from the CPU each side used over the window.
    const medianOf = (sel: (m: Measurement) => number | null): number | null => {
      const xs = r.map(sel).filter((x): x is number => x !== null);
      return xs.length ? median(xs.map((x) => Math.round(x * 100))) / 100 : null;
    };
    const sCpu = medianOf((m) => m.serverCpu);
    const cCpu = medianOf((m) => m.clientCpu);
    const limit =
      sCpu !== null && sCpu >= 0.8 ? 'server CPU'
      : cCpu !== null && cCpu >= 0.8 ? 'load client CPU'
      : sc.depth === 1 ? 'round trips (wake-ups, syscalls)'
      : 'CPU share: neither side saturated (other work on the machine)';
    const notes = [sc.connections === 1 && sc.depth === 1 && !PIN ? `⚠ ${LOCKSTEP_WARNING}` : '', ...r.map((m) => m.problem ?? '')].filter(Boolean);
    rows.push({
      scenario: name,
      target: t.label,
      'req/s (median)': f,
      runs: r.map((m) => m.rps.toLocaleString('en-US')).join(' / '),
      'server CPU': sCpu === null ? '' : pct(sCpu),
      'client CPU': cCpu === null ? '' : pct(cCpu),
      'server ns/req': nsPerRequest(name, t.key) ?? '',
      'wirelab / target': ours !== null && t.key !== 'wirelab' && t.key !== 'redis-benchmark' ? (t.key === 'http' ? `${(ours / f).toFixed(1)}x` : pct(ours / f)) : '',
      'limited by': limit,
      note: notes.join('; '),
    });
  }
}

// Goals, for 50 connections x 100 pipelined.
const big = scenarioName({ connections: 50, depth: 100 });
const w = figure(big, 'wirelab');
const inline = figure(big, 'inline');
const redis = figure(big, 'redis');
const http = figure(big, 'http');
const rb = figure(big, 'redis-benchmark');
interface Goal {
  goal: string;
  measured: string;
  met: boolean | null;
}
const goal = (text: string, num: number | null, den: number | null, threshold: number, asTimes = false): Goal => {
  if (num === null || den === null || den === 0) return { goal: text, measured: 'not measured', met: null };
  const ratio = num / den;
  return { goal: text, measured: asTimes ? `${ratio.toFixed(1)}x (${num.toLocaleString('en-US')} / ${den.toLocaleString('en-US')})` : `${pct(ratio)} (${num.toLocaleString('en-US')} / ${den.toLocaleString('en-US')})`, met: ratio >= threshold };
};
const goals: Goal[] = [
  goal('calibration: our load client reaches >= 70% of redis-benchmark -P 100 -c 50 (ping_mbulk) against the same redis-server', redis, rb, 0.7),
  goal('wirelab >= 80% of the hand-inlined Node ceiling', w, inline, 0.8),
  goal('wirelab >= 50% of redis-server', w, redis, 0.5),
  goal('wirelab >= 10x node:http keep-alive, pipelined 100 deep under wrk', w, http, 10, true),
];
const cpuCompare = ['inline', 'redis', 'http']
  .map((k) => [k, nsPerRequest(big, k)] as const)
  .filter((x): x is readonly [string, number] => x[1] !== null);
const wNs = nsPerRequest(big, 'wirelab');
const cpuLine =
  wNs === null
    ? null
    : `server CPU per request at 50 x 100: wirelab ${wNs} ns; ${cpuCompare.map(([k, ns]) => `${k} ${ns} ns (${wNs >= ns ? `wirelab uses ${(wNs / ns).toFixed(2)}x its CPU per request` : `it uses ${(ns / wNs).toFixed(1)}x wirelab's`})`).join('; ')}`;
const lockName = scenarioName({ connections: 50, depth: 1 });
const lockOurs = figure(lockName, 'redis');
const lockRb = figure(lockName, 'redis-benchmark');
const lockLine = lockOurs !== null && lockRb ? `at 50 x lockstep our load client reaches ${pct(lockOurs / lockRb)} of redis-benchmark -P 1 -c 50 (${lockOurs.toLocaleString('en-US')} / ${lockRb.toLocaleString('en-US')})` : null;
const verdict = (g: Goal): string => (g.met === null ? 'NOT MEASURED' : g.met ? 'MET' : 'NOT MET');
log('\nGoals for 50 connections x 100 pipelined:');
for (const g of goals) log(`  ${verdict(g).padEnd(12)} ${g.goal}: ${g.measured}`);
if (cpuLine) log(`  (${cpuLine})`);
if (lockLine) log(`  (calibration, not a goal: ${lockLine})`);
if (goals[0]!.met === false) log('  !!! the load client is below 70% of redis-benchmark: the frame figures measure the client, not the servers');

const notes = [
  ...goals.map((g) => `**${verdict(g)}** ${g.goal}: ${g.measured}`),
  ...(cpuLine ? [`Server CPU per request, the comparison that holds even when the machine is shared: ${cpuLine}.`] : []),
  loadNote(loadBefore),
  ...(lockLine ? [`Calibration, not a goal: ${lockLine}.`] : []),
  `Each figure is the median of ${rounds} run(s) of ${durationS} s (after ${WARMUP_MS} ms of warm-up; wrk: ${wrkSeconds} s, no warm-up), targets alternated within each scenario; 32-byte echo bodies (node:http: 32-byte response body; RESP: PING/+PONG).`,
  'Load client: bench/lib/frame-load.ts in its own process, one write per connection per read (all freed requests in one batch), reads into a reused buffer; it checks every id and body and counts lost requests after draining.',
  'node:http: `wrk -t1 -cN` for lockstep, and `-s bench/lib/wrk-pipeline.lua -- 100` (100 requests per write, HTTP/1.1 pipelining) for the pipelined rows.',
  'server CPU / client CPU: CPU time over the window as a share of one core (/proc): a server near 100% is the limit; a client near 100% means the figure is the client\'s. "limited by" reads them: 80% or more on one side names it; otherwise lockstep runs wait on round trips, and pipelined runs on a busy machine got less than a core. server ns/req (server CPU time per request) hardly depends on how much CPU the server got, so it is the steadier comparison on a shared machine.',
  ...(PROFILE ? ['The wirelab server ran under node --cpu-prof (--profile): its figures are a little low.', ...profileLines] : []),
  PIN ? `Pinned with taskset: servers on CPU ${SERVER_CPU}, load clients on CPU ${CLIENT_CPU}.` : `Unpinned. ${LOCKSTEP_WARNING}.`,
  ...failures.map((f) => `FAILED: ${f}`),
];
writeReport({
  name: 'reqres-load',
  title: 'Request/response load: wirelab frame server vs references (loopback)',
  columns,
  rows,
  notes,
  extra: {
    durationS,
    rounds,
    pinned: PIN,
    goals,
    serverNsPerRequest50x100: Object.fromEntries(['wirelab', 'inline', 'redis', 'http'].map((k) => [k, nsPerRequest(big, k)])),
    runs: Object.fromEntries(runs),
    unavailable: Object.fromEntries(TARGETS.filter((t) => t.unavailable).map((t) => [t.key, t.unavailable])),
    ...(PROFILE ? { wirelabProfile: profileLines } : {}),
    elapsedS: Math.round((Date.now() - started) / 1000),
  },
});
log(`reqres-load: done in ${Math.round((Date.now() - started) / 1000)} s`);
