// Narration for people, or one JSON object per line for programs (--json). Colour follows
// --no-color, NO_COLOR (https://no-color.org: set and non-empty) and whether stdout is a terminal.
import { Chalk, type ChalkInstance } from 'chalk';
import chalk from 'chalk';

export interface Output {
  readonly json: boolean;
  readonly c: ChalkInstance;
  /** A line of narration (text mode), or {"event":"note","text":...} (JSON mode). */
  say(text: string): void;
  /** A section heading in text mode; {"event":"section","title":...} in JSON mode. */
  heading(title: string): void;
  /** A structured event: JSON mode prints it whole, text mode prints `text` (or name and fields). */
  event(name: string, fields: Record<string, unknown>, text?: string): void;
  /** Bytes for people only (hex dumps, tables, diagrams); nothing in JSON mode. */
  raw(text: string): void;
}

export interface OutputOptions {
  json?: boolean;
  color?: boolean;
  write?: (text: string) => void;
}

export function colorWanted(noColorFlag: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (noColorFlag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return chalk.level > 0;
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Error) return { code: (value as { code?: unknown }).code, message: value.message };
  return value;
}

export function createOutput(options: OutputOptions = {}): Output {
  const json = options.json ?? false;
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const c = new Chalk({ level: options.color ? Math.max(chalk.level, 1) as 1 | 2 | 3 : 0 });
  const line = (obj: Record<string, unknown>) => write(JSON.stringify(obj, jsonSafe) + '\n');
  return {
    json,
    c,
    say(text) {
      if (json) line({ event: 'note', text });
      else write(text + '\n');
    },
    heading(title) {
      if (json) line({ event: 'section', title });
      else write('\n' + c.bold.underline(title) + '\n');
    },
    event(name, fields, text) {
      if (json) line({ event: name, ...fields });
      else if (text !== undefined) write(text + '\n');
      else write(`${c.cyan(name)} ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v, jsonSafe)}`).join(' ')}\n`);
    },
    raw(text) {
      if (!json) write(text);
    },
  };
}
