// Statements of `restore-point`: the commit block on the Spider nodes, the positions read on the
// shard masters while it is held, and the restore point table. One statement per function, fully
// parameterised; identifiers are constants.
import type { Queryable } from '../db/connect.js';
import { RESTORE_POINT_TABLE, SCHEMA } from './ddl.js';
import { tableExists } from './tasks.js';

const T = `${SCHEMA}.${RESTORE_POINT_TABLE}`;

/** How commits are blocked on a Spider node (the bench compares them; see README "Restore points"). */
export type BlockMethod = 'backup-stage' | 'ftwrl';

/** MariaDB: max_statement_time ran out (the acquire timeout). */
export const ER_STATEMENT_TIMEOUT = 1969;
/** Lock wait timeout exceeded. */
export const ER_LOCK_WAIT_TIMEOUT = 1205;
/** Duplicate entry for key: a point of that name exists. */
export const ER_DUP_ENTRY = 1062;

/**
 * Bounds a blocking session: every statement gives up after `statementSeconds` (the acquire
 * timeout; fractions allowed), and the server drops the session, and with it the block, once it
 * has been idle `waitTimeoutSeconds` (a client that vanished without closing its socket).
 */
export async function limitBlockingSession(q: Queryable, statementSeconds: number, waitTimeoutSeconds: number): Promise<void> {
  await q.query('SET SESSION max_statement_time = ?, wait_timeout = ?, lock_wait_timeout = ?', [
    statementSeconds,
    waitTimeoutSeconds,
    Math.max(1, Math.ceil(statementSeconds)),
  ]);
}

export async function spiderInternalXa(q: Queryable): Promise<boolean> {
  const rows = (await q.query('SELECT @@GLOBAL.spider_internal_xa AS x')) as { x: number | string }[];
  return Number(rows[0]?.x ?? 0) === 1;
}

/** The first step of the block: BACKUP STAGE START (blocks nothing yet; one backup stage per server). */
export async function startBackupStage(q: Queryable): Promise<void> {
  await q.query('BACKUP STAGE START');
}

/** Waits for commits in flight to end and blocks new ones until BACKUP STAGE END. */
export async function blockCommitStage(q: Queryable): Promise<void> {
  await q.query('BACKUP STAGE BLOCK_COMMIT');
}

export async function endBackupStage(q: Queryable): Promise<void> {
  await q.query('BACKUP STAGE END');
}

/** The older alternative the bench measures; not used by default (README: why). */
export async function flushTablesWithReadLock(q: Queryable): Promise<void> {
  await q.query('FLUSH TABLES WITH READ LOCK');
}

export async function unlockTables(q: Queryable): Promise<void> {
  await q.query('UNLOCK TABLES');
}

export async function binlogGtidPos(q: Queryable): Promise<string> {
  const rows = (await q.query('SELECT @@GLOBAL.gtid_binlog_pos AS g')) as { g: string | null }[];
  return rows[0]?.g ?? '';
}

export interface PreparedXa {
  formatId: number;
  data: string;
}

/** XA transactions prepared (and neither committed nor rolled back) on this server. */
export async function xaRecover(q: Queryable): Promise<PreparedXa[]> {
  const rows = (await q.query('XA RECOVER')) as { formatID: number | string; data: Buffer | string }[];
  return rows.map((r) => ({ formatId: Number(r.formatID), data: Buffer.isBuffer(r.data) ? r.data.toString('hex') : String(r.data) }));
}

/** The XIDs prepared on this server as mariadb-binlog prints them: X'<gtrid hex>',X'<bqual hex>',<formatID>. */
export async function preparedXids(q: Queryable): Promise<string[]> {
  const rows = (await q.query('XA RECOVER')) as {
    formatID: number | string;
    gtrid_length: number | string;
    bqual_length: number | string;
    data: Buffer | string;
  }[];
  return rows.map((r) => {
    const d = Buffer.isBuffer(r.data) ? r.data : Buffer.from(String(r.data), 'latin1');
    const g = Number(r.gtrid_length);
    return `X'${d.subarray(0, g).toString('hex')}',X'${d.subarray(g, g + Number(r.bqual_length)).toString('hex')}',${Number(r.formatID)}`;
  });
}

/** The database clock, to the millisecond ('YYYY-MM-DD HH:MM:SS.mmm'). */
export async function databaseNow(q: Queryable): Promise<string> {
  const rows = (await q.query('SELECT NOW(3) AS t')) as { t: string }[];
  return String(rows[0]?.t ?? '');
}

export const restorePointTableExists = (q: Queryable): Promise<boolean> => tableExists(q, RESTORE_POINT_TABLE);

export interface RestorePointRow {
  name: string;
  shardValue: number;
  serverName: string;
  host: string;
  port: number;
  gtid: string;
  shards: number;
  takenAt: string;
  pauseMs: number;
  acquireMs: number;
  holdMs: number;
  spiderNodes: number;
  internalXa: boolean;
  status: PointStatus;
}

/** 'opted-out': a backup scheduled with --no-restore-point; its rows hold no position. */
export type PointStatus = 'taken' | 'opted-out';

