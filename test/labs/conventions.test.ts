// Every lab follows the same command-line conventions (DEVELOPERS.md): a bad argument gives one line on
// stderr and exit code 2, never a stack trace; --help exits 0.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runLabProcess } from './_spawn.ts';

const test = suite('labs/conventions');
const labs = readdirSync(join(ROOT, 'labs')).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();

test('there are labs to check', () => {
  assert.ok(labs.length >= 2);
});

test('every lab: an unknown flag is one line on stderr and exit code 2', async () => {
  const results = await Promise.all(labs.map((name) => runLabProcess(name, ['--no-such-flag']).then((r) => ({ name, ...r }))));
  for (const r of results) {
    assert.is(r.code, 2, `${r.name}: exit code ${r.code}; stderr: ${r.stderr}`);
    const lines = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn'));
    assert.is(lines.length, 1, `${r.name}: stderr should be one line, got:\n${r.stderr}`);
    assert.not.match(r.stderr, /\n\s+at /, `${r.name}: a stack trace`);
    assert.match(lines[0]!, /no-such-flag/);
  }
});

test('every lab: --help prints usage and exits 0', async () => {
  const results = await Promise.all(labs.map((name) => runLabProcess(name, ['--help']).then((r) => ({ name, ...r }))));
  for (const r of results) {
    assert.is(r.code, 0, `${r.name}: --help exit code ${r.code}`);
    assert.match(r.stdout, /usage: npx tsx labs\//, r.name);
  }
});

test.run();
