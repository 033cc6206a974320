// Deleting rows over the retention age (SPEC §3): on masters and slaves, never on spider nodes,
// with binary logging off for the session so each replica keeps its own history. In bounded
// batches, so a large backlog never holds long locks; separate from housekeeping, so a user that
// may not purge still gets its backups.
import type { Logger } from 'pino';
import { isNoSuchTable, type Connection } from '../db/connect.js';
import { deleteOldCancels } from '../sql/cancel.js';
import * as sql from '../sql/tasks.js';
import { LIMITS } from '../task/task.js';

export const PURGE = { batchRows: 1000, pauseMs: 100, maxBatches: 100, everyMs: 3_600_000 } as const;

export async function purgeOld(conn: Connection, logger: Logger): Promise<number> {
  // Without sql_log_bin = 0 the deletes would replicate and wipe the replicas' own history.
  await sql.setSqlLogBin(conn, false);
  let total = 0;
  let cancels = 0;
  try {
    for (let batch = 0; batch < PURGE.maxBatches; batch++) {
      const n = await sql.deleteOldTasks(conn, LIMITS.retentionDays, PURGE.batchRows);
      total += n;
      if (n < PURGE.batchRows) break;
      await new Promise((r) => setTimeout(r, PURGE.pauseMs));
    }
    cancels = await purgeCancels(conn);
  } finally {
    await sql.setSqlLogBin(conn, true);
  }
  if (total > 0) logger.info({ deleted: total }, `deleted tasks older than ${LIMITS.retentionDays} days (not binlogged)`);
  if (cancels > 0) logger.info({ deleted: cancels }, `deleted cancel records older than ${LIMITS.retentionDays} days (not binlogged)`);
  return total;
}

/** Cancel records (`spiderbackup cancel`) over the same age; an instance never cancelled has no table. */
async function purgeCancels(conn: Connection): Promise<number> {
  let total = 0;
  try {
    for (let batch = 0; batch < PURGE.maxBatches; batch++) {
      const n = await deleteOldCancels(conn, LIMITS.retentionDays, PURGE.batchRows);
      total += n;
      if (n < PURGE.batchRows) break;
      await new Promise((r) => setTimeout(r, PURGE.pauseMs));
    }
  } catch (err) {
    if (!isNoSuchTable(err)) throw err;
  }
  return total;
}
