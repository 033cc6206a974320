// `schedule --wait` (SPEC §3): poll until no task of the backup id is init/running/replicated.
// Master-side rows through the Spider table (`cancel --wait` away from the primary: on each shard
// master, shard-tables.ts), replica rows on each replica (bounded concurrency),
// both at once. Connections are kept across rounds: one to the spider node (which keeps its own
// to the shards) and one per replica, the command's session's, closed with it.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { errnoOf, isNoSuchTable, type Connection, type Endpoint } from '../db/connect.js';
import type { KeptConnections } from '../db/connections.js';
import { errorMessage } from '../errors.js';
import { formatSeconds } from '../format.js';
import type { NewTaskRow } from '../sql/tasks.js';
import * as sql from '../sql/tasks.js';
import { ER_SPIDER_REMOTE_SERVER_GONE_AWAY } from '../sql/spider.js';
import { mapLimited, readSlaveTasks } from './reach.js';
import { shardTablesOf, type ShardTables } from './shard-tables.js';
import { endpointOf, type ClusterSession } from './session.js';
import { STATUS, isRunnable } from '../task/status.js';
import { supervisorLockName } from '../host/protocol.js';
import type { TaskSet } from './task-set.js';
import { getPresence, type PresenceRow } from '../sql/presence.js';
import { isNotReportingLockHeld } from '../sql/unlogged.js';
import { replicationStatus } from '../sql/replication.js';
import { listReplicaCopies } from '../sql/spider.js';
import { replicationProblem } from './replication-health.js';
import { judge, type Evidence } from './wait-judge.js';
import { agentState, LOST_AFTER_TICKS } from './agent-state.js';
import { type TaskRow, LIMITS } from '../task/task.js';

export const WAIT_LIMIT_MS = 48 * 3600 * 1000;

export interface TaskView {
  task: NewTaskRow;
  /** Undefined while the row has not been read (replica unreachable, not replicated yet). */
  row?: TaskRow;
  problem?: string;
  /** Why the task can no longer finish (its agent lost, its row never replicated …). */
  hopeless?: string;
}

export interface Round {
  n: number;
  views: TaskView[];
  counts: { total: number; success: number; running: number; waiting: number; failed: number; unknown: number };
  errors: string[];
  done: boolean;
}

export interface WaitResult {
  ok: boolean;
  reason: 'finished' | 'too-many-failed-polls' | 'timeout' | 'hopeless';
  last: Round;
  rounds: number;
}

export interface WaitDeps {
  config: AgentConfig;
  logger: Logger;
  onRound?: (round: Round) => void;
  sleep?: (ms: number) => Promise<void>;
}

/** The rounds read on the session's kept connections (e.g. the spider session `schedule` wrote through). */
export async function waitForBackup(deps: WaitDeps, session: ClusterSession, set: TaskSet, backupId: string): Promise<WaitResult> {
  const { config } = deps;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = Date.now();
  const lockless = new Map<string, number>();
  let failedPolls = 0;
  for (let n = 1; ; n++) {
    const investigate = Date.now() - started >= diagnosisGraceMs(config);
    const round = await pollOnce(config, session, set, backupId, n, lockless, investigate);
    deps.onRound?.(round);
    if (round.done) return { ok: round.counts.success === round.counts.total, reason: 'finished', last: round, rounds: n };
    // Every task left can no longer finish: waiting on would only hide it.
    const left = round.views.filter(unended);
    if (left.length > 0 && left.every((v) => v.hopeless !== undefined)) return { ok: false, reason: 'hopeless', last: round, rounds: n };
    if (round.errors.length > 0) {
      failedPolls++;
      deps.logger.warn({ backupId, errors: round.errors, failedPolls }, 'wait: poll had errors; retrying');
      if (failedPolls >= config.schedule.maxFailedPolls) return { ok: false, reason: 'too-many-failed-polls', last: round, rounds: n };
    }
    if (Date.now() - started > WAIT_LIMIT_MS) return { ok: false, reason: 'timeout', last: round, rounds: n };
    await sleep(config.schedule.waitIntervalMs);
  }
}

const keyOf = (t: { host: string; port: number }) => `${t.host}:${t.port}`;

/**
 * Agents get this long to pick their tasks up before the wait looks into why they have not: three
 * of this host's ticks (an agent is lost after three of its own), at least 10 s. Until then a round
 * costs what it always did (the master side through Spider, one read per replica); after it,
 * each waiting task's instance is also asked for its agent's presence, and a replica whose row is
 * missing for its replication status.
 */
