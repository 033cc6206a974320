import { createRequire } from 'node:module';
import type CliTable3 from 'cli-table3';

// cli-table3 is loaded by the first table drawn, not by every command that might draw one.
const require = createRequire(import.meta.url);
let Table: typeof CliTable3 | undefined;

/** Column separator of a plain table. */
const PLAIN_GAP = '  ';

/**
 * A table (cli-table3): box-drawn on a terminal; when stdout is not a terminal (a pipe, a file, a
 * ticket), plain columns separated by two spaces and no border characters at all, so that grep,
 * awk and `column` take it as it is.
 */
export function renderTable(head: string[], rows: (string | number)[][], opts: { plain?: boolean } = {}): string {
  Table ??= require('cli-table3') as typeof CliTable3;
  const plain = opts.plain ?? process.stdout.isTTY !== true;
  const table = new Table({
    head,
    style: { head: [], border: [], ...(plain ? { 'padding-left': 0, 'padding-right': 0 } : {}) },
    // No rule between body rows: one line a task keeps long listings greppable.
    chars: plain ? PLAIN_CHARS : { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) table.push(r.map((c) => String(c)));
  const text = table.toString();
  return plain ? text.replace(/ +$/gm, '') : text;
}

const PLAIN_CHARS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: PLAIN_GAP,
};

/**
 * Whether to colour output for `stream`: only on a terminal, and never when NO_COLOR is set to
 * anything but the empty string (https://no-color.org).
 */
export function useColor(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
