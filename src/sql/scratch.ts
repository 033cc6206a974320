// The statements of the restore drill on its scratch instances (src/daemon/drill.ts): the check
// value read through the restored spider node, and the wipe after a drill. The wipe runs without
// binlog (a replica wipes its own copy; nothing reaches another server) and keeps the system
// schemas and infodba_schema, which the target's own agent writes.
import mysql from 'mysql2';
import type { Queryable } from '../db/connect.js';

/** Schemas a wipe never drops: the server's own and the agent's. */
export const KEPT_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys', 'infodba_schema'] as const;

/** Every schema a wipe would drop, by name. */
export async function userSchemas(q: Queryable): Promise<string[]> {
  const rows = (await q.query(
    `SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (${KEPT_SCHEMAS.map(() => '?').join(', ')}) ORDER BY SCHEMA_NAME`,
    [...KEPT_SCHEMAS],
  )) as { name: string }[];
  return rows.map((r) => String(r.name));
}

/** This session's statements stay out of the binlog. */
export async function skipBinlog(q: Queryable): Promise<void> {
  await q.query('SET SESSION sql_log_bin = 0');
}

/** DROP DATABASE cannot take `?`: the name is quoted by mysql2's own escaping. */
export async function dropSchema(q: Queryable, name: string): Promise<void> {
  await q.query(mysql.format('DROP DATABASE IF EXISTS ??', [name]));
}

/**
 * The operator's check_sql, as written in their own config: the first column of its first row,
 * as text (NULL: null); undefined when it returned no row.
 */
export async function firstValue(q: Queryable, sql: string): Promise<string | null | undefined> {
  const rows = (await q.query(sql)) as unknown;
  if (!Array.isArray(rows) || rows.length === 0) return undefined;
  const row = rows[0] as Record<string, unknown> | undefined;
  if (row === null || typeof row !== 'object') return undefined;
  const value = Object.values(row)[0];
  if (value === null || value === undefined) return null;
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}