const COLUMNS =
  'Name, ShardValue, ServerName, Host, Port, Gtid, Shards, TakenAt, PauseMs, AcquireMs, HoldMs, SpiderNodes, InternalXa, Status';

/** All shards' rows of one point in one statement: through Spider it is one transaction over the shards. */
export async function insertRestorePoint(q: Queryable, rows: readonly RestorePointRow[]): Promise<void> {
  if (rows.length === 0) return;
  const one = `(${COLUMNS.split(',')
    .map(() => '?')
    .join(', ')})`;
  const params = rows.flatMap((r) => [
    r.name,
    r.shardValue,
    r.serverName,
    r.host,
    r.port,
    r.gtid,
    r.shards,
    r.takenAt,
    r.pauseMs,
    r.acquireMs,
    r.holdMs,
    r.spiderNodes,
    r.internalXa ? 1 : 0,
    r.status,
  ]);
  await q.query(`INSERT INTO ${T} (${COLUMNS}) VALUES ${rows.map(() => one).join(', ')}`, params);
}

interface RawRow {
  Name: string;
  ShardValue: number | string;
  ServerName: string;
  Host: string;
  Port: number | string;
  Gtid: string;
  Shards: number | string;
  TakenAt: string;
  PauseMs: number | string;
  AcquireMs: number | string;
  HoldMs: number | string;
  SpiderNodes: number | string;
  InternalXa: number | string;
  Status: string;
}

function fromRaw(r: RawRow): RestorePointRow {
  return {
    name: r.Name,
    shardValue: Number(r.ShardValue),
    serverName: r.ServerName,
    host: r.Host,
    port: Number(r.Port),
    gtid: r.Gtid,
    shards: Number(r.Shards),
    takenAt: String(r.TakenAt),
    pauseMs: Number(r.PauseMs),
    acquireMs: Number(r.AcquireMs),
    holdMs: Number(r.HoldMs),
    spiderNodes: Number(r.SpiderNodes),
    internalXa: Number(r.InternalXa) === 1,
    status: r.Status === 'opted-out' ? 'opted-out' : 'taken',
  };
}

/** Every row of every point, newest first. */
export async function listRestorePointRows(q: Queryable): Promise<RestorePointRow[]> {
  const rows = (await q.query(`SELECT ${COLUMNS} FROM ${T} ORDER BY TakenAt DESC, Name, ShardValue`)) as RawRow[];
  return rows.map(fromRaw);
}

/** The rows of the points of these names (one statement; none for no name). */
export async function restorePointRowsOf(q: Queryable, names: readonly string[]): Promise<RestorePointRow[]> {
  if (names.length === 0) return [];
  const rows = (await q.query(`SELECT ${COLUMNS} FROM ${T} WHERE Name IN (${names.map(() => '?').join(', ')}) ORDER BY Name, ShardValue`, [
    ...names,
  ])) as RawRow[];
  return rows.map(fromRaw);
}

/** The rows of one point. */
export async function restorePointRows(q: Queryable, name: string): Promise<RestorePointRow[]> {
  const rows = (await q.query(`SELECT ${COLUMNS} FROM ${T} WHERE Name = ? ORDER BY ShardValue`, [name])) as RawRow[];
  return rows.map(fromRaw);
}

/**
 * Removes a point's rows (`expire`: the point went with its base backup). Through the Spider
 * node the rows go from their shard masters, and from the replicas by replication.
 */
export async function deleteRestorePoint(q: Queryable, name: string): Promise<number> {
  const res = (await q.query(`DELETE FROM ${T} WHERE Name = ?`, [name])) as { affectedRows?: number };
  return Number(res.affectedRows ?? 0);
}

export interface LockHolder {
  id: number;
  user: string;
  host: string;
  command: string;
  timeS: number;
  info: string | null;
}

/**
 * Sessions waiting for the global read lock or the backup lock (a session holding FLUSH TABLES
 * WITH READ LOCK or a backup stage keeps them waiting). Needs PROCESS to see other users' sessions.
 */
export async function globalReadLockWaiters(q: Queryable): Promise<number> {
  const rows = (await q.query(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE IN ('Waiting for global read lock', 'Waiting for backup lock')",
  )) as { n: number | string }[];
  return Number(rows[0]?.n ?? 0);
}

/**
 * Who holds the global read lock (FTWRL) or a backup stage, from the metadata_lock_info plugin's
 * table joined to the processlist; the statement fails where the plugin is not installed.
 */
export async function globalReadLockHolders(q: Queryable): Promise<LockHolder[]> {
  const rows = (await q.query(
    'SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, p.TIME AS timeS, p.INFO AS info ' +
      'FROM information_schema.METADATA_LOCK_INFO m JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID ' +
      "WHERE m.LOCK_TYPE = 'Backup lock' AND m.LOCK_MODE IN ('MDL_BACKUP_FTWRL1', 'MDL_BACKUP_FTWRL2', 'MDL_BACKUP_BLOCK_DDL', 'MDL_BACKUP_WAIT_COMMIT') " +
      'AND p.ID <> CONNECTION_ID() ORDER BY p.ID',
  )) as { id: number; user: string; host: string; command: string; timeS: number | string; info: string | null }[];
  return rows.map((r) => ({ ...r, id: Number(r.id), timeS: Number(r.timeS) }));
}
