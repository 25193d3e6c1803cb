// Shared test helpers. Not a test file itself (uvu only runs *.test.ts).
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import type { AddressInfo, Server } from 'node:net';

/** uvu's assert.throws is synchronous only: this awaits a rejection and asserts its code. */
export async function rejects(promise: Promise<unknown>, code: string, message?: string): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.is((err as { code?: string }).code, code, message ?? `expected rejection with ${code}, got ${String(err)}`);
    return err as Error;
  }
  throw new assert.Assertion({ message: message ?? `expected a rejection with ${code}, but it resolved`, operator: 'rejects', expects: code, actual: 'resolved', generated: true });
}

/** Asserts that fn throws synchronously with the given code. */
export function throwsCode(fn: () => unknown, code: string): Error {
  try {
    fn();
  } catch (err) {
    assert.is((err as { code?: string }).code, code, `expected ${code}, got ${String(err)}`);
    return err as Error;
  }
  throw new assert.Assertion({ message: `expected a throw with ${code}`, operator: 'throws', expects: code, actual: 'returned', generated: true });
}

const toolCache = new Map<string, boolean>();

export function hasTool(name: string): boolean {
  let found = toolCache.get(name);
  if (found === undefined) {
    found = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
    toolCache.set(name, found);
  }
  return found;
}

/**
 * For tests that need an outside tool. On a developer machine without it, the test is skipped with a
 * loud message (returns false); under CI=true a missing tool is a failure (throws).
 */
export function needTool(name: string, why = ''): boolean {
  if (hasTool(name)) return true;
  const text = `required tool '${name}' is not installed${why ? ` (${why})` : ''}`;
  if (process.env.CI === 'true') throw new Error(`${text}: under CI=true this is a failure (.ci/run installs it)`);
  process.stderr.write(`\n!!! SKIPPED: ${text}. Install it to run this interop test.\n`);
  return false;
}

export function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** Resolves when the predicate holds, polling every 5 ms; rejects after timeoutMs (bounded loops only). */
export async function waitFor(predicate: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A seeded PRNG (mulberry32) so fuzz runs are repeatable: the seed is printed on failure. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
