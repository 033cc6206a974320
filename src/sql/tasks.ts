// Every statement on the task table, one function each, fully parameterised. Ages come from the
// database clock (TIMESTAMPDIFF against NOW()), never from this host's clock. Every state change
// is conditional on the state the caller observed, so concurrent agents cannot undo each other.
import type { Queryable } from '../db/connect.js';
import { SCHEMA, TABLE } from './ddl.js';
import { STATUS_WIDTH, type TaskKey, type TaskRow } from '../task/task.js';

const T = `${SCHEMA}.${TABLE}`;

export const SELECT_TASK = `SELECT ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid,
  CreatedAt, UpdatedAt,
  TIMESTAMPDIFF(SECOND, CreatedAt, NOW()) AS CreatedAgeS,
  TIMESTAMPDIFF(SECOND, UpdatedAt, NOW()) AS UpdatedAgeS
  FROM ${T}`;

const KEY = 'BackupId = ? AND Host = ? AND Port = ? AND ShardValue = ?';
const keyParams = (k: TaskKey): unknown[] => [k.backupId, k.host, k.port, k.shardValue];

export interface RawRow {
  ServerName: string;
  Wrapper: string;
  Host: string;
  Port: number;
  ShardValue: number;
  BackupId: string;
  BackupStatus: string;
  TaskPid: number;
  CreatedAt: string;
  UpdatedAt: string;
  CreatedAgeS: number | string | null;
  UpdatedAgeS: number | string | null;
}

export function toTask(r: RawRow): TaskRow {
  return {
    serverName: r.ServerName,
    wrapper: r.Wrapper,
    host: r.Host,
    port: Number(r.Port),
    shardValue: Number(r.ShardValue),
    backupId: r.BackupId,
    status: r.BackupStatus,
    taskPid: Number(r.TaskPid),
    createdAt: r.CreatedAt,
    updatedAt: r.UpdatedAt,
    createdAgeS: Number(r.CreatedAgeS ?? 0),
    updatedAgeS: Number(r.UpdatedAgeS ?? 0),
  };
}

const fit = (status: string): string => status.slice(0, STATUS_WIDTH);

const affected = (res: unknown): number => Number((res as { affectedRows?: number }).affectedRows ?? 0);

/** Statuses an agent must act on: waiting, running, or a quit request. Everything else is history. */
export const UNFINISHED = "('init', 'replicated', 'running', 'quit')";

/**
 * At most this many unfinished rows are read per instance and tick: running and quit ones first,
 * then the oldest waiting ones — those the pick and the 12 h expiry need first; the rest come into
 * view as those ahead of them end. Ten thousand waiting rows cost a tick no more than a hundred.
 */
export const UNFINISHED_READ_LIMIT = 100;

/** Running/quit first, oldest first; the window count is taken before the LIMIT: every unfinished row. */
export const UNFINISHED_PAGE = `ORDER BY BackupStatus IN ('running', 'quit') DESC, CreatedAt, BackupId LIMIT ${UNFINISHED_READ_LIMIT}`;

export interface Unfinished {
  /** Up to UNFINISHED_READ_LIMIT rows, oldest first. */
  tasks: TaskRow[];
  /** How many unfinished rows the instance has in all. */
  total: number;
}

/**
 * The instance's tasks an agent acts on, oldest first: the one statement of an idle tick. Uses
 * idx_host_port_status where the table has it (schedule creates it; see README for old tables).
 * A spider node's own rows have ShardValue 0 (SPEC §3), which prunes the Spider table to one shard.
 */
