// What this host runs, per task: the host's answer, which wins over the rows (SPEC §5). A pure
// function of one scan of the process table and the supervisors' records.
import type { HostProcess, HostScan } from './host-scan.js';
import { legacyProgram, runsFrom } from './host-scan.js';
import { sameTask, type TaskRecord } from './protocol.js';
import { type TaskKey, taskKeyString } from '../task/task.js';

/** What is there to kill for one backup: its supervisor and every process carrying its marker. */
export interface KillTarget {
  supervisorPid?: number;
  pids: number[];
}

export type LocalState =
  | { kind: 'none' }
  /** The supervisor runs; `restorable` when its record says the backup itself still runs. */
  | { kind: 'running'; supervisorPid: number; restorable: boolean; target: KillTarget }
  /** The backup ended; its supervisor is writing the final status (the row is its business). */
  | { kind: 'finishing'; supervisorPid: number; target: KillTarget }
  /** The supervisor is gone but processes of the backup live on: nobody can report their result. */
  | { kind: 'orphaned'; target: KillTarget };

export interface LocalView {
  of(key: TaskKey): LocalState;
  /** Every backup of this host that is not over (any of its processes lives). */
  active: { key: TaskKey; state: LocalState }[];
  /** Backups of the old tool running here (mysql-crond during a migration). */
  legacy: HostProcess[];
  /** Records whose backup has no process left: the agent may remove them once handled. */
  stale: TaskRecord[];
  /** A process of the same snapshot (a row's TaskPid is judged against what the view saw). */
  process(pid: number): HostProcess | undefined;
}

export interface HostIdentity {
  /** Only backups under this host lock belong to this host (several may be simulated on one machine). */
  hostLock: string;
  /** The old tool's backups count when they run the copy in this directory. */
  installDir: string;
}

export function buildLocalView(scan: HostScan, records: readonly TaskRecord[], host: HostIdentity): LocalView {
  const keys = new Map<string, TaskKey>();
  const supervisors = new Map<string, number>();
  const marked = new Map<string, number[]>();
  for (const p of scan.processes) {
    // A marked process without a host lock in its environment was started by an older agent.
    if (p.hostLock !== undefined && p.hostLock !== host.hostLock) continue;
    if (p.supervises) {
      const k = taskKeyString(p.supervises);
      // Between fork and exec, the backup's process still shows its supervisor's command line: the
      // supervisor is the one whose parent is not itself a supervisor of the same task.
      const parent = scan.get(p.ppid);
      if (parent?.supervises !== undefined && taskKeyString(parent.supervises) === k) continue;
      keys.set(k, p.supervises);
      supervisors.set(k, p.pid);
    } else if (p.task) {
      const k = taskKeyString(p.task);
      keys.set(k, p.task);
      marked.set(k, [...(marked.get(k) ?? []), p.pid]);
    }
  }
  const states = new Map<string, LocalState>();
  for (const [k, key] of keys) {
    const supervisorPid = supervisors.get(k);
    const pids = marked.get(k) ?? [];
    const target: KillTarget = { ...(supervisorPid !== undefined ? { supervisorPid } : {}), pids };
    if (supervisorPid === undefined) {
      states.set(k, { kind: 'orphaned', target });
      continue;
    }
    const record = records.find((r) => sameTask(r.key, key) && r.supervisorPid === supervisorPid);
    states.set(
      k,
      record?.phase === 'finished'
        ? { kind: 'finishing', supervisorPid, target }
        : { kind: 'running', supervisorPid, restorable: record?.phase === 'running', target },
    );
  }
  const stale = records.filter((r) => !states.has(taskKeyString(r.key)));
  return {
    of: (key) => states.get(taskKeyString(key)) ?? { kind: 'none' },
    active: [...states].map(([k, state]) => ({ key: keys.get(k) as TaskKey, state })),
    legacy: scan.processes.filter((p) => {
      const program = legacyProgram(p);
      return program !== undefined && runsFrom(p, program, host.installDir);
    }),
    stale,
    process: (pid) => scan.get(pid),
  };
}

/** Why nothing may start on this host now, or undefined when it is free. */
export function hostBusyReason(view: LocalView): string | undefined {
  const a = view.active[0];
  if (a) {
    const what = `${a.key.backupId}@${a.key.host}:${a.key.port}`;
    switch (a.state.kind) {
      case 'running':
        return `backup ${what} runs (supervisor pid ${a.state.supervisorPid})`;
      case 'finishing':
        return `backup ${what} is finishing (supervisor pid ${a.state.supervisorPid})`;
      case 'orphaned':
        return `processes of backup ${what} live on without their supervisor (pids ${a.state.target.pids.join(', ')})`;
      case 'none':
        break;
    }
  }
  const l = view.legacy[0];
  if (l) return `a backup of the old tool runs on this host (pid ${l.pid}: ${l.argv.join(' ').slice(0, 200)})`;
  return undefined;
}
