// Markdown tables: what labs print in text mode and what benchmarks write to bench/results/*.md.

export type Cell = string | number | null | undefined;

function cell(v: Cell): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return v;
}

export function markdownTable(columns: string[], rows: Record<string, Cell>[]): string {
  const head = `| ${columns.join(' | ')} |\n|${columns.map(() => '---').join('|')}|\n`;
  return head + rows.map((r) => `| ${columns.map((c) => cell(r[c]).replace(/\|/g, '\\|')).join(' | ')} |`).join('\n') + '\n';
}
