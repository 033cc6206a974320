// Finds and kills what a sandbox left running, and only that: mariadbd servers whose data dir is
// under its base dir, backups and supervisors running under one of its host locks (their task
// marker or command line names the lock), and pids it recorded that still run from it.
import { resolve, sep } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isAlive } from '../host/processes.js';
import { readProcess, scanHost, type HostProcess } from '../host/host-scan.js';

const GONE_TIMEOUT_MS = 10_000;

const under = (path: string | undefined, base: string): boolean => path !== undefined && path.startsWith(base + sep);

/** Whether `p` belongs to the sandbox in `base` (see the file comment). */
export function belongsTo(p: HostProcess, base: string): boolean {
  if (under(p.hostLock, base)) return true;
  const prog = p.argv[0]?.split('/').pop();
  if (prog === 'mariadbd' || prog === 'mysqld') return p.argv.some((a) => a.startsWith('--datadir=') && under(a.slice(10), base));
  return false;
}

/** `pid` still runs the sandbox's program (guards against a reused pid): its command line names the base dir. */
export function runsFrom(pid: number, base: string): boolean {
  const p = readProcess(pid);
  return p !== undefined && (belongsTo(p, base) || p.argv.some((a) => a === base || a.startsWith(base + sep)));
}

/** The sandbox's processes now running: found in /proc, plus the recorded pids that still run from it. */
export function sandboxProcesses(base: string, recorded: readonly number[] = [], except: readonly number[] = []): number[] {
  const b = resolve(base);
  const found = scanHost()
    .processes.filter((p) => belongsTo(p, b))
    .map((p) => p.pid);
  const still = recorded.filter((pid) => runsFrom(pid, b));
  return [...new Set([...found, ...still])].filter((pid) => !except.includes(pid) && pid !== process.pid);
}

/** SIGKILLs every process of the sandbox and waits until they are gone; returns how many there were. */
export async function killLeftovers(
  base: string,
  opts: { recorded?: readonly number[]; except?: readonly number[] } = {},
): Promise<number> {
  const pids = sandboxProcesses(base, opts.recorded, opts.except);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ended meanwhile
    }
  }
  const deadline = Date.now() + GONE_TIMEOUT_MS;
  while (pids.some((pid) => isAlive(pid)) && Date.now() < deadline) await delay(50);
  return pids.length;
}
