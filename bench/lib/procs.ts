// Child processes for the load bench: servers started on ephemeral loopback ports (each announces
// `listening on tcp://HOST:PORT`), a free port for tools that cannot listen on port 0, CPU pinning with
// taskset, and stopping exactly the processes started here (by their pid).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';

export interface Started {
  child: ChildProcess;
  pid: number;
  port: number;
  /** What the process printed, for error messages. */
  output(): string;
}

const LISTENING = /listening on tcp:\/\/[^\s]+:(\d+)/;

/** Spawns a server and resolves when a line of its stdout (or stderr) matches `ready` (port in group 1). */
export function startServer(cmd: string, args: string[], opts: { cwd?: string; ready?: RegExp; port?: number; timeoutMs?: number } = {}): Promise<Started> {
  const ready = opts.ready ?? LISTENING;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${cmd} did not get ready in ${opts.timeoutMs ?? 15000} ms`)), opts.timeoutMs ?? 15000);
    const finish = (err: Error | null, port?: number): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        child.kill('SIGKILL');
        reject(new Error(`${err.message}; output: ${text.trim().slice(-500) || '(none)'}`));
      } else resolve({ child, pid: child.pid!, port: port!, output: () => text });
    };
    const onData = (d: Buffer): void => {
      if (text.length < 100_000) text += d.toString();
      const m = ready.exec(text);
      if (m && !done) finish(null, opts.port ?? Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (err) => finish(err));
    child.on('exit', (code, signal) => finish(new Error(`${cmd} exited (code ${code}, signal ${signal}) before it was ready`)));
  });
}

/** Stops a server started here: SIGTERM, then SIGKILL if it has not exited after graceMs. */
export function stopServer(s: Started | undefined, graceMs = 2000): Promise<void> {
  if (s === undefined || s.child.exitCode !== null || s.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
    s.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    s.child.kill('SIGTERM');
  });
}

/** A loopback port that was free a moment ago (for redis-server, whose port 0 means "no TCP"). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = a !== null && typeof a === 'object' ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Pins every thread of a running process to one CPU (taskset -a -p). */
export function pin(pid: number, cpu: number): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpu} ${pid} failed: ${r.stderr || r.error?.message}`);
}

/** For the reference servers run as processes: `--port` (default 0) and `--host` (default 127.0.0.1). */
export function listenArgs(argv = process.argv): { port: number; host: string } {
  const arg = (name: string, dflt: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i === -1 ? dflt : (argv[i + 1] ?? dflt);
  };
  return { port: Number(arg('port', '0')), host: arg('host', '127.0.0.1') };
}

/** Prints the `listening on tcp://HOST:PORT` line the bench waits for; exits on SIGTERM or SIGINT. */
export function serveAsProcess(server: Server): void {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('server is not listening on TCP');
  process.stdout.write(`listening on tcp://${a.address}:${a.port}\n`);
  const stop = (): void => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
