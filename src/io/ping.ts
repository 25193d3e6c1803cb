// The lab's `client` command: the same 16-byte pings as echo-client.mjs, sent from this process and timed
// here, for pinging an echo server run by hand (`03-sync-vs-async.ts server`).
import { connect } from 'node:net';
import { once } from 'node:events';
import { PING_BYTES, pingAnnotator } from './echo.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';
import { WirelabError } from '../errors.ts';

export interface PingStats {
  count: number;
  minMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export async function pingServer(o: { host: string; port: number; count: number; intervalMs: number; recorder?: Recorder; timeoutMs?: number }): Promise<PingStats> {
  const socket = connect({ host: o.host, port: o.port });
  tapSocket(socket, o.recorder, { side: 'client', annotate: pingAnnotator });
  await once(socket, 'connect');
  socket.setNoDelay(true);
  const rtts: number[] = [];
  const sent = new Map<number, number>();
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    const t = performance.now();
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let off = 0;
    for (; off + PING_BYTES <= pending.length; off += PING_BYTES) {
      const seq = pending.readUInt32BE(off);
      const at = sent.get(seq);
      if (at !== undefined) rtts.push(t - at);
      sent.delete(seq);
    }
    pending = pending.subarray(off);
  });
  try {
    for (let seq = 0; seq < o.count; seq++) {
      const b = Buffer.alloc(PING_BYTES);
      b.writeUInt32BE(seq, 0);
      b.writeDoubleBE(performance.timeOrigin + performance.now(), 8);
      sent.set(seq, performance.now());
      socket.write(b);
      await new Promise((r) => setTimeout(r, o.intervalMs));
    }
    const until = Date.now() + (o.timeoutMs ?? 2000);
    while (rtts.length < o.count && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    if (rtts.length < o.count) throw new WirelabError('ERR_TIMEOUT', `${o.count - rtts.length} of ${o.count} pings got no echo`);
  } finally {
    socket.end();
  }
  rtts.sort((a, b) => a - b);
  const q = (p: number) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))]!;
  return { count: rtts.length, minMs: rtts[0]!, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: rtts.at(-1)! };
}
