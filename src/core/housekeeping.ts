// Housekeeping of one instance's rows (SPEC §3 check step 1): applies decide() to every task.
import type { Logger } from 'pino';
import type { Connection } from '../db.js';
import { isSpiderInstance, type InstanceConfig } from '../config/instance.js';
import { killTree, type ProcessTable } from '../process/processes.js';
import * as sql from '../sql/tasks.js';
import type { TaskKey, TaskRow } from '../sql/tasks.js';
import { decide, LIMITS, type Action, type ProcessState } from './decide.js';
import { journalKey } from './journal.js';
import { REASON, STATUS } from './status.js';
import { SUPERVISOR_MARK } from './supervise.js';

export interface HousekeepingDeps {
  conn: Connection;
  instance: InstanceConfig;
  /** The instance's rows, read before `processes` was taken. */
  tasks: TaskRow[];
  processes: ProcessTable;
  /** Tasks whose final status waits in the journal (read after `processes`). */
  pending: ReadonlySet<string>;
  killGraceMs: number;
  logger: Logger;
  /** Lets the daemon count what happened (metrics); optional. */
  onEvent?: (event: 'killed' | 'failed' | 'expired', task: TaskKey) => void;
  /** Rows over the retention age deleted on this instance. */
  onDeleted?: (count: number) => void;
}

export interface HousekeepingResult {
  actions: { task: TaskRow; action: Action; applied: boolean }[];
  deleted: number;
}

export function processState(table: ProcessTable, task: Pick<TaskRow, 'taskPid' | 'backupId'>): ProcessState {
  if (task.taskPid <= 0) return { kind: 'none' };
  const p = table.get(task.taskPid);
  if (!p) return { kind: 'gone' };
  return p.cmd.includes(task.backupId) ? { kind: 'alive' } : { kind: 'foreign' };
}

/** The supervisor of a task is found by its command line, which carries id and port. */
export function findSupervisor(table: ProcessTable, task: Pick<TaskRow, 'backupId' | 'port'>): number | undefined {
  const id = ` --backup-id ${task.backupId} `;
  const port = ` --port ${task.port} `;
  return table.all().find((p) => p.cmd.includes(SUPERVISOR_MARK) && `${p.cmd} `.includes(id) && `${p.cmd} `.includes(port))?.pid;
}

export async function housekeep(deps: HousekeepingDeps): Promise<HousekeepingResult> {
  // The caller keeps the order: rows, then the process table, then the journal. A supervisor that
  // died after the rows were read journaled its result before dying, so the journal read last sees it.
  const { conn, instance, logger, tasks, processes: table, pending } = deps;
  const actions: HousekeepingResult['actions'] = [];
  for (const task of tasks) {
    const action = decide(task, {
      process: processState(table, task),
      supervisorPid: task.status === STATUS.running && task.taskPid <= 0 ? findSupervisor(table, task) : undefined,
      journalPending: pending.has(journalKey(task)),
    });
    if (action.kind === 'none') continue;
    const log = logger.child({ backupId: task.backupId, port: task.port, shardValue: task.shardValue });
    const applied = await apply(deps, task, action, log);
    actions.push({ task, action, applied });
  }
  let deleted = 0;
  if (!isSpiderInstance(instance)) deleted = await deleteOld(conn, logger);
  if (deleted > 0) deps.onDeleted?.(deleted);
  return { actions, deleted };
}

async function apply(deps: HousekeepingDeps, task: TaskRow, action: Action, log: Logger): Promise<boolean> {
  const { conn } = deps;
  switch (action.kind) {
    case 'none':
      return false;
    case 'fail': {
      const ok = await sql.updateRunning(conn, task, task.taskPid, action.status);
      if (ok) {
        log.warn({ taskPid: task.taskPid, status: action.status }, 'running task has no live process; marked failed');
        deps.onEvent?.('failed', task);
      }
      return ok;
    }
    case 'adopt': {
      const ok = await sql.updateRunning(conn, task, task.taskPid, STATUS.running, action.pid);
      if (ok) log.info({ taskPid: action.pid }, 'running task had no pid recorded; its live supervisor was found and recorded');
      return ok;
    }
    case 'timeout': {
      // Mark first: the supervisor's own final write is conditional on `running`, so it cannot
      // overwrite the timeout once the tree is killed.
      const ok = await sql.updateRunning(conn, task, task.taskPid, REASON.timeout);
      if (!ok) return false;
      const res = await killTree(action.pid, deps.killGraceMs);
      log.warn({ taskPid: action.pid, runningForS: task.updatedAgeS, survivors: res.survivors }, `backup ran over ${LIMITS.runningTimeoutS / 3600} h; process tree killed`);
      deps.onEvent?.('killed', task);
      return true;
    }
    case 'kill-quit': {
      const res = await killTree(action.pid, deps.killGraceMs);
      const outcome = res.survivors.length === 0 ? REASON.quitSuccess : REASON.quitFail;
      const ok = await sql.updateStatus(conn, task, STATUS.quit, outcome);
      log.warn({ taskPid: action.pid, escalated: res.escalated, survivors: res.survivors, status: outcome }, 'quit requested; process tree killed');
      deps.onEvent?.('killed', task);
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
        log.warn({ createdAgeS: task.createdAgeS, was: task.status }, `task not started within ${LIMITS.waitingExpiryS / 3600} h; set to quit`);
        deps.onEvent?.('expired', task);
      }
      return ok;
    }
  }
}

async function deleteOld(conn: Connection, logger: Logger): Promise<number> {
  await sql.setSqlLogBin(conn, false);
  try {
    const n = await sql.deleteOldTasks(conn, LIMITS.retentionDays);
    if (n > 0) logger.info({ deleted: n }, `deleted tasks older than ${LIMITS.retentionDays} days (not binlogged)`);
    return n;
  } finally {
    await sql.setSqlLogBin(conn, true);
  }
}
