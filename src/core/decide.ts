// What housekeeping should do with one task: a pure function of the row (with ages by the database
// clock) and what the process table and the journal say. No I/O here, so every rule is unit-tested.
import type { TaskRow } from '../sql/tasks.js';
import { REASON, STATUS } from './status.js';

export const LIMITS = {
  /** A running backup is killed and failed after this long (SPEC: 48 h). */
  runningTimeoutS: 48 * 3600,
  /** init/replicated nobody picked up are given up after this long (SPEC: 12 h). */
  waitingExpiryS: 12 * 3600,
  /** Rows older than this are deleted (SPEC: 30 days). */
  retentionDays: 30,
  /**
   * TaskPid stays -1 for the instant between claim and the supervisor recording its pid; only
   * after this long without a supervisor is it "no pid". Keeps a concurrent check from failing a
   * task another check has just claimed.
   */
  claimGraceS: 60,
} as const;

export type ProcessState =
  | { kind: 'none' } // TaskPid <= 0
  | { kind: 'gone' } // no such pid
  | { kind: 'foreign' } // pid exists but its command line lacks the backup id (recycled pid)
  | { kind: 'alive' };

export interface TaskFacts {
  process: ProcessState;
  /** A live supervisor for this task found by its command line (used when TaskPid is -1). */
  supervisorPid: number | undefined;
  /** A final status for this task waits in the local journal: leave the row to the journal. */
  journalPending: boolean;
}

export type Action =
  | { kind: 'none' }
  | { kind: 'fail'; status: string } // running → failed: reason (conditional on observed pid)
  | { kind: 'timeout'; pid: number } // failed: timeout, then kill the tree
  | { kind: 'adopt'; pid: number } // running with -1 but its supervisor lives: record its pid
  | { kind: 'kill-quit'; pid: number } // quit: kill the tree, record the outcome
  | { kind: 'quit-no-process' }
  | { kind: 'expire' }; // init/replicated too old → quit

export function decide(task: TaskRow, facts: TaskFacts): Action {
  if (facts.journalPending) return { kind: 'none' };
  switch (task.status) {
    case STATUS.running:
      return decideRunning(task, facts);
    case STATUS.quit:
      return facts.process.kind === 'alive' ? { kind: 'kill-quit', pid: task.taskPid } : { kind: 'quit-no-process' };
    case STATUS.init:
    case STATUS.replicated:
      return task.createdAgeS > LIMITS.waitingExpiryS ? { kind: 'expire' } : { kind: 'none' };
    default:
      return { kind: 'none' };
  }
}

function decideRunning(task: TaskRow, facts: TaskFacts): Action {
  switch (facts.process.kind) {
    case 'none':
      // Within the grace the supervisor is about to record its own pid: leave the row to it.
      if (task.updatedAgeS <= LIMITS.claimGraceS) return { kind: 'none' };
      if (facts.supervisorPid !== undefined) return { kind: 'adopt', pid: facts.supervisorPid };
      return { kind: 'fail', status: REASON.noPid };
    case 'gone':
      return { kind: 'fail', status: REASON.processGone };
    case 'foreign':
      return { kind: 'fail', status: REASON.foreignPid };
    case 'alive':
      return task.updatedAgeS > LIMITS.runningTimeoutS ? { kind: 'timeout', pid: task.taskPid } : { kind: 'none' };
  }
}
