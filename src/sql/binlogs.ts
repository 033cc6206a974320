// A server's binary log inventory: the files it still has and the GTID state each starts at.
import type { Queryable } from '../db/connect.js';

export async function listBinaryLogs(q: Queryable): Promise<string[]> {
  const rows = (await q.query('SHOW BINARY LOGS')) as { Log_name: string }[];
  return rows.map((r) => r.Log_name);
}

/** The Gtid_list event at the start of `file` ('[0-1-42]'), '' when it has none. */
export async function binlogStartGtid(q: Queryable, file: string): Promise<string> {
  const rows = (await q.query('SHOW BINLOG EVENTS IN ? LIMIT 4', [file])) as { Event_type: string; Info: string }[];
  return rows.find((r) => r.Event_type === 'Gtid_list')?.Info ?? '';
}

/** The GTID position at a binlog file/offset of this server; '' when the file is gone (NULL). */
export async function binlogGtidPosAt(q: Queryable, file: string, pos: number): Promise<string> {
  const rows = (await q.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [file, pos])) as { g: string | null }[];
  return rows[0]?.g ?? '';
}
