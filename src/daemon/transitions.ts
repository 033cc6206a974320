// Which tasks finished since the previous tick, from two successive reads of the table. Counting
// transitions (not supervisor exits) also covers backups started before a daemon restart, results
// delivered later from the journal, and failures set by housekeeping — each exactly once.
import { isFinished, statusClass, STATUS } from '../task/status.js';
import type { TaskKey, TaskRow } from '../task/task.js';

/** Status of every unfinished task seen, by task key. */
export type Seen = ReadonlyMap<string, string>;

export interface InstanceTasks {
  port: number;
  tasks: readonly TaskRow[];
  /** The instance could not be read this tick: keep what was seen of it. */
  unreadable: boolean;
}

export interface Finished {
  succeeded: TaskRow[];
  failed: TaskRow[];
  seen: Seen;
}

const keyOf = (t: TaskKey): string => `${t.backupId}\u0000${t.host}\u0000${t.port}\u0000${t.shardValue}`;

/** The tasks behind the keys of `seen`: the next tick reads those that left the unfinished rows. */
export function seenKeys(seen: Seen): TaskKey[] {
  return [...seen.keys()].map((k) => {
    const [backupId = '', host = '', port = '0', shardValue = '0'] = k.split('\u0000');
    return { backupId, host, port: Number(port), shardValue: Number(shardValue) };
  });
}

export function finishedSince(previous: Seen, instances: readonly InstanceTasks[]): Finished {
  const seen = new Map<string, string>();
  const succeeded: TaskRow[] = [];
  const failed: TaskRow[] = [];
  const unreadable = new Set(instances.filter((i) => i.unreadable).map((i) => i.port));
  for (const [key, status] of previous) {
    const port = Number(key.split('\u0000')[2]);
    if (unreadable.has(port)) seen.set(key, status);
  }
  for (const inst of instances) {
    if (inst.unreadable) continue;
    for (const t of inst.tasks) {
      const key = keyOf(t);
      if (!isFinished(t.status)) {
        seen.set(key, t.status);
        continue;
      }
      // Only a task seen unfinished before counts: rows finished before this daemon looked are history.
      if (!previous.has(key)) continue;
      const cls = statusClass(t.status);
      if (cls === STATUS.success) succeeded.push(t);
      else if (cls === STATUS.failed) failed.push(t);
    }
  }
  return { succeeded, failed, seen };
}
