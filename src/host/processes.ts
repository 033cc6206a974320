// The one place that starts, signals and kills operating-system processes (what runs is read in
// host-scan.ts).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { KillTarget } from './local-view.js';
import { sameTask } from './protocol.js';
import { descendantsIn, isRunning, scanHost, type HostScan } from './host-scan.js';
import type { TaskKey } from '../task/task.js';

export { isRunning as isAlive } from './host-scan.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface KillResult {
  /** Processes of the backup still alive after SIGTERM, the grace period and SIGKILL. */
  survivors: number[];
  /** Whether SIGKILL was needed. */
  escalated: boolean;
  /** Every process that was signalled. */
  killed: number[];
}

/**
 * Everything of one backup: its supervisor, the given pids, their process trees and process
 * groups, and every process carrying the backup's marker (a double-forked helper that left the
 * tree and the group still carries it). Never our own process group.
 */
export function backupProcesses(scan: HostScan, target: KillTarget, key: TaskKey | undefined): number[] {
  const roots = [...(target.supervisorPid !== undefined ? [target.supervisorPid] : []), ...target.pids];
  const pids = new Set<number>();
  for (const r of roots) for (const d of descendantsIn(scan, r)) pids.add(d);
  if (key) for (const p of scan.processes) if (p.task && sameTask(p.task, key)) pids.add(p.pid);
  // Only groups a backup process leads (the backup runs in its own group): the group of any
  // other process (a cron daemon's, a shell's, ours) is never signalled.
  const ownGroup = scan.get(process.pid)?.pgid;
  const groups = new Set<number>();
  for (const pid of pids) {
    const g = scan.get(pid)?.pgid;
    const leader = g === undefined ? undefined : scan.get(g);
    if (g !== undefined && g > 1 && g !== ownGroup && leader?.task !== undefined && (key === undefined || sameTask(leader.task, key)))
      groups.add(g);
  }
  for (const p of scan.processes) if (groups.has(p.pgid)) pids.add(p.pid);
  pids.delete(process.pid);
  return [...pids].filter((p) => scan.get(p) !== undefined);
}

/** SIGTERM to all of a backup, SIGKILL after `graceMs` to what is left, then looks again. */
export async function killBackup(target: KillTarget, key: TaskKey | undefined, graceMs: number): Promise<KillResult> {
  const pids = backupProcesses(scanHost(), target, key);
  const send = (sig: NodeJS.Signals) => {
    for (const p of pids) signal(p, sig);
  };
  send('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(isRunning) && Date.now() < deadline) await sleep(50);
  let escalated = false;
  if (pids.some(isRunning)) {
    escalated = true;
    send('SIGKILL');
    const hardDeadline = Date.now() + 5000;
    while (pids.some(isRunning) && Date.now() < hardDeadline) await sleep(50);
  }
  // Look again: a process forked between the scan and the signals is found by its marker.
  const left = new Set(pids.filter(isRunning));
  if (key) for (const p of backupProcesses(scanHost(), { pids: [] }, key)) left.add(p);
  return { survivors: [...left], escalated, killed: pids };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export interface SpawnOptions {
  cwd?: string;
  /** Start in a new session so the process survives the death of whoever started it. */
  detached?: boolean;
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
}

/** Starts a program from an argument vector; never through a shell. */
export function spawnArgv(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  return spawn(cmd, args, { shell: false, cwd: opts.cwd, detached: opts.detached ?? false, stdio: opts.stdio ?? 'ignore', env: opts.env });
}

/**
 * Resolves with the exit code, or the signal name when the process was killed by a signal. The
 * process's own exit decides: a grandchild that keeps the stderr pipe open (a daemonised helper)
 * delays the result by at most `drainMs`, which only lets the last output arrive.
 */
export function waitForExit(
  child: ChildProcess,
  drainMs = 2000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }> {
  return new Promise((resolve) => {
    child.once('error', (err) => {
      // 'exit' does not follow a failed spawn
      if (child.pid === undefined) resolve({ code: null, signal: null, error: err });
    });
    child.once('exit', (code, signal) => {
      const done = () => resolve({ code, signal });
      const timer = setTimeout(done, drainMs);
      child.once('close', () => {
        clearTimeout(timer);
        done();
      });
    });
  });
}

/**
 * SIGKILLs `pid` if it still runs and its command line holds `marker` (a child a killed daemon
 * left behind: its pid file says which), then waits (bounded) until it is gone. A pid reused by
 * an unrelated process does not hold the marker and is left alone.
 */
export async function killStray(pid: number, marker: string): Promise<boolean> {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  if (!cmdline.split('\0').some((a) => a.includes(marker))) return false;
  signal(pid, 'SIGKILL');
  const deadline = Date.now() + 5000;
  while (isRunning(pid) && Date.now() < deadline) await sleep(20);
  return true;
}

/** The argument vector of a running process (/proc/<pid>/cmdline); undefined when it is gone or unreadable. */
export function commandLineOf(pid: number): string[] | undefined {
  if (!isRunning(pid)) return undefined;
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return text.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  } catch {
    return undefined;
  }
}

/**
 * SIGKILLs what is left of a dead process's group: a detached worker leads its own group, and its
 * children (a load's client, a decompressor) outlive a SIGKILL of it. Returns the pids signalled.
 * Safe against pid reuse: while any process is in the group, its id is not given to another process.
 */
export function killGroupLeftovers(leader: number): number[] {
  if (!Number.isInteger(leader) || leader <= 1 || isRunning(leader)) return [];
  const left = scanHost().processes.filter((p) => p.pgid === leader && p.pid !== process.pid);
  for (const p of left) signal(p.pid, 'SIGKILL');
  return left.map((p) => p.pid);
}
