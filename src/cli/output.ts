import Table from 'cli-table3';

export type Format = 'table' | 'json';

/** A plain-bordered table (cli-table3) that stays readable when piped or pasted into a ticket. */
export function renderTable(head: string[], rows: (string | number)[][]): string {
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
