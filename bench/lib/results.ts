// Every benchmark writes its figures the same way: bench/results/<name>.json (machine-readable) and
// <name>.md (a markdown table), each with the machine, Node version and date they were measured on.
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem, release, platform, arch, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

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

export type Cell = string | number | null | undefined;

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

function cell(v: Cell): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return v;
}

export function markdownTable(columns: string[], rows: Record<string, Cell>[]): string {
  const head = `| ${columns.join(' | ')} |\n|${columns.map(() => '---').join('|')}|\n`;
  return head + rows.map((r) => `| ${columns.map((c) => cell(r[c]).replace(/\|/g, '\\|')).join(' | ')} |`).join('\n') + '\n';
}

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

/** The 1-minute load average now; take it before a benchmark starts and pass it to loadNote() at the end. */
export function load1(): number {
  return loadavg()[0]!;
}

/**
 * A note on how busy the machine was: the 1-minute load average before and after, and, when other work was
 * running before the benchmark started (load above 3/4 of the cores), that the figures are noisy for it.
 */
export function loadNote(before: number): string {
  const cores = cpus().length;
  const after = load1();
  const text = `1-minute load average ${before.toFixed(2)} before, ${after.toFixed(2)} after, on ${cores} cores`;
  return before > cores * 0.75
    ? `${text}: other work was running when the benchmark started, so these figures are noisy; rerun on a quiet machine.`
    : `${text} (the benchmark's own load counts in "after").`;
}
