// `status --cluster`: every instance of the cluster with its agent, running backup, last success
// and problems, as seen from a spider node. Each instance is read on the instance itself (at most
// [schedule] wait_concurrency at once): its presence lives only there (presence rows never travel
// between instances), that one connection also tells whether the instance is reachable, and a
// replica's replication status can only be asked of the replica. One round trip per instance: one
// statement on a shard master (presence and tasks together), and on a replica that statement and
// its replication status in one request; on a connection of its own closed as soon as it is read:
// at a thousand shards, round trips and open connections are what the command costs. A spider
// node's own tasks are read where the task rows live (shard-tables.ts: through the primary, else on
// shard 0's master), never through another spider node's Spider table.
import { connect, isNoSuchTable, type Connection } from '../db/connect.js';
import { errorMessage, InstanceError } from '../errors.js';
import { formatSeconds } from '../format.js';
import { getClusterPause, type ClusterPause } from '../sql/cluster-pause.js';
import { presenceAndTasks, presenceTasksAndReplication, runningAndLastSuccess, type PresenceAndTasks } from '../sql/instance-history.js';
import { getPresence, type PresenceRow } from '../sql/presence.js';
import { replicationStatus, type ReplicationStatus } from '../sql/replication.js';
import { isNotReportingLockHeld, NEEDS_BINLOG_PRIVILEGE } from '../sql/unlogged.js';
import { agentState, type AgentState } from './agent-state.js';
import { mapLimited } from './reach.js';
import { clusterMembers, type Member, type MemberRole } from './members.js';
import { replicationProblem } from './replication-health.js';
import { lockWaitSecondsFor } from './lock-waits.js';
import type { ClusterSession } from './session.js';
import { shardTablesOf, type ShardTables } from './shard-tables.js';
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
  /**
   * A shard master whose binlogs its agent archives (README "Binlog archive"), as its presence row
   * says: the lag in seconds (null until known), the newest GTID state archived, what is wrong.
   */
  archive?: { lagS: number | null; gtid: string; note: string };
  lastSuccess?: { backupId: string; endedAt: string; durationS: number };
  problems: string[];
}

export interface ClusterStatus {
  spider: string;
  /** The cluster-wide pause as the spider node's own table holds it. */
  clusterPause?: ClusterPause;
  instances: InstanceStatus[];
  /**
   * What could not be read, "SERVER host:port: problem" each (also among that instance's
   * problems): the answer is partial, and not ok.
   */
  unread: string[];
  /** Every agent alive or paused and everything read (the exit code). */
  ok: boolean;
}

/** An instance as read, with what of it could not be read; `noTable`: its task table is missing (the server's error). */
interface MemberRead {
  status: InstanceStatus;
  unread: string[];
  noTable?: string;
}

/** Whether or not this node is the primary. */
export async function readClusterStatus(session: ClusterSession, concurrency: number): Promise<ClusterStatus> {
  const tables = await shardTablesOf(session, concurrency);
  const members = clusterMembers(tables.servers, session.target);
  const pool = session.connections;
  const closing: Promise<void>[] = [];
  const reads = await mapLimited(members, concurrency, (m) => readMember(m, session, tables, closing));
  await Promise.all(closing);
  // Where the spider node has the task table, every instance should: one without it is not "no
  // task yet" but a table that cannot be read.
  const spiderHasTable = reads.some((r) => r.status.role === 'spider' && r.status.reachable && r.noTable === undefined);
  for (const r of reads) {
    if (r.noTable === undefined || !spiderHasTable) continue;
    const p = `cannot read its tasks: ${r.noTable} (the spider node has the task table)`;
    r.status.problems.push(p);
    r.unread.push(p);
  }
  const instances = reads.map((r) => r.status);
  const unread = reads.flatMap((r) => r.unread.map((u) => `${r.status.serverName} ${r.status.host}:${r.status.port}: ${u}`));
  let clusterPause: ClusterPause | undefined;
  try {
    clusterPause = await pool.use(session.spider, getClusterPause, { retry: true });
  } catch {
    // no table yet (never paused), or the spider node is down: its own row says so
  }
  const ok = unread.length === 0 && instances.every((i) => i.agent.state === 'alive' || i.agent.state === 'paused');
  return { spider: `${session.spider.host}:${session.spider.port}`, ...(clusterPause ? { clusterPause } : {}), instances, unread, ok };
}

type Tasks = Awaited<ReturnType<typeof runningAndLastSuccess>>;

/**
 * The spider node on the session's kept connection (the cluster pause is read on it next); every
 * other instance on a new connection, closed without waiting for it in the read's turn (`closing`).
 */
