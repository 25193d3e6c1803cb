// One threadpool-saturation run, in its own process because libuv reads UV_THREADPOOL_SIZE once, when the
// pool first starts. Plain JavaScript so it starts with bare `node`. Prints one JSON line on stdout.
// Usage: UV_THREADPOOL_SIZE=N node saturation-child.mjs FIFO_DIR SLOW_READS DELAY_MS SMALL_FILE
//
// The "slow files" are FIFOs: an fs.read() on one blocks a threadpool thread inside read(2) until bytes
// arrive, like a read from a slow disk or a network filesystem. A responder thread (a worker_threads
// Worker, which does not use the libuv threadpool) plays the slow device: it watches
// /proc/self/task/<tid>/syscall for threads blocked in read(2) on one of the FIFOs and writes one byte
// DELAY_MS after it first saw that read waiting. So each slow read takes about DELAY_MS from the moment a
// thread starts it, and only as many run at once as the pool has threads.
import { openSync, readdirSync, read, readFile, constants } from 'node:fs';
import { lookup } from 'node:dns';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

const [dir, countText, delayText, smallFile] = process.argv.slice(2);
const count = Number(countText);
const delayMs = Number(delayText);
const now = () => performance.now();

function fail(message) {
  process.stdout.write(JSON.stringify({ error: message }) + '\n');
  process.exit(1);
}

// Syscall numbers that mean "reading", per architecture (a blocked thread shows its syscall number first).
const READ_SYSCALLS = { x64: [0, 17, 19, 295], arm64: [63, 67, 65, 69] }[process.arch];
if (process.platform !== 'linux' || !READ_SYSCALLS) fail(`needs Linux /proc/<pid>/task/<tid>/syscall on x64 or arm64, not ${process.platform}/${process.arch}`);

const fifos = readdirSync(dir).filter((f) => f.startsWith('slow-')).sort().slice(0, count).map((f) => join(dir, f));
if (fifos.length < count) fail(`expected ${count} FIFOs in ${dir}, found ${fifos.length}`);
// O_RDWR on a FIFO never blocks on Linux (fifo(7)) and makes this process a writer, so the read-only open
// below does not block either; the reads then block until the responder writes.
const writeFds = fifos.map((p) => openSync(p, constants.O_RDWR | constants.O_NONBLOCK));
const readFds = fifos.map((p) => openSync(p, constants.O_RDONLY));

const responderSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { readdirSync, readFileSync, writeSync } = require('node:fs');
const { readFds, writeFds, delayMs, readSyscalls } = workerData;
const index = new Map(readFds.map((fd, i) => [fd, i]));
const firstSeen = new Map();
const answered = new Set();
const timer = setInterval(() => {
  const t = performance.now();
  for (const tid of readdirSync('/proc/self/task')) {
    let text;
    try { text = readFileSync('/proc/self/task/' + tid + '/syscall', 'latin1'); } catch { continue; }
    const [nr, arg0] = text.split(' ');
    if (!readSyscalls.includes(Number(nr))) continue;
    const fd = Number(arg0);
    if (!index.has(fd) || answered.has(fd)) continue;
    if (!firstSeen.has(fd)) firstSeen.set(fd, t);
  }
  for (const [fd, seen] of firstSeen) {
    if (t - seen < delayMs) continue;
    writeSync(writeFds[index.get(fd)], 'x');
    answered.add(fd);
    firstSeen.delete(fd);
  }
  if (answered.size === readFds.length) { clearInterval(timer); parentPort.postMessage('done'); }
}, 1);
parentPort.postMessage('ready');
`;

// Warm up what the measured calls use (the threadpool itself, NSS for getaddrinfo, the small file), so the
// delays below are queueing, not first-use costs; then the same two calls on an idle pool, for comparison.
await measureQuick();
const baseline = await measureQuick();

const responder = new Worker(responderSource, { eval: true, workerData: { readFds, writeFds, delayMs, readSyscalls: READ_SYSCALLS } });
await new Promise((resolve, reject) => {
  responder.once('message', resolve);
  responder.once('error', reject);
});

const t0 = now();
let slowDone = 0;
let slowLast = 0;
const slow = readFds.map(
  (fd) =>
    new Promise((resolve, reject) =>
      read(fd, Buffer.alloc(1), 0, 1, null, (err) => {
        if (err) return reject(err);
        slowDone++;
        slowLast = now() - t0;
        resolve();
      }),
    ),
);
// Issued after the 64 slow reads, so libuv queues them behind those (its queue is first in, first out).
const measured = measureQuick();
const [{ lookupMs, smallReadMs }] = await Promise.all([measured, Promise.all(slow)]);
await responder.terminate();

process.stdout.write(
  JSON.stringify({
    size: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    slowReads: slowDone,
    slowReadDelayMs: delayMs,
    slowReadsTotalMs: round(slowLast),
    lookupDelayMs: round(lookupMs),
    smallReadDelayMs: round(smallReadMs),
    baselineLookupMs: round(baseline.lookupMs),
    baselineSmallReadMs: round(baseline.smallReadMs),
  }) + '\n',
);
process.exit(0);

function round(x) {
  return Math.round(x * 100) / 100;
}

function measureQuick() {
  const t = now();
  const lookupMs = new Promise((resolve, reject) => lookup('localhost', (err) => (err ? reject(err) : resolve(now() - t))));
  const smallReadMs = new Promise((resolve, reject) => readFile(smallFile, (err) => (err ? reject(err) : resolve(now() - t))));
  return Promise.all([lookupMs, smallReadMs]).then(([l, s]) => ({ lookupMs: l, smallReadMs: s }));
}
