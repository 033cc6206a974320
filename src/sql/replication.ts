// A replica's own view of its replication: the threads and the lag (SHOW SLAVE STATUS). Needs
// REPLICATION CLIENT (SLAVE MONITOR on MariaDB >= 10.5); callers report a refusal as a problem.
import type { Queryable } from '../db/connect.js';

export interface ReplicationStatus {
  ioRunning: string;
  sqlRunning: string;
  /** null when the server does not know (a thread stopped). */
  lagS: number | null;
  ioError: string;
  sqlError: string;
  sqlErrno: number;
}

export const SHOW_SLAVE_STATUS = 'SHOW SLAVE STATUS';

/** undefined: the instance replicates from nobody. */
export async function replicationStatus(q: Queryable): Promise<ReplicationStatus | undefined> {
  return toReplicationStatus((await q.query(SHOW_SLAVE_STATUS)) as Record<string, unknown>[]);
}

/** The rows of SHOW SLAVE STATUS as a ReplicationStatus (undefined: none). */
export function toReplicationStatus(rows: readonly Record<string, unknown>[]): ReplicationStatus | undefined {
  const r = rows[0];
  if (!r) return undefined;
  const lag = r.Seconds_Behind_Master;
  return {
    ioRunning: String(r.Slave_IO_Running ?? ''),
    sqlRunning: String(r.Slave_SQL_Running ?? ''),
    lagS: lag === null || lag === undefined ? null : Number(lag),
    ioError: String(r.Last_IO_Error ?? ''),
    sqlError: String(r.Last_SQL_Error ?? ''),
    sqlErrno: Number(r.Last_SQL_Errno ?? 0),
  };
}
