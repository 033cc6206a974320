// What the binlog archiver asks a shard master (README "Binlog archive"): whether it is a master
// now by its own state, its binlog position and purge policy. One statement per function.
import type { Queryable } from '../db/connect.js';

export interface BinlogRole {
  logBin: boolean;
  readOnly: boolean;
  serverId: number;
}

export async function binlogRole(q: Queryable): Promise<BinlogRole> {
  const rows = (await q.query('SELECT @@GLOBAL.log_bin AS logBin, @@GLOBAL.read_only AS readOnly, @@GLOBAL.server_id AS serverId')) as {
    logBin: number | string;
    readOnly: number | string;
    serverId: number | string;
  }[];
  const r = rows[0];
  return { logBin: Number(r?.logBin) === 1, readOnly: Number(r?.readOnly) === 1, serverId: Number(r?.serverId ?? 0) };
}

/** How many replication connections are configured (SHOW ALL SLAVES STATUS; needs SLAVE MONITOR). */
export async function replicationConnections(q: Queryable): Promise<number> {
  const rows = (await q.query('SHOW ALL SLAVES STATUS')) as unknown[];
  return rows.length;
}

export interface BinlogPosition {
  /** @@gtid_binlog_pos: the last GTID per domain in this server's binary log. */
  pos: string;
  /** The purge policy in seconds (binlog_expire_logs_seconds, which expire_logs_days also sets); 0: none. */
  expireS: number;
}

export async function binlogPosition(q: Queryable): Promise<BinlogPosition> {
  const rows = (await q.query(
    'SELECT @@GLOBAL.gtid_binlog_pos AS pos, @@GLOBAL.binlog_expire_logs_seconds AS expireS, @@GLOBAL.expire_logs_days AS expireDays',
  )) as { pos: string | null; expireS: number | string | null; expireDays: number | string | null }[];
  const r = rows[0];
  const seconds = Number(r?.expireS ?? 0);
  const days = Number(r?.expireDays ?? 0);
  return { pos: r?.pos ?? '', expireS: seconds > 0 ? seconds : Math.round(days * 86400) };
}
