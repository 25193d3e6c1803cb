// The echo-latency probe: a TCP echo server on the lab's own event loop, pinged every few ms by a client in
// a child process (echo-client.mjs). While the loop is stalled the pings queue in the kernel's socket
// buffer and are answered together when the loop runs again, so a stall shows up from outside as latency.
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { WirelabError } from '../errors.ts';
import { tapSocket, type Recorder } from '../trace/recorder.ts';

export const PING_BYTES = 16;
export const DEFAULT_PING_MS = 2;
const CLIENT_URL = new URL('./echo-client.mjs', import.meta.url);

/** Names each 16-byte ping in --trace output: `ping seq=N`. */
export function pingAnnotator(): (chunk: Buffer) => string[] {
  let partial = Buffer.alloc(0); // bytes of a ping begun in an earlier chunk
  return (chunk) => {
    const buf = partial.length ? Buffer.concat([partial, chunk]) : chunk;
    const notes: string[] = [];
    let off = 0;
    for (; off + PING_BYTES <= buf.length; off += PING_BYTES) notes.push(`ping seq=${buf.readUInt32BE(off)} sent=${buf.readDoubleBE(off + 8).toFixed(3)}`);
    partial = Buffer.from(buf.subarray(off));
    if (partial.length) notes.push(`(${partial.length} bytes of the next ping)`);
    return notes;
  };
}

/** A plain echo server: every byte received is written back. Tapped for --trace. */
export function createEchoServer(recorder?: Recorder): Server {
  return createServer((socket: Socket) => {
    tapSocket(socket, recorder, { side: 'server', annotate: pingAnnotator });
    socket.setNoDelay(true);
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
}

export interface EchoReport {
  count: number;
  maxMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Some ping sent in the window got no echo within the wait. */
  lost: boolean;
}

/** Wall-clock ms, comparable between processes (the client stamps pings with the same clock). */
export const wallNow = (): number => performance.timeOrigin + performance.now();

export class EchoProbe {
  private nextId = 1;
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly server: Server,
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  static async start(options: { host?: string; pingMs?: number; recorder?: Recorder } = {}): Promise<EchoProbe> {
    const host = options.host ?? '127.0.0.1';
    const server = createEchoServer(options.recorder);
    server.listen(0, host);
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const child = fork(CLIENT_URL, [host, String(port), String(options.pingMs ?? DEFAULT_PING_MS)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const probe = new EchoProbe(server, child, port);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new WirelabError('ERR_PROBE_FAILED', 'echo client did not connect within 5 s')), 5000);
        child.on('message', (m: { type?: string; message?: string }) => {
          if (m.type === 'connected') {
            clearTimeout(timer);
            resolve();
          } else if (m.type === 'error') reject(new WirelabError('ERR_PROBE_FAILED', `echo client: ${m.message}`));
        });
        child.once('exit', (code) => reject(new WirelabError('ERR_PROBE_FAILED', `echo client exited with code ${code}`)));
      });
    } catch (err) {
      await probe.stop();
      throw err;
    }
    return probe;
  }

  /** Echo round trips of the pings that overlapped [from, to] (wall-clock ms, see wallNow). */
  report(from: number, to: number): Promise<EchoReport> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (m: { type?: string; id?: number } & EchoReport) => {
        if (m.type !== 'report' || m.id !== id) return;
        cleanup();
        resolve({ count: m.count, maxMs: m.maxMs, p50Ms: m.p50Ms, p99Ms: m.p99Ms, lost: m.lost });
      };
      const onExit = () => {
        cleanup();
        reject(new WirelabError('ERR_PROBE_FAILED', 'echo client exited before reporting'));
      };
      const cleanup = () => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send({ type: 'report', id, from, to });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      if (this.child.connected) this.child.send({ type: 'stop' });
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    this.server.close();
    // A connection the child did not close (it was killed) would hold the server open.
    for (const s of this.sockets) s.destroy();
  }
}
