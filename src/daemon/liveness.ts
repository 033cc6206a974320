// Whether a recorded daemon pid still is a spiderbackup daemon. A pid alone is not enough: after a
// reboot or a long time the number may belong to some other program, and a lock held by that
// would keep the agent from ever starting again.
import { isAlive, snapshotProcesses } from '../process/processes.js';
import { SUPERVISOR_MARK } from '../core/supervise.js';

export function looksLikeDaemon(cmd: string): boolean {
  return /(^|\s)daemon(\s|$)/.test(cmd) && !cmd.includes(SUPERVISOR_MARK);
}

export async function daemonAlive(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const p = (await snapshotProcesses()).get(pid);
    return p !== undefined && looksLikeDaemon(p.cmd);
  } catch {
    // Cannot read the process table: assume it is ours rather than risk two daemons.
    return true;
  }
}
