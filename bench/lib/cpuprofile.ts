// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time per function, as a
// share of the busy time (idle and the program/GC pseudo-nodes are listed, not hidden).
// The sampler records where the thread is even while the OS has it descheduled, so on a busy machine
// syscalls look longer than they are; compare shares within one profile, not across machines.
// Usage: node --import tsx bench/lib/cpuprofile.ts FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  fn: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

function label(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url ? url.replace(/^file:\/\//, '').split('/').slice(-2).join('/') : '';
  return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
}

export function selfTimes(profile: Profile): { busyMs: number; idleMs: number; rows: SelfTime[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    if (!node) continue;
    total += dt;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const k = label(node);
    ms.set(k, (ms.get(k) ?? 0) + dt);
  }
  const busy = total - idle;
  const rows = [...ms].sort((a, b) => b[1] - a[1]).map(([fn, t]) => ({ fn, ms: Math.round(t), share: busy > 0 ? t / busy : 0 }));
  return { busyMs: Math.round(busy), idleMs: Math.round(idle), rows };
}

export function summarise(file: string, top = 20): string[] {
  const { busyMs, idleMs, rows } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  return [
    `busy ${busyMs} ms, idle ${idleMs} ms; self time as a share of busy time:`,
    ...rows.slice(0, top).map((r) => `${(r.share * 100).toFixed(1).padStart(5)}%  ${r.fn}`),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: cpuprofile.ts FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(summarise(file, Number(process.argv[3] ?? 30)).join('\n') + '\n');
}
