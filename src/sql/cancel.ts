// Statements on the cancel records (ddl.ts createCancelTable), one function each, parameterised.
// CancelledAt is the database clock's.
import type { Queryable } from '../db/connect.js';
import { CANCEL_TABLE, SCHEMA } from './ddl.js';

const C = `${SCHEMA}.${CANCEL_TABLE}`;

/** Records a cancel for the instance (host, port); a second cancel keeps the first record. */
export async function insertCancel(q: Queryable, backupId: string, host: string, port: number, by: string): Promise<void> {
  await q.query(
    `INSERT INTO ${C} (BackupId, Host, Port, CancelledBy, CancelledAt) VALUES (?, ?, ?, ?, NOW()) ON DUPLICATE KEY UPDATE BackupId = BackupId`,
    [backupId, host, port, by.slice(0, 255)],
  );
}

/** Whether any cancel record of the backup id is in this instance's table (its own or a replicated one). */
export async function isCancelled(q: Queryable, backupId: string): Promise<boolean> {
  const rows = (await q.query(`SELECT 1 AS x FROM ${C} WHERE BackupId = ? LIMIT 1`, [backupId])) as unknown[];
  return rows.length > 0;
}

export interface CancelRecord {
  backupId: string;
  by: string;
  at: string;
}

/** The earliest cancel record of each of these backup ids in this instance's table. */
export async function readCancels(q: Queryable, backupIds: readonly string[]): Promise<Map<string, CancelRecord>> {
  const found = new Map<string, CancelRecord>();
  if (backupIds.length === 0) return found;
  const rows = (await q.query(
    `SELECT BackupId, CancelledBy, CancelledAt FROM ${C} WHERE BackupId IN (${backupIds.map(() => '?').join(', ')}) ORDER BY CancelledAt, Host, Port`,
    [...backupIds],
  )) as { BackupId: string; CancelledBy: string; CancelledAt: string }[];
  for (const r of rows) if (!found.has(r.BackupId)) found.set(r.BackupId, { backupId: r.BackupId, by: r.CancelledBy, at: r.CancelledAt });
  return found;
}

/**
 * Deletes up to `limit` cancel records older than `days` by the database clock. As for the tasks,
 * the caller turns off binary logging for the session first (each instance purges its own table).
 */
export async function deleteOldCancels(q: Queryable, days: number, limit: number): Promise<number> {
  const res = await q.query(`DELETE FROM ${C} WHERE CancelledAt < NOW() - INTERVAL ? DAY LIMIT ?`, [days, limit]);
  return Number((res as { affectedRows?: number }).affectedRows ?? 0);
}
