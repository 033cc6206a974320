// The bench's output: one line about the machine and one Markdown table, what / now / target.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';

export interface Row {
  what: string;
  now: string;
  target: string;
}

/** Progress goes to stderr; stdout carries only the result. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export function mariadbVersion(): string {
  const bin = process.env.MARIADBD ?? '/usr/sbin/mariadbd';
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
    return /Ver (\S+)/.exec(out)?.[1]?.replace(/-MariaDB.*$/, '') ?? out.trim();
  } catch {
    return 'unknown';
  }
}

/** CPU model, cores, memory, Node and MariaDB versions, and how busy the machine was. */
export function machine(): string {
  const c = cpus();
  const model = (c[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return `${model}, ${c.length} cores, ${gib} GiB, Node ${process.version}, MariaDB ${mariadbVersion()} (load average at start: ${load})`;
}

const escape = (s: string): string => s.replace(/\|/g, '\\|');

export function markdownTable(rows: readonly Row[]): string {
  const lines = ['| what | now | target |', '| --- | --- | --- |'];
  for (const r of rows) lines.push(`| ${escape(r.what)} | ${escape(r.now)} | ${escape(r.target)} |`);
  return lines.join('\n');
}
