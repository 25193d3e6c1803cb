// For threadpool.sh and io_uring.sh: read one file with each API, a phase marker written to stderr before
// each so the strace output can be cut into phases. Usage: node file.mjs PATH [phase...]
import { readFileSync, readFile, createReadStream } from 'node:fs';
import { readFile as readFileP } from 'node:fs/promises';
import { lookup } from 'node:dns';

const [path, ...wanted] = process.argv.slice(2);
const all = ['readFileSync', 'readFile', 'promises', 'stream', 'lookup'];
const phases = wanted.length ? wanted : all;
const mark = (name) => process.stderr.write(`== phase ${name} ==\n`);
process.stderr.write(`main-tid ${process.pid}\n`);

for (const p of phases) {
  mark(p);
  if (p === 'readFileSync') readFileSync(path);
  if (p === 'readFile') await new Promise((res, rej) => readFile(path, (e) => (e ? rej(e) : res())));
  if (p === 'promises') await readFileP(path);
  if (p === 'stream') for await (const _ of createReadStream(path)) { /* drain */ }
  if (p === 'lookup') await new Promise((res, rej) => lookup('localhost', (e) => (e ? rej(e) : res())));
}
mark('end');
