// npm run bench: runs every bench/*.bench.ts in turn (one process each, so one cannot skew the next),
// each writing bench/results/<name>.json and <name>.md. Usage: npm run bench [-- FILTER...]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const dir = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('--'));
const passThrough = args.filter((a) => a.startsWith('--'));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort()
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
let failed = 0;
for (const f of files) {
  process.stdout.write(`\n### ${f}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, f), ...passThrough], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stdout.write(`${f}: exit code ${r.status}\n`);
  }
}
process.stdout.write(`\nbench: ${files.length - failed} of ${files.length} suites ran; results in bench/results/\n`);
process.exitCode = failed ? 1 : 0;
