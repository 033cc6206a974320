import { createRequire } from 'node:module';
import type CliTable3 from 'cli-table3';

// cli-table3 is loaded by the first table drawn, not by every command that might draw one.
const require = createRequire(import.meta.url);
let Table: typeof CliTable3 | undefined;

/** Column separator of a plain table. */
const PLAIN_GAP = '  ';

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text from rows and servers as a person may see it: control characters (C0, DEL, C1) and the
 * bidirectional overrides escaped (`\x1b`, `\r`, `\n`, `\u202e`), so a value can neither move the
 * cursor, erase what was printed nor forge a line. Never for JSON, which escapes by itself.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
}

/**
 * A table (cli-table3): box-drawn on a terminal; when stdout is not a terminal (a pipe, a file, a
 * ticket), plain columns separated by two spaces and no border characters at all, so that grep,
 * awk and `column` take it as it is.
 */
export function renderTable(
  head: string[],
  rows: (string | number)[][],
  /** multiline: a '\n' in a cell is the view's own line break (its values escaped by the view itself). */
  opts: { plain?: boolean; multiline?: boolean } = {},
): string {
  Table ??= require('cli-table3') as typeof CliTable3;
  const plain = opts.plain ?? process.stdout.isTTY !== true;
  const table = new Table({
    head: head.map(printable),
    style: { head: [], border: [], ...(plain ? { 'padding-left': 0, 'padding-right': 0 } : {}) },
    // No rule between body rows: one line a task keeps long listings greppable.
    chars: plain ? PLAIN_CHARS : { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const cell = (c: string | number) => (opts.multiline ? String(c).split('\n').map(printable).join('\n') : printable(String(c)));
  for (const r of rows) table.push(r.map(cell));
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
