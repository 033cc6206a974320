// Statements of a whole-cluster restore on its target instance (src/recovery/): the empty check
// and the scratch wipe, the agent's own login kept across a load that replaces mysql.*, the
// source's task rows removed, the GTID state set, the replica linked to its new master, the spider
// node's routes. One statement per function; DDL and CHANGE MASTER, which take no `?`, are built
// with mysql2's format/escapeId.
import mysql from 'mysql2';
import type { Queryable } from '../db/connect.js';
import { errnoOf } from '../db/connect.js';
import { PRESENCE_TABLE, SCHEMA, TABLE } from './ddl.js';

/** Schemas an empty target may hold: the system ones and the agent's own. */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys', SCHEMA] as const;

const ER_NO_SUCH_TABLE = 1146;
const ER_BAD_DB = 1049;

/** The schemas besides SYSTEM_SCHEMAS, by name. */
export async function userSchemas(q: Queryable): Promise<string[]> {
  const rows = (await q.query(
    `SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (${SYSTEM_SCHEMAS.map(() => '?').join(', ')}) ORDER BY SCHEMA_NAME`,
    [...SYSTEM_SCHEMAS],
  )) as { name: string }[];
  return rows.map((r) => r.name);
}

export async function dropSchema(q: Queryable, name: string): Promise<void> {
  await q.query(mysql.format('DROP DATABASE IF EXISTS ??', [name]));
}

export async function stopSlave(q: Queryable): Promise<void> {
  await q.query('STOP SLAVE');
}

export async function resetSlaveAll(q: Queryable): Promise<void> {
  await q.query('RESET SLAVE ALL');
}

/** Whether replication is configured (SHOW SLAVE STATUS has a row). */
export async function hasReplication(q: Queryable): Promise<boolean> {
  return ((await q.query('SHOW SLAVE STATUS')) as unknown[]).length > 0;
}

/** `user@host` of this session's account, split. */
export async function currentAccount(q: Queryable): Promise<{ user: string; host: string }> {
  const rows = (await q.query('SELECT CURRENT_USER() AS u')) as { u: string }[];
  const text = rows[0]?.u ?? '';
  const at = text.lastIndexOf('@');
  return { user: text.slice(0, at), host: text.slice(at + 1) };
}

/** The CREATE USER statement of an account as the server prints it (the password as its hash). */
export async function showCreateUser(q: Queryable, a: { user: string; host: string }): Promise<string> {
  const rows = (await q.query('SHOW CREATE USER ?@?', [a.user, a.host])) as Record<string, string>[];
  return Object.values(rows[0] ?? {})[0] ?? '';
}

/** The GRANT statements of an account as the server prints them. */
export async function showGrants(q: Queryable, a: { user: string; host: string }): Promise<string[]> {
  const rows = (await q.query('SHOW GRANTS FOR ?@?', [a.user, a.host])) as Record<string, string>[];
  return rows.map((r) => Object.values(r)[0] ?? '').filter((s) => s !== '');
}

export async function dropUserIfExists(q: Queryable, a: { user: string; host: string }): Promise<void> {
  await q.query('DROP USER IF EXISTS ?@?', [a.user, a.host]);
}

/** A statement the server printed itself (SHOW CREATE USER / SHOW GRANTS), run back as it was. */
export async function runServerStatement(q: Queryable, statement: string): Promise<void> {
  await q.query(statement);
}

export async function flushPrivileges(q: Queryable): Promise<void> {
  await q.query('FLUSH PRIVILEGES');
}

/** The source's backup tasks on a shard instance (its local task table); 0 when the table is not there. */
export async function deleteAllTaskRows(q: Queryable): Promise<number> {
  return deleteIgnoringMissing(q, `DELETE FROM ${SCHEMA}.${TABLE}`, []);
}

/** Presence rows of every agent but the one serving `host:port` (those of the source's agents). */
export async function deleteOtherPresence(q: Queryable, host: string, port: number): Promise<number> {
  return deleteIgnoringMissing(q, `DELETE FROM ${SCHEMA}.${PRESENCE_TABLE} WHERE NOT (Host = ? AND Port = ?)`, [host, port]);
}

async function deleteIgnoringMissing(q: Queryable, sql: string, params: unknown[]): Promise<number> {
  try {
    const res = (await q.query(sql, params)) as { affectedRows?: number };
    return res.affectedRows ?? 0;
  } catch (err) {
    const n = errnoOf(err);
    if (n === ER_NO_SUCH_TABLE || n === ER_BAD_DB) return 0;
    throw err;
  }
}

export async function resetMaster(q: Queryable): Promise<void> {
  await q.query('RESET MASTER');
}

/** Only on an empty binlog (after RESET MASTER): its Gtid_list then starts at `gtid`. */
export async function setGtidBinlogState(q: Queryable, gtid: string): Promise<void> {
  await q.query('SET GLOBAL gtid_binlog_state = ?', [gtid]);
}

export async function setGtidSlavePos(q: Queryable, gtid: string): Promise<void> {
  await q.query('SET GLOBAL gtid_slave_pos = ?', [gtid]);
}

/** A new binlog file, starting (its Gtid_list) at the state reached. */
export async function flushBinaryLogs(q: Queryable): Promise<void> {
  await q.query('FLUSH BINARY LOGS');
}

