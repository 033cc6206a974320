import { createRequire } from 'node:module';
import type CliTable3 from 'cli-table3';

// cli-table3 is loaded by the first table drawn, not by every command that might draw one.
const require = createRequire(import.meta.url);
let Table: typeof CliTable3 | undefined;

/** A plain-bordered table (cli-table3) that stays readable when piped or pasted into a ticket. */
export function renderTable(head: string[], rows: (string | number)[][]): string {
  Table ??= require('cli-table3') as typeof CliTable3;
  const table = new Table({
    head,
    style: { head: [], border: [] },
    // No rule between body rows: one line a task keeps long listings greppable.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) table.push(r.map((c) => String(c)));
  return table.toString();
}

export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
