// Which work this host does next: a pure function of the tasks of all its instances.
import { isValidBackupId } from '../task/backup-id.js';
import { STATUS, isRunnable } from '../task/status.js';
import type { TaskRow } from '../task/task.js';

export type Pick = { kind: 'busy'; running: TaskRow[] } | { kind: 'idle' } | { kind: 'run'; backupId: string; tasks: TaskRow[] };

/**
 * One running backup id per machine: while any task of this host runs, nothing starts. Otherwise
 * the earliest-created runnable backup id (or the one asked for) and, for it, every runnable task
 * of this host in port order — they are backed up one after another.
 */
export function pickWork(tasks: readonly TaskRow[], backupId?: string): Pick {
  const running = tasks.filter((t) => t.status === STATUS.running);
  if (running.length > 0) return { kind: 'busy', running };
  // A backup id `schedule` would refuse names a path outside BackupDir: never picked (check.ts fails it).
  const runnable = tasks.filter((t) => isRunnable(t.status) && isValidBackupId(t.backupId));
  let chosen = backupId;
  if (chosen === undefined) {
    // createdAgeS is by each instance's database clock; the oldest task wins, ties by id.
    const first = [...runnable].sort((a, b) => b.createdAgeS - a.createdAgeS || a.backupId.localeCompare(b.backupId))[0];
    chosen = first?.backupId;
  }
  const selected = runnable.filter((t) => t.backupId === chosen).sort((a, b) => a.port - b.port || a.shardValue - b.shardValue);
  if (chosen === undefined || selected.length === 0) return { kind: 'idle' };
  return { kind: 'run', backupId: chosen, tasks: selected };
}
