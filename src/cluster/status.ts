// `status --cluster`: every instance of the cluster with its agent, running backup, last success
// and problems, as seen from a spider node. Each instance is read on the instance itself (at most
// [schedule] wait_concurrency at once): its presence lives only there (presence rows never travel
// between instances), that one connection also tells whether the instance is reachable, and a
// replica's replication status can only be asked of the replica. Two or three statements each.
import { isNoSuchTable, type Connection } from '../db/connect.js';
import type { KeptConnections } from '../db/connections.js';
import { errorMessage } from '../errors.js';
import { formatSeconds } from '../format.js';
import { getClusterPause, type ClusterPause } from '../sql/cluster-pause.js';
import { runningAndLastSuccess } from '../sql/instance-history.js';
import { getPresence, type PresenceRow } from '../sql/presence.js';
import { replicationStatus } from '../sql/replication.js';
import { isNotReportingLockHeld, NEEDS_BINLOG_PRIVILEGE } from '../sql/unlogged.js';
import { agentState, type AgentState } from './agent-state.js';
import { mapLimited } from './reach.js';
import { clusterMembers, type Member, type MemberRole } from './members.js';
import { replicationProblem } from './replication-health.js';
import type { ClusterSession } from './session.js';
import type { TaskRow } from '../task/task.js';

export interface InstanceStatus {
  serverName: string;
  role: MemberRole;
  shard: number | null;
  host: string;
  port: number;
  reachable: boolean;
  agent: {
    /**
     * `unknown` when the instance could not be read; `not-reporting` on a replica whose agent runs
     * but may not write its presence there (`reason`: its user lacks SUPER and BINLOG ADMIN).
     */
    state: AgentState | 'unknown' | 'not-reporting';
    reason?: string;
    version?: string;
    agentHost?: string;
    /** Seconds since its last tick, by the database clock. */
    ageS?: number;
    tickIntervalMs?: number;
    pauseReason?: string;
    pauseUntil?: string;
  };
  running?: { backupId: string; elapsedS: number; bytes: number | null; bytesPerS: number | null };
  lastSuccess?: { backupId: string; endedAt: string; durationS: number };
  problems: string[];
}

export interface ClusterStatus {
  spider: string;
  /** The cluster-wide pause as the spider node's own table holds it. */
  clusterPause?: ClusterPause;
  instances: InstanceStatus[];
  /** Every agent alive or paused (the exit code). */
  ok: boolean;
}

/** Whether or not this node is the primary. */
export async function readClusterStatus(session: ClusterSession, concurrency: number): Promise<ClusterStatus> {
  const members = clusterMembers(await session.servers(), session.target);
  const pool = session.connections;
  const instances = await mapLimited(members, concurrency, (m) => readMember(m, pool));
  let clusterPause: ClusterPause | undefined;
  try {
    clusterPause = await pool.use(session.spider, getClusterPause, { retry: true });
  } catch {
    // no table yet (never paused), or the spider node is down: its own row says so
  }
  const ok = instances.every((i) => i.agent.state === 'alive' || i.agent.state === 'paused');
  return { spider: `${session.spider.host}:${session.spider.port}`, ...(clusterPause ? { clusterPause } : {}), instances, ok };
}

async function readMember(m: Member, pool: KeptConnections): Promise<InstanceStatus> {
  const base = { serverName: m.serverName, role: m.role, shard: m.shard ?? null, host: m.host, port: m.port };
  try {
    return await pool.use(m.endpoint, (c) => readOn(c, m, base), { retry: true });
  } catch (err) {
    return { ...base, reachable: false, agent: { state: 'unknown' }, problems: [`unreachable: ${errorMessage(err)}`] };
  }
}

async function readOn(c: Connection, m: Member, base: Omit<InstanceStatus, 'reachable' | 'agent' | 'problems'>): Promise<InstanceStatus> {
  const problems: string[] = [];
  let presenceError = false;
  const presence = await orUndefined(getPresence(c, m.host, m.port), (err) => {
    presenceError = true;
    problems.push(`cannot read its agent's presence: ${errorMessage(err)}`);
  });
  const tasks = await orUndefined(runningAndLastSuccess(c, m.host, m.port, m.role === 'spider' ? 0 : undefined), (err) =>
    problems.push(`cannot read its tasks: ${errorMessage(err)}`),
  );
  if (m.role === 'slave') {
    try {
      const p = replicationProblem(await replicationStatus(c));
      if (p) problems.push(p);
    } catch (err) {
      problems.push(`cannot read its replication status: ${errorMessage(err)}`);
    }
  }
  let state: InstanceStatus['agent']['state'] = presenceError ? 'unknown' : agentState(presence);
  // A replica's agent that may not keep its presence out of the binary log writes none, and
  // holds a lock instead that says so (sql/unlogged.ts): neither lost nor absent. One statement
  // more, only where no live presence is found.
  const silent = m.role === 'slave' && (state === 'none' || state === 'lost') && (await orUndefined(isNotReportingLockHeld(c), () => {}));
  if (silent) {
    state = 'not-reporting';
    problems.unshift(`its agent is not reporting: it ${NEEDS_BINLOG_PRIVILEGE} to keep its presence out of the replica's binary log`);
  }
  if (state === 'lost') problems.unshift(`agent lost: its last tick was ${presence ? formatSeconds(presence.ageS) : '?'} ago`);
  if (state === 'none') problems.unshift('no agent has ever announced itself here');
  return {
    ...base,
    reachable: true,
    agent: silent ? { state, reason: NEEDS_BINLOG_PRIVILEGE } : agentOf(state, presence),
    ...running(silent ? undefined : presence, tasks?.running ?? []),
    ...(tasks?.lastSuccess ? { lastSuccess: successOf(tasks.lastSuccess) } : {}),
    problems,
  };
}

function agentOf(state: InstanceStatus['agent']['state'], p: PresenceRow | undefined): InstanceStatus['agent'] {
  if (!p) return { state };
  return {
    state,
    version: p.agentVersion,
    agentHost: p.agentHost,
    ageS: p.ageS,
    tickIntervalMs: p.tickIntervalMs,
    ...(p.paused ? { pauseReason: p.pauseReason, pauseUntil: p.pauseUntil } : {}),
  };
}

/** The running task: the row says since when (its claim, by the database clock), the presence how many bytes. */
function running(p: PresenceRow | undefined, rows: readonly TaskRow[]): Pick<InstanceStatus, 'running'> {
  const row = rows.find((r) => r.backupId === p?.runningBackupId) ?? rows[0];
  if (!row) return {};
  const bytes = p?.runningBackupId === row.backupId ? p.runningBytes : null;
  const elapsedS = row.updatedAgeS;
  return { running: { backupId: row.backupId, elapsedS, bytes, bytesPerS: bytes !== null && elapsedS > 0 ? bytes / elapsedS : null } };
}

/** global_backup keeps no start time: the duration runs from the task's creation (schedule) to its end. */
function successOf(t: TaskRow): NonNullable<InstanceStatus['lastSuccess']> {
  return { backupId: t.backupId, endedAt: t.updatedAt, durationS: Math.max(0, t.createdAgeS - t.updatedAgeS) };
}

/** A missing table is "nothing there yet"; other errors are reported through `onError` when given, else thrown. */
async function orUndefined<T>(p: Promise<T>, onError?: (err: unknown) => void): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNoSuchTable(err)) return undefined;
    if (!onError) throw err;
    onError(err);
    return undefined;
  }
}
