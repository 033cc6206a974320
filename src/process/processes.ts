// The one place that looks at, starts and kills operating-system processes.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import psList from 'ps-list';
import treeKill from 'tree-kill';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  cmd: string;
}

/** A point-in-time view of the process table (ps-list reads it from `ps`). */
export interface ProcessTable {
  get(pid: number): ProcessInfo | undefined;
  all(): ProcessInfo[];
}

export async function snapshotProcesses(): Promise<ProcessTable> {
  const list = await psList({ all: true });
  const byPid = new Map<number, ProcessInfo>();
  for (const p of list) byPid.set(p.pid, { pid: p.pid, ppid: p.ppid ?? 0, cmd: p.cmd ?? p.name });
  // get() is what liveness decisions use: a zombie there is a process that has ended.
  return { get: (pid) => (byPid.has(pid) && !isZombie(pid) ? byPid.get(pid) : undefined), all: () => [...byPid.values()] };
}

/** For a check step with no running or quit task: nothing to look up. */
export const EMPTY_PROCESS_TABLE: ProcessTable = { get: () => undefined, all: () => [] };

/** pid and everything below it in the snapshot (children, grandchildren …). */
export function descendantsOf(table: ProcessTable, pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of table.all()) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const next = stack.pop() as number;
    out.push(next);
    stack.push(...(children.get(next) ?? []));
  }
  return out;
}

/**
 * Whether pid is a running process. A zombie (exited, not yet reaped — common in containers whose
 * init does not reap orphans) has finished: it is not alive.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

function treeKillAsync(pid: number, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => treeKill(pid, signal, () => resolve()));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface KillResult {
  /** Processes of the tree still alive after SIGTERM, the grace period and SIGKILL. */
  survivors: number[];
  /** Whether SIGKILL was needed. */
  escalated: boolean;
}

/**
 * Kills a process tree: SIGTERM to the whole tree (tree-kill), then SIGKILL to whatever is left
 * after the grace period. The tree is snapshotted first so a grandchild that was re-parented when
 * its parent died is still found.
 */
export async function killTree(pid: number, graceMs: number): Promise<KillResult> {
  const tree = descendantsOf(await snapshotProcesses(), pid);
  await treeKillAsync(pid, 'SIGTERM');
  for (const p of tree) signal(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (tree.some(isAlive) && Date.now() < deadline) await sleep(50);
  let escalated = false;
  if (tree.some(isAlive)) {
    escalated = true;
    await treeKillAsync(pid, 'SIGKILL');
    for (const p of tree) signal(p, 'SIGKILL');
    const hardDeadline = Date.now() + 5000;
    while (tree.some(isAlive) && Date.now() < hardDeadline) await sleep(50);
  }
  return { survivors: tree.filter(isAlive), escalated };
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
export function waitForExit(child: ChildProcess, drainMs = 2000): Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }> {
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