export async function listUnfinishedTasks(q: Queryable, host: string, port: number, onlyShard?: number): Promise<Unfinished> {
  const shard = onlyShard === undefined ? '' : ' AND ShardValue = ?';
  const rows = (await q.query(
    `${SELECT_TASK.replace(' FROM ', ', COUNT(*) OVER () AS UnfinishedN FROM ')} WHERE Host = ? AND Port = ? AND BackupStatus IN ${UNFINISHED}${shard} ${UNFINISHED_PAGE}`,
    onlyShard === undefined ? [host, port] : [host, port, onlyShard],
  )) as (RawRow & { UnfinishedN: number | string })[];
  const tasks = rows.map(toTask).sort((a, b) => cmp(a.createdAt, b.createdAt) || cmp(a.backupId, b.backupId));
  return { tasks, total: Number(rows[0]?.UnfinishedN ?? 0) };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The instance's most recently finished task (for status), or undefined. */
export async function lastFinishedTask(q: Queryable, host: string, port: number): Promise<TaskRow | undefined> {
  const rows = (await q.query(
    `${SELECT_TASK} WHERE Host = ? AND Port = ? AND BackupStatus NOT IN ${UNFINISHED} ORDER BY UpdatedAt DESC, BackupId LIMIT 1`,
    [host, port],
  )) as RawRow[];
  return rows[0] ? toTask(rows[0]) : undefined;
}

/**
 * The instance's most recent successful task (for the last-success metric), or undefined. A
 * spider node's own rows have ShardValue 0: one shard of the Spider table instead of all.
 */
export async function lastSuccessfulTask(q: Queryable, host: string, port: number, onlyShard?: number): Promise<TaskRow | undefined> {
  const shard = onlyShard === undefined ? '' : ' AND ShardValue = ?';
  const rows = (await q.query(
    `${SELECT_TASK} WHERE Host = ? AND Port = ? AND BackupStatus = 'success'${shard} ORDER BY UpdatedAt DESC, BackupId LIMIT 1`,
    onlyShard === undefined ? [host, port] : [host, port, onlyShard],
  )) as RawRow[];
  return rows[0] ? toTask(rows[0]) : undefined;
}

/** All tasks of one instance (Host, Port), oldest first. */
export async function listInstanceTasks(q: Queryable, host: string, port: number): Promise<TaskRow[]> {
  const rows = (await q.query(`${SELECT_TASK} WHERE Host = ? AND Port = ? ORDER BY CreatedAt, BackupId`, [host, port])) as RawRow[];
  return rows.map(toTask);
}

export async function getTask(q: Queryable, k: TaskKey): Promise<TaskRow | undefined> {
  const rows = (await q.query(`${SELECT_TASK} WHERE ${KEY}`, keyParams(k))) as RawRow[];
  return rows[0] ? toTask(rows[0]) : undefined;
}

/**
 * The claim: init/replicated → running in one conditional statement, with the claimant's pid, so
 * the row is never `running` without a pid. True when we won it.
 */
export async function claimTask(q: Queryable, k: TaskKey, pid: number): Promise<boolean> {
  const res = await q.query(
    `UPDATE ${T} SET BackupStatus = 'running', TaskPid = ? WHERE ${KEY} AND BackupStatus IN ('init', 'replicated')`,
    [pid, ...keyParams(k)],
  );
  return affected(res) === 1;
}

/**
 * Any change conditional on the exact status and pid observed: repairing an overwritten row to
 * `running` with the real pid, or a final status over a row whose backup was killed here.
 */
export async function updateObserved(
  q: Queryable,
  k: TaskKey,
  observed: { status: string; pid: number },
  status: string,
  pid: number,
): Promise<boolean> {
  const res = await q.query(`UPDATE ${T} SET BackupStatus = ?, TaskPid = ? WHERE ${KEY} AND BackupStatus = ? AND TaskPid = ?`, [
    fit(status),
    pid,
    ...keyParams(k),
    observed.status,
    observed.pid,
  ]);
  return affected(res) === 1;
}

/**
 * Moves a running task to its next status, only if it is still running under the pid the caller
 * saw. Used for the final status, for housekeeping failures and to hand a claim back.
 */
export async function updateRunning(q: Queryable, k: TaskKey, observedPid: number, status: string, newPid = observedPid): Promise<boolean> {
  const res = await q.query(`UPDATE ${T} SET BackupStatus = ?, TaskPid = ? WHERE ${KEY} AND BackupStatus = 'running' AND TaskPid = ?`, [
    fit(status),
    newPid,
    ...keyParams(k),
    observedPid,
  ]);
  return affected(res) === 1;
}

/** Any status change conditional on the exact status observed (quit outcome, 12 h expiry). */
export async function updateStatus(q: Queryable, k: TaskKey, observedStatus: string, status: string): Promise<boolean> {
  const res = await q.query(`UPDATE ${T} SET BackupStatus = ? WHERE ${KEY} AND BackupStatus = ?`, [
    fit(status),
    ...keyParams(k),
    observedStatus,
  ]);
  return affected(res) === 1;
}

/**
 * A waiting task (init/replicated) straight to a final status: a cancel of a task nobody has
 * claimed. Conditional on it still waiting, so it never overtakes a claim.
 */
export async function endWaitingTask(q: Queryable, k: TaskKey, status: string): Promise<boolean> {
  const res = await q.query(`UPDATE ${T} SET BackupStatus = ? WHERE ${KEY} AND BackupStatus IN ('init', 'replicated')`, [
    fit(status),
    ...keyParams(k),
  ]);
  return affected(res) === 1;
}

/**
 * Deletes up to `limit` finished rows older than `days` by the database clock. The caller must have
 * turned off binary logging for the session (setSqlLogBin) so each replica keeps its own history.
 */
export async function deleteOldTasks(q: Queryable, days: number, limit: number): Promise<number> {
  const res = await q.query(`DELETE FROM ${T} WHERE CreatedAt < NOW() - INTERVAL ? DAY AND BackupStatus <> 'running' LIMIT ?`, [
    days,
    limit,
  ]);
  return affected(res);
}

export async function setSqlLogBin(q: Queryable, on: boolean): Promise<void> {
  await q.query('SET SESSION sql_log_bin = ?', [on ? 1 : 0]);
}

// ---- spider-master side: schedule, wait, query -------------------------------------------------

export interface NewTaskRow extends TaskKey {
  serverName: string;
  wrapper: string;
  status: string;
}

export async function countBackupTasks(q: Queryable, backupId: string): Promise<number> {
  const rows = (await q.query(`SELECT COUNT(*) AS n FROM ${T} WHERE BackupId = ?`, [backupId])) as { n: number | string }[];
  return Number(rows[0]?.n ?? 0);
}

/** The whole task set of one backup id in one statement, CreatedAt by the database clock. */
export async function insertTaskRows(q: Queryable, rows: readonly NewTaskRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const values = rows.map(() => '(?, ?, ?, ?, ?, ?, ?, -1, NOW())').join(', ');
  const params = rows.flatMap((r) => [r.serverName, r.wrapper, r.host, r.port, r.shardValue, r.backupId, r.status]);
  const res = await q.query(
    `INSERT INTO ${T} (ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, CreatedAt) VALUES ${values}`,
    params,
  );
  return affected(res);
}

/**
 * Cancels the not-yet-started tasks of one backup id on one shard. Per shard, because a Spider
 * statement touching every partition fails as a whole when one shard is down.
 */
export async function cancelShardTasks(q: Queryable, backupId: string, shardValue: number): Promise<number> {
  const res = await q.query(
    `UPDATE ${T} SET BackupStatus = 'cancel' WHERE BackupId = ? AND ShardValue = ? AND BackupStatus IN ('init', 'replicated')`,
    [backupId, shardValue],
  );
  return affected(res);
}

/** Master-side tasks of a backup id (spider master and SPT<n>), read through the Spider table. */
export async function listMasterSideTasks(q: Queryable, backupId: string): Promise<TaskRow[]> {
  const rows = (await q.query(`${SELECT_TASK} WHERE BackupId = ? AND Wrapper <> 'mysql_slave' ORDER BY ShardValue, Port`, [
    backupId,
  ])) as RawRow[];
  return rows.map(toTask);
}

/** Tasks as a filter selects them; newest first. Status classes match the part before ':'. */
export async function listTasks(q: Queryable, filter: { backupId?: string; host?: string; port?: number }): Promise<TaskRow[]> {
  // Fixed fragments; only the values are parameters.
  const conditions: [string, unknown][] = [
    ['BackupId = ?', filter.backupId],
    ['Host = ?', filter.host],
    ['Port = ?', filter.port],
  ];
  const used = conditions.filter(([, value]) => value !== undefined);
  const where = used.map(([fragment]) => fragment);
  const params = used.map(([, value]) => value);
  const rows = (await q.query(
    `${SELECT_TASK}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY CreatedAt DESC, BackupId, ShardValue, Port`,
    params,
  )) as RawRow[];
  return rows.map(toTask);
}

/** Whether infodba_schema holds the table (the task table unless another of ours is named). */
export async function tableExists(q: Queryable, table: string = TABLE): Promise<boolean> {
  const rows = (await q.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    SCHEMA,
    table,
  ])) as { n: number | string }[];
  return Number(rows[0]?.n ?? 0) > 0;
}

export async function serverVersion(q: Queryable): Promise<string> {
  const rows = (await q.query('SELECT VERSION() AS v')) as { v: string }[];
  return rows[0]?.v ?? '';
}

/** Whether some session holds the supervisor's liveness lock (NULL from IS_USED_LOCK: nobody). */
export async function lockHolder(q: Queryable, name: string): Promise<number | null> {
  const rows = (await q.query('SELECT IS_USED_LOCK(?) AS holder', [name])) as { holder: number | string | null }[];
  const h = rows[0]?.holder;
  return h === null || h === undefined ? null : Number(h);
}

export async function getLock(q: Queryable, name: string): Promise<boolean> {
  const rows = (await q.query('SELECT GET_LOCK(?, 0) AS ok', [name])) as { ok: number | string | null }[];
  return Number(rows[0]?.ok) === 1;
}
