// Statements bounding a session's lock waits and naming who holds the locks it waited for. One
// statement per function, parameterised.
import type { Queryable } from '../db/connect.js';

/** Metadata and row lock waits of this session give up after `seconds` (whole seconds: the server's unit). */
export async function limitLockWaits(q: Queryable, seconds: number): Promise<void> {
  await q.query('SET SESSION lock_wait_timeout = ?, innodb_lock_wait_timeout = ?', [seconds, seconds]);
}

export interface MetadataLockHolder {
  id: number;
  user: string;
  host: string;
  command: string;
  timeS: number;
  /** MDL_SHARED_NO_READ_WRITE (LOCK TABLES … WRITE), MDL_EXCLUSIVE (a DDL), MDL_BACKUP_FTWRL2 … */
  mode: string;
  /** "schema.table", or "" for the global read lock and backup stages. */
  object: string;
}

/**
 * Other sessions holding a metadata lock that keeps reads or writes waiting: LOCK TABLES, a DDL,
 * FLUSH TABLES WITH READ LOCK or a backup stage. From the metadata_lock_info plugin's table joined
 * to the processlist: the statement fails where the plugin is not installed, and without PROCESS
 * only this user's sessions are seen.
 */
export async function metadataLockHolders(q: Queryable): Promise<MetadataLockHolder[]> {
  const rows = (await q.query(
    'SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, p.TIME AS timeS, m.LOCK_MODE AS mode, ' +
      "CONCAT_WS('.', NULLIF(m.TABLE_SCHEMA, ''), NULLIF(m.TABLE_NAME, '')) AS object " +
      'FROM information_schema.METADATA_LOCK_INFO m JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID ' +
      "WHERE m.LOCK_MODE IN ('MDL_SHARED_NO_READ_WRITE', 'MDL_SHARED_READ_ONLY', 'MDL_SHARED_NO_WRITE', 'MDL_EXCLUSIVE', " +
      "'MDL_BACKUP_FTWRL1', 'MDL_BACKUP_FTWRL2', 'MDL_BACKUP_BLOCK_DDL', 'MDL_BACKUP_WAIT_COMMIT') " +
      'AND p.ID <> CONNECTION_ID() ORDER BY p.ID, m.LOCK_MODE',
  )) as { id: number | string; user: string; host: string; command: string; timeS: number | string; mode: string; object: string | null }[];
  return rows.map((r) => ({ ...r, id: Number(r.id), timeS: Number(r.timeS), object: r.object ?? '' }));
}
