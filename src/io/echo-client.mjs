// The outside observer of the lab's event loop: a separate process (so the lab's stalls cannot stall it)
// that sends a 16-byte ping to the lab's TCP echo server every few ms and times each echo. Plain JavaScript
// so it starts with bare `node`, no loader. Usage: node echo-client.mjs HOST PORT INTERVAL_MS
// Talks to its parent over the IPC channel: {type:'report', id, from, to} -> {type:'report', id, ...}.
// Ping layout (big-endian): u32 sequence number, u32 zero, f64 send time in ms since the epoch.
import { connect } from 'node:net';

const PING_BYTES = 16;
const MAX_SAMPLES = 50_000; // a bounded ring: at one ping per 2 ms this is 100 s of history
const REPORT_WAIT_MS = 3_000;

const [host = '127.0.0.1', portText = '0', intervalText = '2'] = process.argv.slice(2);
const intervalMs = Math.max(1, Number(intervalText));
const now = () => performance.timeOrigin + performance.now();

/** [sentAt, rttMs] of answered pings, oldest first. */
const samples = [];
let seq = 0;
const sentAt = new Map(); // seq -> send time, for pings not answered yet
let pending = Buffer.alloc(0);
let timer;

const socket = connect({ host, port: Number(portText) }, () => {
  socket.setNoDelay(true);
  process.send?.({ type: 'connected' });
  timer = setInterval(ping, intervalMs);
});

function ping() {
  const b = Buffer.alloc(PING_BYTES);
  const t = now();
  b.writeUInt32BE(seq >>> 0, 0);
  b.writeDoubleBE(t, 8);
  sentAt.set(seq >>> 0, t);
  seq++;
  socket.write(b);
}

socket.on('data', (chunk) => {
  const t = now();
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  let off = 0;
  for (; off + PING_BYTES <= pending.length; off += PING_BYTES) {
    const s = pending.readUInt32BE(off);
    const sent = pending.readDoubleBE(off + 8);
    sentAt.delete(s);
    samples.push([sent, t - sent]);
    if (samples.length > MAX_SAMPLES) samples.shift();
  }
  pending = pending.subarray(off);
});

socket.on('error', (err) => {
  process.send?.({ type: 'error', message: err.message, code: err.code });
  process.exit(1);
});
socket.on('close', () => {
  clearInterval(timer);
  process.exit(0);
});

function oldestUnansweredBefore(to) {
  for (const t of sentAt.values()) if (t <= to) return true;
  return false;
}

process.on('message', async (msg) => {
  if (msg?.type === 'stop') {
    clearInterval(timer);
    socket.end();
    return;
  }
  if (msg?.type !== 'report') return;
  // Wait for the echoes of every ping sent before `to`: they may still be queued behind a stall.
  const until = Date.now() + REPORT_WAIT_MS;
  while (oldestUnansweredBefore(msg.to) && Date.now() < until) await new Promise((r) => setTimeout(r, 1));
  const rtts = [];
  for (const [sent, rtt] of samples) if (sent <= msg.to && sent + rtt >= msg.from) rtts.push(rtt);
  rtts.sort((a, b) => a - b);
  const p = (q) => (rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))] : 0);
  process.send?.({ type: 'report', id: msg.id, count: rtts.length, maxMs: rtts.at(-1) ?? 0, p50Ms: p(0.5), p99Ms: p(0.99), lost: oldestUnansweredBefore(msg.to) });
});
