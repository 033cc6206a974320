// What a built-in runner asks the instance before a backup, and the table checksums the restore
// test compares. Identifiers in CHECKSUM TABLE cannot be parameters: they come from
// information_schema and are quoted by quoteIdentifier, never pasted as they are.
import type { Queryable } from '../db/connect.js';

export interface SourceInfo {
  datadir: string;
  version: string;
  logBin: boolean;
  /** SHOW SLAVE STATUS returned a row; undefined when the user may not ask. */
  replica: boolean | undefined;
}

export async function sourceInfo(c: Queryable): Promise<SourceInfo> {
  const rows = (await c.query('SELECT @@datadir AS datadir, @@version AS version, @@log_bin AS logBin')) as {
    datadir: string;
    version: string;
    logBin: number | string;
  }[];
  const r = rows[0] as { datadir: string; version: string; logBin: number | string };
  return { datadir: r.datadir, version: r.version, logBin: Number(r.logBin) === 1, replica: await isReplica(c) };
}

/** SHOW SLAVE STATUS needs SLAVE MONITOR: without it, undefined (the caller goes by the task's role). */
async function isReplica(c: Queryable): Promise<boolean | undefined> {
  try {
    return ((await c.query('SHOW SLAVE STATUS')) as unknown[]).length > 0;
  } catch {
    return undefined;
  }
}

/**
 * `schema.table` of every Spider table: their data lives on the shards, which have their own
 * backups, so a dump of a spider node takes only their definitions.
 */
export async function spiderTables(c: Queryable): Promise<string[]> {
  const rows = (await c.query(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE ENGINE = 'SPIDER' ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  )) as { s: string; t: string }[];
  return rows.map((r) => `${r.s}.${r.t}`);
}

/** Schemas that are the server's own, or spiderbackup's bookkeeping (changed by the backup itself). */
export const NOT_COMPARED = ['mysql', 'information_schema', 'performance_schema', 'sys', 'infodba_schema'];

export interface TableName {
  schema: string;
  table: string;
}

export async function userTables(c: Queryable): Promise<TableName[]> {
  const rows = (await c.query(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES
     WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    [NOT_COMPARED],
  )) as { s: string; t: string }[];
  return rows.map((r) => ({ schema: r.s, table: r.t }));
}

export const quoteIdentifier = (name: string): string => `\`${name.replace(/`/g, '``')}\``;

/** CHECKSUM TABLE of one table; null when the server cannot compute it. */
export async function checksumTable(c: Queryable, t: TableName): Promise<string | null> {
  const rows = (await c.query(`CHECKSUM TABLE ${quoteIdentifier(t.schema)}.${quoteIdentifier(t.table)}`)) as {
    Checksum: number | string | null;
  }[];
  const v = rows[0]?.Checksum;
  return v === null || v === undefined ? null : String(v);
}
