#!/usr/bin/env node
// npm test: uvu over test/ through tsx. uvu exits 0 when no test ran, so this fails the run then, and it
// always ends with the one line CI reads: `N passed, N failed` (with `, N skipped` when any were skipped).
// Usage: npm test [-- PATTERN]   (PATTERN is uvu's file pattern, e.g. `wire/`)
import { spawn } from 'node:child_process';

const LIMIT_MS = 170_000; // npm test must stay under 3 minutes on a 2-core machine
// Only *.test.ts files are tests; a filter narrows them, e.g. `npm test -- wire/` runs test/wire/*.test.ts.
const filter = process.argv[2] ? process.argv[2].replace(/[.+?^${}()|[\]\\]/g, '\\$&') + '.*' : '';
const args = ['--import', 'tsx', 'node_modules/uvu/bin.js', 'test', `${filter}\\.test\\.ts$`];
if (!process.env.FORCE_COLOR) args.push('--no-color');

const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? '0' } });
// After uvu's summary the process should exit by itself. If it does not, a test left a socket, timer or
// child process open: kill it after a grace period, and count it as a failure when every test passed.
const EXIT_GRACE_MS = 10_000;
let output = '';
let graceTimer;
child.stdout.on('data', (chunk) => {
  output += chunk;
  process.stdout.write(chunk);
  if (!graceTimer && /Duration:/.test(output)) {
    graceTimer = setTimeout(() => {
      process.stdout.write(`\nthe test process did not exit ${EXIT_GRACE_MS / 1000} s after its summary: a test left a handle open; killed\n`);
      child.kill('SIGKILL');
    }, EXIT_GRACE_MS);
  }
});
const timer = setTimeout(() => {
  process.stdout.write(`\ntest run exceeded ${LIMIT_MS / 1000} s: killed\n`);
  child.kill('SIGKILL');
}, LIMIT_MS);

child.on('close', (code, signal) => {
  clearTimeout(timer);
  clearTimeout(graceTimer);
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label) => {
    const m = plain.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm'));
    return m ? Number(m[1]) : undefined;
  };
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped') ?? 0;
  let failed;
  if (total === undefined || passed === undefined) {
    process.stdout.write(`\nuvu ended (code ${code}, signal ${signal}) without a summary: counted as a failure\n`);
    failed = 1;
  } else {
    failed = Math.max(0, total - passed - skipped);
    if (failed === 0 && code !== 0) failed = 1; // a crash after the summary, or a handle left open
  }
  if (total === 0) {
    process.stdout.write('\nno test ran: counted as a failure\n');
    failed = Math.max(failed, 1);
  }
  process.stdout.write(`\n${passed ?? 0} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(failed > 0 ? 1 : 0);
});