async function readMember(m: Member, session: ClusterSession, tables: ShardTables, closing: Promise<void>[]): Promise<MemberRead> {
  const base = { serverName: m.serverName, role: m.role, shard: m.shard ?? null, host: m.host, port: m.port };
  // A spider node's rows (ShardValue 0) are read before its own connection is taken: on the
  // primary, that is the same connection.
  const spiderTasks = m.role === 'spider' ? await settle(tables.readOn(0, (c) => runningAndLastSuccess(c, m.host, m.port, 0))) : undefined;
  try {
    if (m.role === 'spider') return await session.connections.use(m.endpoint, (c) => readOn(c, m, base, spiderTasks), { retry: true });
    // No session set-up statement: the one read carries its own lock-wait bound. A replica's
    // replication status comes in the same request (one round trip per instance).
    const { init: _init, ...oneShot } = session.connectOptions;
    const c = await connect(m.endpoint, { ...oneShot, multipleStatements: m.role === 'slave' });
    try {
      const timeout = session.connectOptions.queryTimeoutMs;
      return await readOn(c, m, base, undefined, timeout === undefined ? undefined : lockWaitSecondsFor(timeout), true);
    } finally {
      closing.push(c.close());
    }
  } catch (err) {
    const p = `unreachable: ${errorMessage(err)}`;
    return { status: { ...base, reachable: false, agent: { state: 'unknown' }, problems: [p] }, unread: [p] };
  }
}

async function readOn(
  c: Connection,
  m: Member,
  base: Omit<InstanceStatus, 'reachable' | 'agent' | 'problems'>,
  spiderTasks: Settled<Tasks> | undefined,
  lockWaitS?: number,
  /** The connection takes several statements in one request (a replica's one-shot connection). */
  multi = false,
): Promise<MemberRead> {
  const problems: string[] = [];
  const unread: string[] = [];
  const cannot = (p: string) => {
    problems.push(p);
    unread.push(p);
  };
  // A shard master or replica: both reads in one statement. Where it fails (a table missing, a
  // privilege refused) they are made one by one, as on the spider node, and each says what failed.
  let both: PresenceAndTasks | undefined;
  let bothFailed: unknown;
  let replication: { value: ReplicationStatus | undefined } | undefined;
  if (m.role !== 'spider') {
    try {
      if (m.role === 'slave' && multi) {
        const all = await presenceTasksAndReplication(c, m.host, m.port, lockWaitS);
        both = all;
        replication = { value: all.replication };
      } else both = await presenceAndTasks(c, m.host, m.port, lockWaitS);
    } catch (err) {
      if (!(err instanceof InstanceError)) throw err; // not the server's answer: a fault of ours, never hidden
      // A connection it left broken (a statement timeout): that is the first read's failure, as it was.
      if (c.broken) bothFailed = err;
    }
  }
  const read = <T>(fn: () => Promise<T>): Promise<T> => (bothFailed === undefined ? fn() : Promise.reject(bothFailed));
  let presenceError = false;
  const presence = both
    ? both.presence
    : await orUndefined(
        read(() => getPresence(c, m.host, m.port)),
        (err) => {
          presenceError = true;
          cannot(`cannot read its agent's presence: ${errorMessage(err)}`);
        },
      );
  let noTable: string | undefined;
  const tasks = both
    ? both
    : await orUndefined(
        read(() => (spiderTasks ? unsettle(spiderTasks) : runningAndLastSuccess(c, m.host, m.port))).catch((err: unknown) => {
          if (isNoSuchTable(err)) noTable = errorMessage(err);
          throw err;
        }),
        (err) => cannot(`cannot read its tasks: ${errorMessage(err)}`),
      );
  if (m.role === 'slave') {
    try {
      const p = replicationProblem(replication ? replication.value : await replicationStatus(c));
      if (p) problems.push(p);
    } catch (err) {
      cannot(`cannot read its replication status: ${errorMessage(err)}`);
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
  const archive = silent ? undefined : presence?.archive;
  if (archive?.note) problems.push(`binlog archive: ${archive.note}`);
  if (state === 'lost') problems.unshift(`agent lost: its last tick was ${presence ? formatSeconds(presence.ageS) : '?'} ago`);
  if (state === 'none') problems.unshift('no agent has ever announced itself here');
  const status: InstanceStatus = {
    ...base,
    reachable: true,
    agent: silent ? { state, reason: NEEDS_BINLOG_PRIVILEGE } : agentOf(state, presence),
    ...running(silent ? undefined : presence, tasks?.running ?? []),
    ...(tasks?.lastSuccess ? { lastSuccess: successOf(tasks.lastSuccess) } : {}),
    ...(archive ? { archive } : {}),
    problems,
  };
  return { status, unread, ...(noTable === undefined ? {} : { noTable }) };
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

type Settled<T> = { value: T } | { error: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
const unsettle = <T>(s: Settled<T>): Promise<T> => ('value' in s ? Promise.resolve(s.value) : Promise.reject(s.error));

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