export async function gtidBinlogPos(q: Queryable): Promise<string> {
  const rows = (await q.query('SELECT @@GLOBAL.gtid_binlog_pos AS g')) as { g: string | null }[];
  return rows[0]?.g ?? '';
}

export async function gtidSlavePos(q: Queryable): Promise<string> {
  const rows = (await q.query('SELECT @@GLOBAL.gtid_slave_pos AS g')) as { g: string | null }[];
  return rows[0]?.g ?? '';
}

/** CHANGE MASTER takes no placeholders: the literals are escaped by mysql2's format. */
export async function changeMasterTo(q: Queryable, m: { host: string; port: number; user: string; password: string }): Promise<void> {
  await q.query(
    mysql.format(
      'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = slave_pos',
      [m.host, m.port, m.user, m.password],
    ),
  );
}

export async function startSlave(q: Queryable): Promise<void> {
  await q.query('START SLAVE');
}

export interface SlaveThreads {
  io: string;
  sql: string;
  ioError: string;
  sqlError: string;
}

export async function slaveThreads(q: Queryable): Promise<SlaveThreads | undefined> {
  const rows = (await q.query('SHOW SLAVE STATUS')) as Record<string, unknown>[];
  const r = rows[0];
  if (!r) return undefined;
  const text = (k: string) => (r[k] === null || r[k] === undefined ? '' : String(r[k]));
  return {
    io: text('Slave_IO_Running'),
    sql: text('Slave_SQL_Running'),
    ioError: text('Last_IO_Errno') !== '0' ? `${text('Last_IO_Errno')} ${text('Last_IO_Error')}` : '',
    sqlError: text('Last_SQL_Errno') !== '0' ? `${text('Last_SQL_Errno')} ${text('Last_SQL_Error')}` : '',
  };
}

export interface ServerDb {
  name: string;
  db: string;
}

/** The Db of each mysql.servers row (kept for a route of the same name). */
export async function serverDatabases(q: Queryable): Promise<ServerDb[]> {
  const rows = (await q.query('SELECT Server_name AS name, Db AS db FROM mysql.servers')) as { name: string; db: string | null }[];
  return rows.map((r) => ({ name: r.name, db: r.db ?? '' }));
}

export async function deleteAllServers(q: Queryable): Promise<void> {
  await q.query('DELETE FROM mysql.servers');
}

/**
 * One route, as CREATE SERVER would store it, written into the table only: the server cache is
 * loaded from the table by the FLUSH PRIVILEGES that follows the whole set, so no statement can
 * route through a half-written set (CREATE SERVER would put each into the cache at once).
 */
export async function insertServer(
  q: Queryable,
  s: { name: string; host: string; port: number; user: string; password: string; wrapper: string; db: string },
): Promise<void> {
  await q.query(
    "INSERT INTO mysql.servers (Server_name, Host, Db, Username, Password, Port, Socket, Wrapper, Owner) VALUES (?, ?, ?, ?, ?, ?, '', ?, '')",
    [s.name, s.host, s.db, s.user, s.password, s.port, s.wrapper],
  );
}

export async function flushTables(q: Queryable): Promise<void> {
  await q.query('FLUSH TABLES');
}

export interface SpiderPart {
  schema: string;
  table: string;
  /** null for a table without partitions. */
  partition: string | null;
}

/** Every Spider table, partition by partition (each partition is one route). */
export async function spiderTableParts(q: Queryable): Promise<SpiderPart[]> {
  const rows = (await q.query(
    `SELECT p.TABLE_SCHEMA AS s, p.TABLE_NAME AS t, p.PARTITION_NAME AS p FROM information_schema.PARTITIONS p
       JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = p.TABLE_SCHEMA AND t.TABLE_NAME = p.TABLE_NAME
      WHERE t.ENGINE = 'SPIDER' ORDER BY p.TABLE_SCHEMA, p.TABLE_NAME, p.PARTITION_ORDINAL_POSITION`,
  )) as { s: string; t: string; p: string | null }[];
  return rows.map((r) => ({ schema: r.s, table: r.t, partition: r.p }));
}

/** One row through one route of a Spider table (a partition, or the whole table). */
export async function probeSpiderPart(q: Queryable, t: SpiderPart): Promise<void> {
  await q.query(
    t.partition === null
      ? mysql.format('SELECT 1 FROM ??.?? LIMIT 1', [t.schema, t.table])
      : mysql.format('SELECT 1 FROM ??.?? PARTITION (??) LIMIT 1', [t.schema, t.table, t.partition]),
  );
}

export async function serverHosts(q: Queryable): Promise<{ name: string; host: string; port: number }[]> {
  const rows = (await q.query('SELECT Server_name AS name, Host AS host, Port AS port FROM mysql.servers ORDER BY Server_name')) as {
    name: string;
    host: string;
    port: number | string;
  }[];
  return rows.map((r) => ({ name: r.name, host: r.host, port: Number(r.port) }));
}

/** Where the instance keeps its data (a physical restore replaces what is in it). */
export async function datadirOf(q: Queryable): Promise<string> {
  const rows = (await q.query('SELECT @@GLOBAL.datadir AS d')) as { d: string }[];
  return rows[0]?.d ?? '';
}
