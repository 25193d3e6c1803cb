// Runs a lab as its own process, as a user would (node --import tsx labs/NAME.ts ...).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runLabProcess(name: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `labs/${name}.ts`, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Starts a lab server and resolves with its port once it prints `listening on SCHEME://HOST:PORT`. */
export function startLabServer(name: string, args: string[] = []): Promise<{ child: ChildProcess; port: number; url: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `labs/${name}.ts`, 'server', '--port', '0', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} server did not print its listening line: ${out}`));
    }, 15_000);
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on ((?:tcp|udp|http):\/\/[^\s]+:(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[2]), url: m[1]!, output: () => out });
      }
    });
    child.stderr.on('data', (c) => (out += c));
    child.on('error', reject);
  });
}
