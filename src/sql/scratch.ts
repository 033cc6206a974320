// The statement of the restore drill on its restored spider node (src/daemon/drill.ts): the check
// value. The wipe after a drill uses the restore's own statements (sql/recovery.ts userSchemas,
// dropSchema), as a scratch target's wipe before a restore does.
import type { Queryable } from '../db/connect.js';

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
