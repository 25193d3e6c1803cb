// The files every mode reads: one big file (--size) and N small 16 KiB files (--files), in a fresh directory
// under os.tmpdir(), removed by remove() (the lab also removes it on exit and on SIGINT/SIGTERM).
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SMALL_FILE_BYTES = 16 * 1024;
const FILL_BLOCK = 1024 * 1024;

export interface LabFiles {
  dir: string;
  big: string;
  bigBytes: number;
  small: string[];
  /** Every path, big first. */
  all: string[];
  totalBytes: number;
  remove(): void;
}

/**
 * Writes the files. The content is pseudo-random (one random 1 MiB block, each copy stamped with its index)
 * so the page cache cannot share pages and a hash that mixes up two ranges would not match.
 */
export function createLabFiles(options: { bigBytes: number; smallFiles: number; prefix?: string }): LabFiles {
  const dir = mkdtempSync(join(tmpdir(), options.prefix ?? 'wirelab-io-'));
  const big = join(dir, 'big.bin');
  const block = randomFillSync(Buffer.allocUnsafe(FILL_BLOCK));
  const fd = openSync(big, 'w');
  try {
    for (let off = 0, i = 0; off < options.bigBytes; off += FILL_BLOCK, i++) {
      block.writeUInt32BE(i, 0);
      writeSync(fd, block, 0, Math.min(FILL_BLOCK, options.bigBytes - off));
    }
  } finally {
    closeSync(fd);
  }
  const small: string[] = [];
  for (let i = 0; i < options.smallFiles; i++) {
    const p = join(dir, `small-${String(i).padStart(5, '0')}.bin`);
    writeFileSync(p, randomFillSync(Buffer.allocUnsafe(SMALL_FILE_BYTES)));
    small.push(p);
  }
  let removed = false;
  return {
    dir,
    big,
    bigBytes: options.bigBytes,
    small,
    all: [big, ...small],
    totalBytes: options.bigBytes + options.smallFiles * SMALL_FILE_BYTES,
    remove() {
      if (removed) return;
      removed = true;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
