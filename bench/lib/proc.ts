// What the kernel says about a process (Linux /proc), and the little statistics the bench needs.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** Fields of /proc/<pid>/stat after the command name; index 0 is field 3 (state). */
function statFields(pid: number | 'self'): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU time (user + system) a process has used so far, in ms. */
export function cpuMs(pid: number): number {
  const f = statFields(pid);
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/**
 * CPU time (user + system) of this process's children that have been waited for, in ms. Read
 * before and after a child is spawned and waited for, it is exactly that child's CPU (with its
 * own waited-for children); children still running (servers, daemons) do not count until they end.
 */
export function waitedChildrenCpuMs(): number {
  const f = statFields('self');
  return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

function statusKiB(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

/** Resident set size now, in KiB. */
export const rssKiB = (pid: number): number => statusKiB(pid, 'VmRSS');
/** The highest resident set size of the process's life so far ("high water mark"), in KiB. */
export const peakRssKiB = (pid: number): number => statusKiB(pid, 'VmHWM');

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;

/** `1.23 s` from 1 s up, `456 ms` below. */
export function duration(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10_000 ? 1 : 2)} s` : `${ms.toFixed(ms >= 10 ? 0 : 1)} ms`;
}
