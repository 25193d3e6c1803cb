// For threadpool.sh and io_uring.sh: cuts an `strace -f -o` trace of file.mjs into phases (at the phase
// markers it writes to stderr) and reports, per phase, which threads opened and read the file and how.
// Usage: node analyze-fs.mjs TRACE FILE_PATH MAIN_TID  -> one JSON object per phase on stdout
import { readFileSync } from 'node:fs';

const [tracePath, filePath, mainText] = process.argv.slice(2);
const main = Number(mainText);
const lines = readFileSync(tracePath, 'utf8').split('\n');
const phases = [];
let cur;
const open = new Map(); // fd -> true while the traced file is open under that fd
const unfinished = new Map(); // tid -> the first half of a call another thread interrupted (strace -f)
const totals = { threadsStarted: 0 };
for (const raw of lines) {
  // strace -f splits a call that blocks while another thread runs: "<unfinished ...>" then "<... x resumed>".
  let line = raw;
  const cut = /^(\d+)\s+(.*) <unfinished \.\.\.>$/.exec(line);
  if (cut) {
    unfinished.set(cut[1], cut[2]);
    continue;
  }
  const resumed = /^(\d+)\s+<\.\.\. \w+ resumed>(.*)$/.exec(line);
  if (resumed) {
    const head = unfinished.get(resumed[1]);
    if (head === undefined) continue;
    unfinished.delete(resumed[1]);
    line = `${resumed[1]} ${head}${resumed[2]}`;
  }
  const m = /^(\d+)\s+(\w+)\((.*)$/.exec(line);
  if (!m) continue;
  const tid = Number(m[1]);
  const call = m[2];
  const rest = m[3];
  if (call === 'clone3' || call === 'clone') totals.threadsStarted++;
  const phase = /^2, "== phase (\w+) ==/.exec(rest);
  if (call === 'write' && phase) {
    cur = { phase: phase[1], openedBy: [], readBy: {}, readCalls: {}, readBytes: 0, biggestRead: 0, threadsStarted: 0, ioUringEnter: 0, ioUringSetup: 0, mainEpollWaits: 0 };
    phases.push(cur);
    continue;
  }
  if (!cur) continue;
  if (call === 'clone3' || call === 'clone') cur.threadsStarted++;
  if (call === 'io_uring_enter') cur.ioUringEnter++;
  if (call === 'io_uring_setup') cur.ioUringSetup++;
  if (call === 'epoll_pwait' && tid === main) cur.mainEpollWaits++;
  if (call === 'openat' && rest.includes(`"${filePath}"`)) {
    const fd = /= (\d+)$/.exec(rest);
    if (fd) {
      open.set(Number(fd[1]), true);
      cur.openedBy.push(tid === main ? 'main' : tid);
    }
    continue;
  }
  const fdArg = /^(\d+)[,)]/.exec(rest);
  if (!fdArg || !open.has(Number(fdArg[1]))) continue;
  if (call === 'close') {
    open.delete(Number(fdArg[1]));
    continue;
  }
  if (['read', 'pread64', 'readv', 'preadv', 'preadv2'].includes(call)) {
    const who = tid === main ? 'main' : String(tid);
    cur.readBy[who] = (cur.readBy[who] ?? 0) + 1;
    cur.readCalls[call] = (cur.readCalls[call] ?? 0) + 1;
    const n = /= (\d+)$/.exec(rest);
    if (n) cur.readBytes += Number(n[1]);
    const size = /, (\d+)(, \d+)?\) += /.exec(rest);
    if (size) cur.biggestRead = Math.max(cur.biggestRead, Number(size[1]));
  }
}
for (const p of phases) process.stdout.write(JSON.stringify(p) + '\n');
process.stdout.write(JSON.stringify({ phase: 'total', ...totals }) + '\n');
