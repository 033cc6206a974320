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
 * A table: box-drawn on a terminal; when stdout is not a terminal (a pipe, a file, a ticket),
 * plain columns separated by two spaces and no border characters at all, so that grep, awk and
 * `column` take it as it is. Drawn as cli-table3 draws it, character for character, in one pass:
 * cli-table3's own layout looks for spanning cells across every row above each cell, which at
 * `status --cluster`'s two thousand rows took seconds (rows of unequal length, which it fills
 * with spanning cells, still go to it).
 */
export function renderTable(
  head: string[],
  rows: (string | number)[][],
  /** multiline: a '\n' in a cell is the view's own line break (its values escaped by the view itself). */
  opts: { plain?: boolean; multiline?: boolean } = {},
): string {
  const plain = opts.plain ?? process.stdout.isTTY !== true;
  const cell = (c: string | number) => (opts.multiline ? String(c).split('\n').map(printable).join('\n') : printable(String(c)));
  const cells = [head.map(printable), ...rows.map((r) => r.map(cell))];
  if (head.length > 0 && cells.every((r) => r.length === head.length)) return drawTable(cells, plain);
  const text = cliTable3(cells, plain);
  return plain ? text.replace(/ +$/gm, '') : text;
}

/** cli-table3 itself: the head row first, then the body. */
export function cliTable3(cells: readonly string[][], plain: boolean): string {
  Table ??= require('cli-table3') as typeof CliTable3;
  const [head = [], ...body] = cells;
  const table = new Table({
    head,
    style: { head: [], border: [], ...(plain ? { 'padding-left': 0, 'padding-right': 0 } : {}) },
    // No rule between body rows: one line a task keeps long listings greppable.
    chars: plain ? PLAIN_CHARS : BOX_CHARS,
  });
  for (const r of body) table.push(r);
  return table.toString();
}

/** cli-table3's default box characters, with the rules between rows left out (BOX_CHARS). */
const BOX = {
  top: '─',
  topMid: '┬',
  topLeft: '┌',
  topRight: '┐',
  bottom: '─',
  bottomMid: '┴',
  bottomLeft: '└',
  bottomRight: '┘',
  left: '│',
  right: '│',
  middle: '│',
};

/**
 * What cli-table3 draws for rows of equal length without spans, colours or fixed widths: every
 * column as wide as its widest line plus the padding (at least 1), every row as high as its
 * tallest cell, text left and top aligned; a border line that comes out empty is left out. A plain
 * table's lines lose their trailing spaces (as renderTable's callers always wanted).
 */
export function drawTable(cells: readonly string[][], plain: boolean): string {
  const pad = plain ? 0 : 1;
  const c = plain
    ? {
        top: '',
        topMid: '',
        topLeft: '',
        topRight: '',
        bottom: '',
        bottomMid: '',
        bottomLeft: '',
        bottomRight: '',
        left: '',
        right: '',
        middle: PLAIN_GAP,
      }
    : BOX;
  const lines = cells.map((r) => r.map((v) => v.split('\n')));
  const widths = (lines[0] ?? []).map((_, x) => Math.max(1, ...lines.map((r) => Math.max(...(r[x] ?? ['']).map(width)) + 2 * pad)));
  const out: string[] = [];
  const rule = (l: string, fill: string, mid: string, r: string) => {
    const s = l + widths.map((w) => fill.repeat(w)).join(mid) + r;
    if (s.length) out.push(s);
  };
  const space = ' '.repeat(pad);
  rule(c.topLeft, c.top, c.topMid, c.topRight);
  for (const r of lines) {
    const height = Math.max(...r.map((cl) => cl.length));
    for (let n = 0; n < height; n++) {
      const line = r.map((cl, x) => {
        const text = cl[n];
        const w = widths[x] as number;
        return text === undefined ? ' '.repeat(w) : space + text + ' '.repeat(w - 2 * pad - width(text)) + space;
      });
      const drawn = c.left + line.join(c.middle) + c.right;
      out.push(plain ? withoutTrailingSpaces(drawn) : drawn);
    }
  }
  rule(c.bottomLeft, c.bottom, c.bottomMid, c.bottomRight);
  return out.join('\n');
}

/**
 * A plain table's line as grep and awk want it: without the padding of its last column. Not
 * / +$/gm over the whole table, which retries every run of padding to its end: seconds at 2,000 rows.
 */
function withoutTrailingSpaces(line: string): string {
  let end = line.length;
  while (end > 0 && line.charCodeAt(end - 1) === 32) end--;
  return line.slice(0, end);
}

/** Columns a line takes on a terminal: its length for printable ASCII, else as cli-table3 counts (string-width). */
function width(line: string): number {
  if (/^[\x20-\x7e]*$/.test(line)) return line.length;
  strlen ??= (require('cli-table3/src/utils') as { strlen: (s: string) => number }).strlen;
  return strlen(line);
}
let strlen: ((s: string) => number) | undefined;

const BOX_CHARS = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

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
