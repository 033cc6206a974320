// What runs on this host, read from /proc: every process's exact argument vector (cmdline, not
// `ps` output, which a locale can mangle), parent, process group and state, and — for finding
// every process of a backup even after a double fork or setsid — the task marker in its
// environment. Linux only, like the rest of the agent.
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { ENV_HOST_LOCK, ENV_TASK, parseTaskMarker, supervisedTask } from './protocol.js';
import type { TaskKey } from '../task/task.js';

export interface HostProcess {
  pid: number;
  ppid: number;
  pgid: number;
  argv: string[];
  /** The backup task this process belongs to (environment marker), if any. */
  task?: TaskKey;
  /** For a supervisor: the task it supervises (its own command line). */
  supervises?: TaskKey;
  /** The host lock it runs under (supervisor: its argv; backup process: its environment). */
  hostLock?: string;
}

export interface HostScan {
  processes: HostProcess[];
  get(pid: number): HostProcess | undefined;
}

const PROC = '/proc';

/**
 * One pass over /proc. Zombies are left out: they have ended. A process that ends during the scan
 * is simply not in it. Environments of other users' processes cannot be read; the agent runs the
 * backups as its own user, so their markers are readable.
 */
export function scanHost(): HostScan {
  const processes: HostProcess[] = [];
  for (const name of readdirSync(PROC)) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProcess(Number(name));
    if (p) processes.push(p);
  }
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  return { processes, get: (pid) => byPid.get(pid) };
}

export function readProcess(pid: number): HostProcess | undefined {
  const stat = readStat(pid);
  if (!stat || stat.state === 'Z') return undefined;
  let argv: string[];
  try {
    argv = splitNul(readFileSync(`${PROC}/${pid}/cmdline`));
  } catch {
    return undefined;
  }
  const p: HostProcess = { pid, ppid: stat.ppid, pgid: stat.pgid, argv };
  const env = readEnv(pid, [ENV_TASK, ENV_HOST_LOCK]);
  const marker = env.get(ENV_TASK);
  if (marker !== undefined) {
    const task = parseTaskMarker(marker);
    if (task) p.task = task;
    const hostLock = env.get(ENV_HOST_LOCK);
    if (hostLock !== undefined) p.hostLock = hostLock;
  }
  const supervised = supervisedTask(argv);
  if (supervised) {
    p.supervises = supervised.key;
    p.hostLock = supervised.hostLock;
  }
  return p;
}

/** Whether pid runs and is not a zombie (an orphan nobody reaped has ended). */
export function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const s = readStat(pid);
  return s !== undefined && s.state !== 'Z';
}

function readStat(pid: number): { state: string; ppid: number; pgid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`${PROC}/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) S ppid pgrp …"; comm may hold spaces and parentheses, so split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '', ppid: Number(rest[1]), pgid: Number(rest[2]) };
}

function readEnv(pid: number, names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  let raw: Buffer;
  try {
    raw = readFileSync(`${PROC}/${pid}/environ`);
  } catch {
    return out;
  }
  // Cheap rejection: most processes carry no marker.
  if (raw.indexOf(ENV_TASK) < 0) return out;
  for (const entry of splitNul(raw)) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    if (eq > 0 && names.includes(name)) out.set(name, entry.slice(eq + 1));
  }
  return out;
}

function splitNul(buf: Buffer): string[] {
  const parts = buf.toString('utf8').split('\u0000');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/** pid and everything below it by parent links. */
export function descendantsIn(scan: HostScan, pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of scan.processes) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const next = stack.pop() as number;
    if (seen.has(next)) continue;
    seen.add(next);
    out.push(next);
    stack.push(...(children.get(next) ?? []));
  }
  return out;
}

/**
 * For a backup of the old tool (mysql-crond's jobs), not started by us — while a fleet moves
 * over, both may be installed — the program word of its command line (`./dbbackup`,
 * `/…/dbbackup_main.sh`). Processes with our marker are ours.
 */
export function legacyProgram(p: HostProcess): string | undefined {
  if (p.task !== undefined) return undefined;
  const base = (w: string) => w.split('/').pop() ?? w;
  const at = p.argv.findIndex((w) => base(w) === 'dbbackup');
  if (at >= 0) {
    const rest = p.argv.slice(at + 1);
    if (rest[0] === 'dumpbackup') return p.argv[at];
    if (rest[0] === 'spiderbackup' && rest.includes('check') && rest.includes('--run')) return p.argv[at];
  }
  return p.argv.find((w) => base(w) === 'dbbackup_main.sh');
}

/**
 * Whether an old-tool process runs the copy installed in `installDir` (the old cron jobs run it
 * from there): its program resolved against its working directory. When the directory cannot be
 * read, it counts (better wait than run beside it).
 */
export function runsFrom(p: HostProcess, program: string, installDir: string): boolean {
  let cwd: string;
  try {
    cwd = readlinkSync(`${PROC}/${p.pid}/cwd`);
  } catch {
    return true;
  }
  const full = resolvePath(cwd, program);
  return full.startsWith(`${resolvePath(installDir)}/`);
}

/** The descriptor of this process that is open on `path` (e.g. the host lock from flock(1)). */
export function ownFdOn(path: string): number | undefined {
  let target: string;
  try {
    target = realpathSync(path);
  } catch {
    return undefined;
  }
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === target) return Number(fd);
    } catch {
      // the descriptor readdir itself used, already closed
    }
  }
  return undefined;
}

/** Whether descriptor fd of this process is a pipe or socket (node's 'pipe' stdio is a socketpair). */
export function ownFdIsChannel(fd: number): boolean {
  try {
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    return target.startsWith('pipe:') || target.startsWith('socket:');
  } catch {
    return false;
  }
}
