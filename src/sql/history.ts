// The history of global backups for `list`, aggregated by the servers (GROUP BY BackupId), so a
// long history costs one statement through the Spider node and one per replica, never a row per
// task on the wire. Fully parameterised; ages by each server's own clock.
import type { Queryable } from '../db/connect.js';
import { SCHEMA, TABLE } from './ddl.js';

const T = `${SCHEMA}.${TABLE}`;

/** Counts of one backup id's tasks by status class, as one server sees them. */
export interface StatusCounts {
  tasks: number;
  success: number;
  failed: number;
  /** init, replicated, running, quit: not final yet. */
  unfinished: number;
  /** quit: …, cancel: stopped on request (an operator's, a cancel's or the 12 h expiry's). */
  stopped: number;
  /** Seconds since the latest UpdatedAt of these tasks, and that UpdatedAt. */
  updatedAgeS: number;
  updatedAt: string;
}

export interface MasterSideSummary extends StatusCounts {
  backupId: string;
  createdAt: string;
  createdAgeS: number;
  /** Tasks of replicas (their master-side copies): counted on the replicas themselves. */
  replicaTasks: number;
}

const SLAVE = "Wrapper = 'mysql_slave'";
const MASTER_SIDE = "Wrapper <> 'mysql_slave'";
const counts = (own: string) => `
  SUM(${own}) AS Tasks,
  SUM(${own} AND BackupStatus = 'success') AS Success,
  SUM(${own} AND BackupStatus LIKE 'failed%') AS Failed,
  SUM(${own} AND BackupStatus IN ('init', 'replicated', 'running', 'quit')) AS Unfinished,
  SUM(${own} AND (BackupStatus LIKE 'quit:%' OR BackupStatus = 'cancel')) AS Stopped,
  MAX(CASE WHEN ${own} THEN UpdatedAt END) AS UpdatedAt,
  TIMESTAMPDIFF(SECOND, MAX(CASE WHEN ${own} THEN UpdatedAt END), NOW()) AS UpdatedAgeS`;

type Raw = Record<string, string | number | null>;
const num = (v: string | number | null | undefined): number => Number(v ?? 0);
const toCounts = (r: Raw): StatusCounts => ({
  tasks: num(r.Tasks),
  success: num(r.Success),
  failed: num(r.Failed),
  unfinished: num(r.Unfinished),
  stopped: num(r.Stopped),
  updatedAgeS: num(r.UpdatedAgeS),
  updatedAt: String(r.UpdatedAt ?? ''),
});

/**
 * The newest backup ids with their master-side counts, through the Spider table. `onlyAllSuccess`:
 * only ids whose master-side tasks all succeeded (candidates for --latest-complete). Without a
 * limit, every id (one shard master's own table, whose counts are summed with the others').
 */
export async function masterSideSummaries(
  q: Queryable,
  opts: { limit?: number; offset?: number; onlyAllSuccess?: boolean; backupIds?: readonly string[] },
): Promise<MasterSideSummary[]> {
  const ids = opts.backupIds ?? [];
  const where = ids.length > 0 ? ` WHERE BackupId IN (${ids.map(() => '?').join(', ')})` : '';
  const having = opts.onlyAllSuccess ? ` HAVING SUM(${MASTER_SIDE} AND BackupStatus <> 'success') = 0` : '';
  const page = opts.limit === undefined ? '' : ' LIMIT ? OFFSET ?';
  const rows = (await q.query(
    `SELECT BackupId, MIN(CreatedAt) AS CreatedAt, TIMESTAMPDIFF(SECOND, MIN(CreatedAt), NOW()) AS CreatedAgeS,
       SUM(${SLAVE}) AS ReplicaTasks,${counts(MASTER_SIDE)}
     FROM ${T}${where} GROUP BY BackupId${having} ORDER BY MIN(CreatedAt) DESC, BackupId DESC${page}`,
    opts.limit === undefined ? [...ids] : [...ids, opts.limit, opts.offset ?? 0],
  )) as Raw[];
  return rows.map((r) => ({
    backupId: String(r.BackupId),
    createdAt: String(r.CreatedAt ?? ''),
    createdAgeS: num(r.CreatedAgeS),
    replicaTasks: num(r.ReplicaTasks),
    ...toCounts(r),
  }));
}

/** One replica's own tasks of these backup ids, counted on the replica. */
export async function replicaSummaries(
  q: Queryable,
  host: string,
  port: number,
  backupIds: readonly string[],
): Promise<Map<string, StatusCounts>> {
  const found = new Map<string, StatusCounts>();
  if (backupIds.length === 0) return found;
  const rows = (await q.query(
    `SELECT BackupId,${counts('1')}
     FROM ${T} WHERE BackupId IN (${backupIds.map(() => '?').join(', ')}) AND Host = ? AND Port = ? GROUP BY BackupId`,
    [...backupIds, host, port],
  )) as Raw[];
  for (const r of rows) found.set(String(r.BackupId), toCounts(r));
  return found;
}
