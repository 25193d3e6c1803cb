// The native-notes scripts check their own claims (ok/FAIL per claim); this runs them so CI notices when a
// Node, libuv or kernel upgrade makes a note wrong. Captures are not rewritten (NATIVE_NOTES_NO_CAPTURE).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { needTool } from '../_helpers.ts';

const test = suite('io/native-notes');
const DIR = fileURLToPath(new URL('../../native-notes/scripts/', import.meta.url));

function runScript(name: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [`${DIR}${name}.sh`], { env: { ...process.env, NATIVE_NOTES_NO_CAPTURE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

for (const name of ['epoll', 'threadpool', 'io_uring']) {
  test(`${name}.md: every claim reproduces under strace -f`, async () => {
    if (!needTool('strace', 'native-notes scripts trace Node with strace -f')) return;
    if (process.platform !== 'linux') return;
    const r = await runScript(name);
    if (r.code === 2) {
      // strace is installed but ptrace is refused (a locked-down container): an environment limit, said loudly.
      process.stderr.write(`\n!!! SKIPPED ${name}.sh: ${r.out.trim().split('\n').pop()}\n`);
      return;
    }
    assert.is(r.code, 0, r.out.split('\n').filter((l) => l.startsWith('FAIL')).join('\n') || r.out.slice(-2000));
    assert.match(r.out, /every claim held/);
  });
}

test.run();
