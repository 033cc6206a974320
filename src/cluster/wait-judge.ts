// What `schedule --wait` says about a task that has not ended, from what it read this round: the
// presence of the task's agent, and for a replica whose row is missing, the master's copy of that
// row and the replica's replication threads. Pure: unit-tested without a cluster.
import type { PresenceRow } from '../sql/presence.js';
import { formatSeconds } from '../format.js';
import { agentState, lostAfterMs } from './agent-state.js';
import { STATUS, isRunnable } from '../task/status.js';
import type { TaskRow } from '../task/task.js';

export interface Evidence {
  /** The task's own row where it lives (the replica's for a replica), undefined when not read. */
  row: TaskRow | undefined;
  /** The row could not be read (instance unreachable): nothing is concluded from its absence. */
  unreadable: boolean;
  /** The agent's presence on the task's instance; undefined: none ever; 'unreadable': not known. */
  presence: PresenceRow | undefined | 'unreadable';
  /**
   * A replica's agent runs but may not keep its presence out of the binary log, so writes none
   * (sql/unlogged.ts): `undefined` or a stale presence then says nothing about it.
   */
  notReporting?: boolean;
  /** For a replica's task: the master's copy of its row (it exists from the schedule on). */
  masterCopy?: TaskRow;
  /** For a replica whose row is missing: what is wrong with its replication, or undefined if nothing. */
  replication?: { problem: string | undefined; lagS: number | null } | 'unreadable';
}

export interface Judgement {
  /** Said every round while it lasts. */
  problem?: string;
  /** The task can no longer finish: the wait gives up once every task left is like this. */
  hopeless?: string;
}

export interface JudgeLimits {
  /** [schedule] unclaimed_after. */
  unclaimedAfterMs: number;
  /** This host's [agent] tick_interval: how long an instance without any agent is given to show one. */
  tickIntervalMs: number;
}

/** The rows' ages and the lag are whole seconds. */

export function judge(e: Evidence, limits: JudgeLimits): Judgement {
  const row = e.row;
  if (row && row.status !== STATUS.running && !isRunnable(row.status)) return {};
  if (!row && e.masterCopy && !e.unreadable) return judgeMissingReplicaRow(e, e.masterCopy, limits);
  if (!row) return {};
  return judgeAgent(e, row, limits);
}

function judgeMissingReplicaRow(e: Evidence, copy: TaskRow, limits: JudgeLimits): Judgement {
  const r = e.replication;
  const why =
    r === undefined
      ? ''
      : r === 'unreadable'
        ? ': its replication status cannot be read'
        : r.problem !== undefined
          ? `: ${r.problem}`
          : `: its replication threads run${r.lagS === null ? '' : `, ${formatSeconds(r.lagS)} behind`}`;
  const problem = `its row has not arrived by replication (on the master for ${formatSeconds(copy.createdAgeS)})${why}`;
  if (copy.createdAgeS * 1000 > limits.unclaimedAfterMs) {
    return {
      problem,
      hopeless: `its row never arrived by replication (${formatSeconds(copy.createdAgeS)}, over [schedule] unclaimed_after)${why}`,
    };
  }
  return { problem };
}

function judgeAgent(e: Evidence, row: TaskRow, limits: JudgeLimits): Judgement {
  if (e.presence === 'unreadable') return {};
  const p = e.presence;
  const state = agentState(p);
  const waiting = isRunnable(row.status);
  if (e.notReporting === true && (state === 'none' || state === 'lost'))
    return {
      problem: `its agent on ${row.host}:${row.port} is not reporting: it needs SUPER or BINLOG ADMIN (its presence is not written)`,
    };
  if (state === 'none') {
    // An agent may be starting: give it as long as an agent of ours takes to be called lost.
    if (row.createdAgeS * 1000 <= lostAfterMs(limits.tickIntervalMs)) return {};
    // Named, never given up on: `check --run` from cron (the old way, or a host not migrated yet)
    // serves tasks without announcing itself.
    return { problem: `no agent has ever announced itself on ${row.host}:${row.port}: is the spiderbackup daemon running there?` };
  }
  if (state === 'lost' && p) {
    const problem =
      `agent lost: its last tick on ${row.host}:${row.port} was ${formatSeconds(p.ageS)} ago (v${p.agentVersion} on ${p.agentHost}, ` +
      `pid ${p.agentPid})${waiting ? '' : "; the backup's supervisor may still record its end"}`;
    // A running backup's supervisor outlives its agent and records the end itself: only a waiting task is lost with it.
    return waiting && p.ageS * 1000 > limits.unclaimedAfterMs
      ? { problem, hopeless: `agent lost for ${formatSeconds(p.ageS)} (over [schedule] unclaimed_after)` }
      : { problem };
  }
  if (state === 'paused' && p && waiting) {
    const how = p.pauseReason.startsWith('cluster: ')
      ? 'spiderbackup resume --cluster on a spider node'
      : `spiderbackup resume on ${p.agentHost}`;
    return { problem: `host paused until ${p.pauseUntil}: ${p.pauseReason || 'no reason given'} (to end it: ${how})` };
  }
  return {};
}
