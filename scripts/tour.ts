// npm start: every lab's demo in turn (labs/*.ts in name order), each on its own ephemeral loopback
// ports, then one summary line per lab. Exits non-zero if any lab failed.
// Usage: npm start [-- FILTER...]   e.g. `npm start -- 01 hexdump`
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const LAB_TIMEOUT_MS = 50_000;
const labsDir = fileURLToPath(new URL('../labs/', import.meta.url));
const filters = process.argv.slice(2);
const labs = readdirSync(labsDir)
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  .sort()
  .map((f) => f.slice(0, -3))
  .filter((name) => filters.length === 0 || filters.some((x) => name.includes(x)));

interface Result { name: string; ok: boolean; ms: number; detail: string }

function runDemo(name: string): Promise<Result> {
  const started = performance.now();
  return new Promise((resolve) => {
    process.stdout.write(`\n${'='.repeat(78)}\n== ${name}\n${'='.repeat(78)}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', join(labsDir, `${name}.ts`)], { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), LAB_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      const ok = code === 0;
      resolve({ name, ok, ms, detail: ok ? '' : signal ? `killed (${signal}${signal === 'SIGKILL' ? `, over ${LAB_TIMEOUT_MS / 1000} s` : ''})` : `exit code ${code}` });
    });
  });
}

const results: Result[] = [];
const t0 = performance.now();
for (const name of labs) results.push(await runDemo(name));
const width = Math.max(...results.map((r) => r.name.length), 4);
process.stdout.write(`\n${'='.repeat(78)}\ntour: ${results.length} labs in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
for (const r of results) {
  process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name.padEnd(width)}  ${(r.ms / 1000).toFixed(1).padStart(5)} s  ${r.detail}\n`);
}
process.exitCode = results.every((r) => r.ok) && results.length > 0 ? 0 : 1;