export function diagnosisGraceMs(config: AgentConfig): number {
  return Math.max(LOST_AFTER_TICKS * config.agent.tickIntervalMs, 10_000);
}

/** One round: every task's row, read where it lives, on the session's connections (kept for the next round). */
export async function pollOnce(
  config: AgentConfig,
  session: ClusterSession,
  set: TaskSet,
  backupId: string,
  n: number,
  lockless: Map<string, number> = new Map(),
  investigate = false,
): Promise<Round> {
  const spider = session.spider;
  const pool = session.connections;
  const errors: string[] = [];
  const rows = new Map<string, TaskRow>();
  const slaveTasks = new Set(set.tasks.filter((t) => t.wrapper === 'mysql_slave').map(keyOf));
  const slaveServers = set.slaves.filter((s) => slaveTasks.has(keyOf(s)));
  const tables = await shardTablesOf(session, config.schedule.waitConcurrency);
  let masterSideFailed = false;
  const [masterSide, slaveSide] = await Promise.all([
    tables
      .rows((c) => readMasterSide(c, backupId))
      .catch((err: unknown) => {
        masterSideFailed = true;
        errors.push(`${tables.notPrimary ? '' : `spider ${keyOf(spider)}: `}${errorMessage(err)}`);
        return [] as TaskRow[];
      }),
    readSlaveTasks(slaveServers, backupId, config.schedule.waitConcurrency, pool),
  ]);
  for (const r of masterSide) rows.set(keyOf(r), r);
  for (const s of slaveSide) {
    if (s.error) errors.push(`${s.server.serverName} ${keyOf(s.server)}: ${s.error}`);
    for (const r of s.tasks) rows.set(keyOf(r), r);
  }
  const views: TaskView[] = set.tasks.map((task) => ({ task, row: rows.get(keyOf(task)) }));
  await flagStalled(config, spider, set, views, lockless, pool);
  const unreadable = new Set(slaveSide.filter((s) => s.error !== undefined).map((s) => keyOf(s.server)));
  if (masterSideFailed) for (const t of set.tasks) if (t.wrapper !== 'mysql_slave') unreadable.add(keyOf(t));
  if (investigate) await diagnose(config, spider, tables, set, backupId, views, unreadable, pool);

  const counts = { total: views.length, success: 0, running: 0, waiting: 0, failed: 0, unknown: 0 };
  for (const v of views) {
    if (!v.row) counts.unknown++;
    else if (v.row.status === STATUS.success) counts.success++;
    // A quit is not over until its agent has killed the backup and written the outcome.
    else if (v.row.status === STATUS.running || v.row.status === STATUS.quit) counts.running++;
    else if (isRunnable(v.row.status)) counts.waiting++;
    else counts.failed++;
  }
  const done = counts.unknown === 0 && counts.running === 0 && counts.waiting === 0;
  return { n, views, counts, errors, done };
}

/**
 * The master side in one statement through the Spider table. The session keeps Spider's
 * connections to the shards between rounds, so a shard restarted since the last round fails the
 * first statement on a dead connection; Spider has dropped it by then and the second connects anew.
 */
async function readMasterSide(c: Connection, backupId: string): Promise<TaskRow[]> {
  try {
    return await sql.listMasterSideTasks(c, backupId);
  } catch (err) {
    if (errnoOf(err) !== ER_SPIDER_REMOTE_SERVER_GONE_AWAY) throw err;
    return sql.listMasterSideTasks(c, backupId);
  }
}

/**
 * Names tasks nobody is working on instead of waiting silently: waiting longer than
 * [schedule] unclaimed_after, or running while no supervisor holds the task's lock on its
 * instance in two polls in a row (the host's agent or the host itself is gone).
 */
async function flagStalled(
  config: AgentConfig,
  spider: Endpoint,
  set: TaskSet,
  views: TaskView[],
  lockless: Map<string, number>,
  pool: KeptConnections,
): Promise<void> {
  for (const v of views) {
    if (v.row && isRunnable(v.row.status) && v.row.createdAgeS * 1000 > config.schedule.unclaimedAfterMs) {
      v.problem = `not picked up for ${formatSeconds(v.row.createdAgeS)}: is the agent on ${keyOf(v.task)} running?`;
    }
  }
  // Inside the claim grace a supervisor may not hold its lock yet (a row claimed by the old tool).
  const running = views.filter((v) => v.row?.status === STATUS.running && v.row.updatedAgeS > LIMITS.claimGraceS);
  // Masters last: an instance listed as both is reached with its master entry, as its task was made.
  const servers = new Map([...set.slaves, ...set.masters].map((s) => [keyOf(s), s]));
  await mapLimited(running, config.schedule.waitConcurrency, async (v) => {
    const row = v.row as TaskRow;
    const server = servers.get(keyOf(row));
    const ep: Endpoint | undefined = keyOf(row) === keyOf(spider) ? spider : server && endpointOf(server);
    if (!ep) return;
    try {
      const holder = await pool.use(ep, (c) => sql.lockHolder(c, supervisorLockName(row)), { retry: true });
      const k = `${keyOf(row)}/${row.taskPid}`;
      if (holder !== null) lockless.delete(k);
      else lockless.set(k, (lockless.get(k) ?? 0) + 1);
      if ((lockless.get(k) ?? 0) >= 2)
        v.problem = `running (pid ${row.taskPid}) but no agent holds it: is the host ${row.host} up and its agent running?`;
    } catch (err) {
      v.problem = `running; its instance cannot be reached to check the agent: ${errorMessage(err)}`;
    }
  });
}

