// The restores running now, as `status --cluster` shows them (issue 20 item 5): each open restore's
// tasks by their last state (target, role, phase, bytes, time in the phase). Read from the
// repository only: one list of the open markers, then per open restore one list and its state objects.
import { errorMessage } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import { openRestores, readDocument, recordKey, restoreKey, type RestoreRecord, type RestoreTaskState } from './job.js';

export interface OpenRestoreView {
  restoreId: string;
  backupId?: string;
  point?: string;
  createdAt?: string;
  tasks: { target: string; phase: string; bytes: number; phaseMs: number; attempt: number; error?: string }[];
  /** What could not be read, naming the object. */
  problems: string[];
}

export async function readOpenRestores(repo: Repository, nowMs = Date.now()): Promise<OpenRestoreView[]> {
  const out: OpenRestoreView[] = [];
  for (const restoreId of await openRestores(repo)) {
    const view: OpenRestoreView = { restoreId, tasks: [], problems: [] };
    try {
      const record = await readDocument<RestoreRecord>(repo, recordKey(repo, restoreId));
      if (record) Object.assign(view, { backupId: record.backupId, point: record.point.name, createdAt: record.createdAt });
      // One list per open restore: its tasks (a task without a state yet waits for its agent) and states.
      const base = restoreKey(repo, restoreId);
      const keys = (await repo.store.list(base)).map((o) => o.key.slice(base.length));
      for (const task of keys.filter((k) => k.startsWith('tasks/') && k.endsWith('.json'))) {
        const name = task.slice('tasks/'.length, -'.json'.length);
        const target = name.replace(/_(\d+)$/, ':$1');
        const s = keys.includes(`state/${name}.json`) ? await readDocument<RestoreTaskState>(repo, `${base}state/${name}.json`) : undefined;
        if (!s) {
          view.tasks.push({ target, phase: 'waiting', bytes: 0, phaseMs: 0, attempt: 0 });
          continue;
        }
        const current = s.phases.at(-1);
        const started = current ? Date.parse(current.startedAt) : NaN;
        const ended = current?.endedAt !== undefined ? Date.parse(current.endedAt) : nowMs;
        view.tasks.push({
          target,
          phase: s.phase,
          bytes: s.bytes,
          phaseMs: Number.isFinite(started) && ended >= started ? ended - started : 0,
          attempt: s.attempt,
          ...(s.error !== undefined ? { error: s.error } : {}),
        });
      }
    } catch (err) {
      view.problems.push(`restore ${restoreId}: ${errorMessage(err)}`);
    }
    out.push(view);
  }
  return out;
}
