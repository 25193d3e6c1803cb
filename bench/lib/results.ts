// Every benchmark writes its figures the same way: bench/results/<name>.json (machine-readable) and
// <name>.md (a markdown table), each with the machine, Node version and date they were measured on.
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem, release, platform, arch, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { markdownTable, type Cell } from '../../src/cli/table.ts';

export { markdownTable, type Cell };

export interface Machine {
  cpu: string;
  cores: number;
  memGiB: number;
  os: string;
  kernel: string;
  node: string;
  date: string;
}

export function machine(): Machine {
  let osName = platform() as string;
  try {
    osName = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? osName;
  } catch {
    /* not Linux */
  }
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    os: `${osName} ${arch()}`,
    kernel: release(),
    node: process.version,
    date: new Date().toISOString(),
  };
}

export interface BenchReport {
  /** File stem: bench/results/<name>.json and .md */
  name: string;
  title: string;
  /** Column names, in order; every row is keyed by them. */
  columns: string[];
  rows: Record<string, Cell>[];
  /** Goals and whether they were met, what limits each figure: shown under the table. */
  notes?: string[];
  /** Anything else worth keeping in the JSON. */
  extra?: Record<string, unknown>;
}

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

export function writeReport(report: BenchReport): { json: string; md: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const m = machine();
  const json = join(RESULTS_DIR, `${report.name}.json`);
  const md = join(RESULTS_DIR, `${report.name}.md`);
  writeFileSync(json, JSON.stringify({ ...report, machine: m }, null, 2) + '\n');
  const text =
    `# ${report.title}\n\n` +
    `Measured ${m.date} on ${m.cpu} (${m.cores} cores, ${m.memGiB} GiB), ${m.os}, kernel ${m.kernel}, Node ${m.node}.\n\n` +
    markdownTable(report.columns, report.rows) +
    (report.notes?.length ? '\n' + report.notes.map((n) => `- ${n}`).join('\n') + '\n' : '');
  writeFileSync(md, text);
  process.stdout.write('\n' + text);
  return { json, md };
}

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    const sum = t.user + t.nice + t.sys + t.idle + t.irq;
    total += sum;
    busy += sum - t.idle;
  }
  return { busy, total };
}

/** What the machine was doing just before a benchmark: take it first thing, pass it to loadNote() at the end. */
export interface MachineLoad {
  /** Share of all cores busy over the sample, 0-1. */
  busy: number;
  /** The 1-minute load average (a trailing average: it still holds the previous benchmark of a run). */
  load1: number;
}

/** Samples how busy the CPUs are over `ms` (default 1 s), before anything of the benchmark runs. */
export async function sampleLoad(ms = 1000): Promise<MachineLoad> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  return { busy: b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0, load1: loadavg()[0]! };
}

/**
 * A note on how busy the machine was in the second before the benchmark started. Above a quarter of the
 * cores busy, other work was running and the figures are noisy for it.
 */
export function loadNote(before: MachineLoad): string {
  const cores = cpus().length;
  const text = `CPU ${(before.busy * 100).toFixed(0)}% busy (all ${cores} cores) in the second before the run; 1-minute load average ${before.load1.toFixed(2)} then, which still holds any benchmark run just before`;
  return before.busy > 0.25
    ? `${text}: other work was running when the benchmark started, so these figures are noisy; rerun on a quiet machine.`
    : `${text}: the machine was quiet.`;
}
