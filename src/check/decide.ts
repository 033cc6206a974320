// What housekeeping should do with one task: a pure function of the row (with ages by the database
// clock) and what the host says about it. The host wins (SPEC §5): a row that replication, an
// operator or a crash overwrote is repaired to what runs here, never believed over it. No I/O
// here, so every rule is unit-tested.
import type { KillTarget, LocalState } from '../host/local-view.js';
import { REASON, STATUS } from '../task/status.js';
import { LIMITS } from '../task/task.js';
import type { TaskRow } from '../task/task.js';

/** The row's TaskPid, when the host runs nothing of the task. */
export type PidState =
  | { kind: 'none' } // TaskPid <= 0
  | { kind: 'gone' } // no such process
  | { kind: 'foreign' } // a process that is not this backup (recycled pid)
  | { kind: 'legacy' }; // a process of the old tool whose command line names the backup id

export interface TaskFacts {
  local: LocalState;
  pid: PidState;
  /** A final status for this task waits in the local journal: leave the row to the journal. */
  journalPending: boolean;
  /**
   * The database clock stepped since the last look (clock-step.ts): every decision by age (expiry,
   * timeout, claim grace) waits one more look, so a step alone ends nothing.
   */
  clockStepped?: boolean;
}

export type Action =
  | { kind: 'none' }
  | { kind: 'fail'; status: string } // running → failed: reason (conditional on observed pid)
  | { kind: 'timeout'; target: KillTarget } // failed: timeout, then kill
  | { kind: 'repair'; pid: number } // the row says otherwise, but the backup runs here: running + real pid
  | { kind: 'kill-orphan'; target: KillTarget } // supervisor died, backup lives: kill, failed: supervisor died
  | { kind: 'kill-quit'; target: KillTarget } // quit: kill everything of it, record the outcome
  | { kind: 'quit-no-process' }
  | { kind: 'expire' }; // init/replicated too old → quit

export function decide(task: TaskRow, facts: TaskFacts): Action {
  if (facts.journalPending) return { kind: 'none' };
  const { local } = facts;
  if (task.status === STATUS.quit) {
    if (local.kind !== 'none') return { kind: 'kill-quit', target: local.target };
    if (facts.pid.kind === 'legacy') return { kind: 'kill-quit', target: { pids: [task.taskPid] } };
    return { kind: 'quit-no-process' };
  }
  switch (local.kind) {
    case 'orphaned':
      return { kind: 'kill-orphan', target: local.target };
    case 'finishing':
      return { kind: 'none' };
    case 'running':
      if (task.status === STATUS.running) {
        if (task.updatedAgeS > LIMITS.runningTimeoutS && !facts.clockStepped) return { kind: 'timeout', target: local.target };
        return task.taskPid === local.supervisorPid ? { kind: 'none' } : { kind: 'repair', pid: local.supervisorPid };
      }
      // Overwritten (a master-side row image, an operator's UPDATE): restore what runs. Without a
      // record saying the backup still runs, the supervisor may be writing its final status.
      return local.restorable ? { kind: 'repair', pid: local.supervisorPid } : { kind: 'none' };
    case 'none':
      break;
  }
  switch (task.status) {
    case STATUS.running:
      return decideRunningElsewhere(task, facts.pid, facts.clockStepped === true);
    case STATUS.init:
    case STATUS.replicated:
      return task.createdAgeS > LIMITS.waitingExpiryS && !facts.clockStepped ? { kind: 'expire' } : { kind: 'none' };
    default:
      return { kind: 'none' };
  }
}

/** A running row with nothing of it on this host: only the old tool may still be running it. */
function decideRunningElsewhere(task: TaskRow, pid: PidState, clockStepped: boolean): Action {
  switch (pid.kind) {
    case 'none':
      return task.updatedAgeS <= LIMITS.claimGraceS || clockStepped ? { kind: 'none' } : { kind: 'fail', status: REASON.noPid };
    case 'gone':
      return { kind: 'fail', status: REASON.processGone };
    case 'foreign':
      return { kind: 'fail', status: REASON.foreignPid };
    case 'legacy':
      return task.updatedAgeS > LIMITS.runningTimeoutS && !clockStepped
        ? { kind: 'timeout', target: { pids: [task.taskPid] } }
        : { kind: 'none' };
  }
}
