// Statements on the cluster-pause table (ddl.ts createClusterPauseTable): the writes of
// `pause --cluster` / `resume --cluster`, and the agent's read, folded into its tick's one read of
// its unfinished tasks so an idle tick stays at two statements (that read and the presence write).
// Every time is the database's: PauseUntil and SetAt by NOW(), "in force" decided by the server.
import { isNoSuchTable, type Queryable } from '../db/connect.js';
import { CLUSTER_PAUSE_TABLE, SCHEMA, TABLE } from './ddl.js';
import { toTask, UNFINISHED, UNFINISHED_PAGE, type RawRow } from './tasks.js';
import type { TaskRow } from '../task/task.js';

const CP = `${SCHEMA}.${CLUSTER_PAUSE_TABLE}`;
const T = `${SCHEMA}.${TABLE}`;

export interface ClusterPause {
  /** ISO time the pause ends. */
  until: string;
  reason: string;
  by: string;
  /** Seconds left, by the database clock. */
  remainingS: number;
}

/** The row of `pause --cluster` (forS > 0) or `resume --cluster` (forS = 0: it ends now) for one instance. */
export async function writeClusterPause(q: Queryable, host: string, port: number, forS: number, reason: string, by: string): Promise<void> {
  await q.query(
    `INSERT INTO ${CP} (Host, Port, PauseUntil, Reason, SetBy, SetAt) VALUES (?, ?, NOW() + INTERVAL ? SECOND, ?, ?, NOW())
     ON DUPLICATE KEY UPDATE PauseUntil = VALUES(PauseUntil), Reason = VALUES(Reason), SetBy = VALUES(SetBy), SetAt = NOW()`,
    [host, port, forS, reason.slice(0, 255), by.slice(0, 64)],
  );
}

interface RawPause {
  CpReason: string | null;
  CpBy: string | null;
  CpUntil: number | string | null;
  CpRemainingS: number | string | null;
}

const PAUSE_COLUMNS = `Reason AS CpReason, SetBy AS CpBy, UNIX_TIMESTAMP(PauseUntil) AS CpUntil,
  TIMESTAMPDIFF(SECOND, NOW(), PauseUntil) AS CpRemainingS`;
/** The most recent decision wins: a resume (a row that ended at once) lifts an older pause row. */
const LATEST = `SELECT ${PAUSE_COLUMNS} FROM ${CP} ORDER BY SetAt DESC, PauseUntil DESC LIMIT 1`;

function toPause(r: RawPause | undefined): ClusterPause | undefined {
  if (!r || r.CpUntil === null || Number(r.CpRemainingS) <= 0) return undefined;
  return {
    until: new Date(Number(r.CpUntil) * 1000).toISOString(),
    reason: r.CpReason ?? '',
    by: r.CpBy ?? '',
    remainingS: Number(r.CpRemainingS),
  };
}

/** The cluster pause in force on this instance, if any. */
export async function getClusterPause(q: Queryable): Promise<ClusterPause | undefined> {
  const rows = (await q.query(LATEST)) as RawPause[];
  return toPause(rows[0]);
}

/**
 * The tick's read: the instance's unfinished tasks (as tasks.ts listUnfinishedTasks, same WHERE, so
 * the same index and Spider pruning) and, in the same statement, the latest cluster-pause row of the
 * instance's local table. UNION ALL rather than a join: the task part keeps its own plan, and the
 * statement returns the pause even when there is no task. Tasks come back oldest first.
 */
export async function listUnfinishedTasksAndPause(
  q: Queryable,
  host: string,
  port: number,
  onlyShard?: number,
): Promise<{ tasks: TaskRow[]; total: number; clusterPause: ClusterPause | undefined }> {
  const shard = onlyShard === undefined ? '' : ' AND ShardValue = ?';
  const rows = (await q.query(
    `(SELECT 'task' AS Kind, COUNT(*) OVER () AS UnfinishedN, ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, CreatedAt, UpdatedAt,
       TIMESTAMPDIFF(SECOND, CreatedAt, NOW()) AS CreatedAgeS, TIMESTAMPDIFF(SECOND, UpdatedAt, NOW()) AS UpdatedAgeS,
       NULL AS CpReason, NULL AS CpBy, NULL AS CpUntil, NULL AS CpRemainingS
     FROM ${T} WHERE Host = ? AND Port = ? AND BackupStatus IN ${UNFINISHED}${shard} ${UNFINISHED_PAGE})
     UNION ALL
     (SELECT 'pause', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ${PAUSE_COLUMNS}
     FROM ${CP} ORDER BY SetAt DESC, PauseUntil DESC LIMIT 1)`,
    onlyShard === undefined ? [host, port] : [host, port, onlyShard],
  )) as (RawRow & RawPause & { Kind: string; UnfinishedN: number | string | null })[];
  const taskRows = rows.filter((r) => r.Kind === 'task');
  const tasks = taskRows.map(toTask).sort((a, b) => cmp(a.createdAt, b.createdAt) || cmp(a.backupId, b.backupId));
  return { tasks, total: Number(taskRows[0]?.UnfinishedN ?? 0), clusterPause: toPause(rows.find((r) => r.Kind === 'pause')) };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The user may not read the cluster-pause table (a grant on global_backup alone). */
export function isClusterPauseDenied(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === 'ER_TABLEACCESS_DENIED_ERROR' && (e.message ?? '').includes(CLUSTER_PAUSE_TABLE);
}

/** Whether `err` says the cluster-pause table is missing (the task table's absence means something else). */
export function isMissingClusterPauseTable(err: unknown): boolean {
  return isNoSuchTable(err, CLUSTER_PAUSE_TABLE);
}
