// Housekeeping of one instance's rows (SPEC §3 check step 1, §5): applies decide() to every task
// with what the host says about it. One failing action never stops the others, and the purge of
// old rows is separate (purge.ts): nothing here can keep a backup from being started.
import type { Logger } from 'pino';
import type { Connection } from '../db/connect.js';
import type { InstanceConfig } from '../config/instance.js';
import { errorMessage } from '../errors.js';
import { isRunning } from '../host/host-scan.js';
import { killBackup } from '../host/processes.js';
import * as sql from '../sql/tasks.js';
import { decide, type Action, type PidState } from './decide.js';
import type { AgentEvents } from './events.js';
import { journalKey } from '../host/journal.js';
import type { KillTarget, LocalView } from '../host/local-view.js';
import { REASON, STATUS } from '../task/status.js';
import { type TaskKey, type TaskRow, LIMITS } from '../task/task.js';

export interface HousekeepingDeps {
  conn: Connection;
  instance: InstanceConfig;
  /** The instance's rows, read before `local` was taken. */
  tasks: TaskRow[];
  local: LocalView;
  /** Tasks whose final status waits in the journal (read after `local`). */
  pending: ReadonlySet<string>;
  killGraceMs: number;
  /** The database clock stepped since the last look: decisions by age wait (decide.ts). */
  clockStepped?: boolean;
  logger: Logger;
  events?: AgentEvents;
}

export interface HousekeepingResult {
  actions: { task: TaskRow; action: Action; applied: boolean; error?: string }[];
}

/** What the row's TaskPid is, for a task of which nothing runs here, in the view's snapshot. */
export function pidState(task: Pick<TaskRow, 'taskPid' | 'backupId'>, local: Pick<LocalView, 'process'>): PidState {
  if (task.taskPid <= 0) return { kind: 'none' };
  const p = local.process(task.taskPid);
  if (!p) return { kind: 'gone' };
  // The old tool's backups carry the id as a word of their command line (`-k <id>`, `--backup-id <id>`).
  const names = p.argv.some((w) => w === task.backupId || w.endsWith(`=${task.backupId}`));
  return names && p.task === undefined && p.supervises === undefined ? { kind: 'legacy' } : { kind: 'foreign' };
}

export async function housekeep(deps: HousekeepingDeps): Promise<HousekeepingResult> {
  // The caller keeps the order: rows, then the host, then the journal. A supervisor that died
  // after the rows were read journaled its result before dying, so the journal read last sees it.
  const { local, logger, tasks, pending } = deps;
  const actions: HousekeepingResult['actions'] = [];
  for (const task of tasks) {
    const state = local.of(task);
    const action = decide(task, {
      local: state,
      pid:
        state.kind === 'none' && (task.status === STATUS.running || task.status === STATUS.quit) ? pidState(task, local) : { kind: 'none' },
      journalPending: pending.has(journalKey(task)),
      clockStepped: deps.clockStepped === true,
    });
    if (action.kind === 'none') continue;
    const log = logger.child({ backupId: task.backupId, port: task.port, shardValue: task.shardValue });
    try {
      actions.push({ task, action, applied: await apply(deps, task, action, log) });
    } catch (err) {
      const error = errorMessage(err);
      log.error({ action: action.kind, err: error }, 'housekeeping action failed; tried again next round');
      actions.push({ task, action, applied: false, error });
    }
  }
  return { actions };
}

async function apply(deps: HousekeepingDeps, task: TaskRow, action: Action, log: Logger): Promise<boolean> {
  const { conn } = deps;
  const observed = { status: task.status, pid: task.taskPid };
  switch (action.kind) {
    case 'none':
      return false;
    case 'fail': {
      const ok = await sql.updateRunning(conn, task, task.taskPid, action.status);
      if (ok) {
        log.warn({ taskPid: task.taskPid, status: action.status }, 'running task has no live process on this host; marked failed');
        deps.events?.emit('failed', { task, status: action.status });
      }
      return ok;
    }
    case 'repair': {
      const ok = await sql.updateObserved(conn, task, observed, STATUS.running, action.pid);
      if (ok) {
        log.warn(
          { was: task.status, wasPid: task.taskPid, taskPid: action.pid },
          'the row disagreed with this host, where the backup runs: restored to running with its real pid',
        );
        deps.events?.emit('repaired', { task });
      }
      return ok;
    }
    case 'timeout': {
      // Kill first (the supervisor with it, so it writes nothing), then record: a row marked
      // before the kill would look overwritten to another agent while the backup still runs.
      const res = await kill(action.target, task, deps.killGraceMs);
      const ok = await sql.updateObserved(conn, task, observed, REASON.timeout, task.taskPid);
      log.warn(
        { taskPid: task.taskPid, killed: res.killed, survivors: res.survivors, runningForS: task.updatedAgeS, recorded: ok },
        `backup ran over ${LIMITS.runningTimeoutS / 3600} h; killed`,
      );
      deps.events?.emit('killed', { task, reason: 'timeout' });
      return ok;
    }
    case 'kill-orphan': {
      // Nobody can learn the backup's exit code any more: never guess success.
      const res = await kill(action.target, task, deps.killGraceMs);
      const ok = await sql.updateObserved(conn, task, observed, REASON.supervisorDied, task.taskPid);
      log.error(
        { killed: res.killed, survivors: res.survivors, was: task.status, recorded: ok },
        'the supervisor of this backup died while it ran; its processes were killed and the task failed',
      );
      deps.events?.emit('killed', { task, reason: 'orphaned' });
      return ok;
    }
    case 'kill-quit': {
      const res = await kill(action.target, task, deps.killGraceMs);
      const outcome = res.survivors.length === 0 ? REASON.quitSuccess : REASON.quitFail;
      const ok = await sql.updateStatus(conn, task, STATUS.quit, outcome);
      const fields = { taskPid: task.taskPid, killed: res.killed, escalated: res.escalated, survivors: res.survivors, status: outcome };
      if (res.survivors.length === 0) log.warn(fields, 'quit requested; every process of the backup was killed');
      else log.error(fields, 'quit requested; some processes of the backup survived');
      deps.events?.emit('killed', { task, reason: 'quit' });
      return ok;
    }
    case 'quit-no-process': {
      const ok = await sql.updateStatus(conn, task, STATUS.quit, REASON.quitNoProcess);
      if (ok) log.info({ taskPid: task.taskPid, status: REASON.quitNoProcess }, 'quit requested; no process to kill');
      return ok;
    }
    case 'expire': {
      const ok = await sql.updateStatus(conn, task, task.status, STATUS.quit);
      if (ok) {
        log.warn(
          { createdAgeS: task.createdAgeS, was: task.status },
          `task not started within ${LIMITS.waitingExpiryS / 3600} h; set to quit`,
        );
        deps.events?.emit('expired', { task });
      }
      return ok;
    }
  }
}

function kill(target: KillTarget, task: TaskKey, graceMs: number) {
  return killBackup({ ...target, pids: target.pids.filter(isRunning) }, task, graceMs);
}