/** Not ended, as far as this round knows: no row yet, waiting or running. */
export const unended = (v: TaskView): boolean => !v.row || v.row.status === STATUS.running || isRunnable(v.row.status);

/**
 * Says what holds each unended task up (wait-judge.ts): the presence of its instance's agent, read
 * on the instance; for a replica whose row is missing, the master's copy (one statement through
 * the Spider table) and the replica's replication threads. At most wait_concurrency at once, on
 * the round's kept connections.
 */
async function diagnose(
  config: AgentConfig,
  spider: Endpoint,
  tables: ShardTables,
  set: TaskSet,
  backupId: string,
  views: TaskView[],
  unreadable: ReadonlySet<string>,
  pool: KeptConnections,
): Promise<void> {
  const servers = new Map([...set.slaves, ...set.masters].map((s) => [keyOf(s), s]));
  const endpoint = (t: { host: string; port: number }): Endpoint | undefined => {
    if (keyOf(t) === keyOf(spider)) return spider;
    const s = servers.get(keyOf(t));
    return s && endpointOf(s);
  };
  const pending = views.filter(unended);
  const missing = pending.filter((v) => !v.row && v.task.wrapper === 'mysql_slave' && !unreadable.has(keyOf(v.task)));
  let copies = new Map<string, TaskRow>();
  if (missing.length > 0) {
    try {
      const rows = await tables.rows((c) => listReplicaCopies(c, backupId));
      copies = new Map(rows.map((r) => [keyOf(r), r]));
    } catch {
      // the master side is unreadable this round: nothing is concluded about missing rows
    }
  }
  await mapLimited(pending, config.schedule.waitConcurrency, async (v) => {
    const ep = endpoint(v.task);
    if (!ep) return;
    const copy = copies.get(keyOf(v.task));
    const evidence: Evidence = { row: v.row, unreadable: unreadable.has(keyOf(v.task)), presence: 'unreadable', masterCopy: copy };
    try {
      evidence.presence = await pool.use(ep, (c) => presenceOrNone(c, v.task), { retry: true });
      const silent = evidence.presence === undefined || agentState(evidence.presence) === 'lost';
      if (silent && v.task.wrapper === 'mysql_slave') evidence.notReporting = await pool.use(ep, isNotReportingLockHeld, { retry: true });
      if (!v.row && copy) {
        const r = await pool.use(ep, replicationStatus, { retry: true });
        evidence.replication = { problem: replicationProblem(r), lagS: r?.lagS ?? null };
      }
    } catch {
      if (!v.row && copy) evidence.replication = 'unreadable';
    }
    const j = judge(evidence, { unclaimedAfterMs: config.schedule.unclaimedAfterMs, tickIntervalMs: config.agent.tickIntervalMs });
    if (j.problem !== undefined) v.problem = v.problem === undefined ? j.problem : `${j.problem}; ${v.problem}`;
    if (j.hopeless !== undefined) v.hopeless = j.hopeless;
  });
}

async function presenceOrNone(c: Connection, t: { host: string; port: number }): Promise<PresenceRow | undefined> {
  try {
    return await getPresence(c, t.host, t.port);
  } catch (err) {
    if (isNoSuchTable(err)) return undefined;
    throw err;
  }
}

export function progressLine(r: Round): string {
  const c = r.counts;
  return (
    `${c.success}/${c.total} success, ${c.running} running, ${c.waiting} waiting, ${c.failed} ` +
    `failed${c.unknown ? `, ${c.unknown} not readable yet` : ''}`
  );
}

/** The tasks that did not end `success`, for the final report. */
export function unsuccessful(r: Round): TaskView[] {
  return r.views.filter((v) => v.row?.status !== STATUS.success);
}
