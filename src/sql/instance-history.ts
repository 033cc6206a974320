// What `status --cluster` reads of one instance's tasks: its running task and its last success,
// in one statement (with the instance's presence, in one statement too), ages by the database clock.
import type { Queryable } from '../db/connect.js';
import { PRESENCE_TABLE, SCHEMA, TABLE } from './ddl.js';
import { isUnknownColumn, PRESENCE_ARCHIVE, PRESENCE_COLUMNS, toPresence, type PresenceRow, type RawPresence } from './presence.js';
import { SHOW_SLAVE_STATUS, toReplicationStatus, type ReplicationStatus } from './replication.js';
import { SELECT_TASK, toTask, type RawRow } from './tasks.js';
import type { TaskRow } from '../task/task.js';

/** A spider node's own rows have ShardValue 0 (SPEC §3): `onlyShard` prunes its Spider table to one shard. */
export async function runningAndLastSuccess(
  q: Queryable,
  host: string,
  port: number,
  onlyShard?: number,
): Promise<{ running: TaskRow[]; lastSuccess: TaskRow | undefined }> {
  const shard = onlyShard === undefined ? '' : ' AND ShardValue = ?';
  const p = onlyShard === undefined ? [host, port] : [host, port, onlyShard];
  const rows = (await q.query(
    `(${SELECT_TASK} WHERE Host = ? AND Port = ?${shard} AND BackupStatus = 'running')
     UNION ALL
     (${SELECT_TASK} WHERE Host = ? AND Port = ?${shard} AND BackupStatus = 'success' ORDER BY UpdatedAt DESC LIMIT 1)`,
    [...p, ...p],
  )) as RawRow[];
  const tasks = rows.map(toTask);
  return { running: tasks.filter((t) => t.status === 'running'), lastSuccess: tasks.find((t) => t.status === 'success') };
}

/** The columns of SELECT_TASK as one JSON object, for a statement that also returns rows of another shape. */
const TASK_JSON = `JSON_OBJECT('ServerName', ServerName, 'Wrapper', Wrapper, 'Host', Host, 'Port', Port, 'ShardValue', ShardValue,
  'BackupId', BackupId, 'BackupStatus', BackupStatus, 'TaskPid', TaskPid, 'CreatedAt', CreatedAt, 'UpdatedAt', UpdatedAt,
  'CreatedAgeS', TIMESTAMPDIFF(SECOND, CreatedAt, NOW()), 'UpdatedAgeS', TIMESTAMPDIFF(SECOND, UpdatedAt, NOW()))`;
const presenceJson = (columns: readonly string[]) => `JSON_OBJECT(${columns.map((c) => `'${c}', ${c}`).join(', ')},
  'AgeS', TIMESTAMPDIFF(SECOND, LastTick, NOW()))`;

export interface PresenceAndTasks {
  presence: PresenceRow | undefined;
  running: TaskRow[];
  lastSuccess: TaskRow | undefined;
}

/**
 * getPresence and runningAndLastSuccess of a shard master or replica in one statement (one round
 * trip instead of two, at a thousand instances). Each row is one JSON object, tagged by its
 * table. Fails as a whole where either table is missing: the caller then reads them one by one.
 */
export async function presenceAndTasks(q: Queryable, host: string, port: number, lockWaitS?: number): Promise<PresenceAndTasks> {
  const rows = await withOlderPresence((columns) => q.query(presenceAndTasksSql(columns, lockWaitS), [host, port, host, port, host, port]));
  return toPresenceAndTasks(rows as TaggedRow[]);
}

/**
 * presenceAndTasks and the replication status of a replica in one round trip: both statements in
 * one request, on a connection opened with `multipleStatements` (db/connect.ts). Fails as a whole
 * where either fails (the caller then reads them one by one, and each says what failed).
 */
export async function presenceTasksAndReplication(
  q: Queryable,
  host: string,
  port: number,
  lockWaitS?: number,
): Promise<PresenceAndTasks & { replication: ReplicationStatus | undefined }> {
  const results = (await withOlderPresence((columns) =>
    q.query(`${presenceAndTasksSql(columns, lockWaitS)}; ${SHOW_SLAVE_STATUS}`, [host, port, host, port, host, port]),
  )) as [TaggedRow[], Record<string, unknown>[]];
  return { ...toPresenceAndTasks(results[0]), replication: toReplicationStatus(results[1]) };
}

type TaggedRow = { Kind: string; Doc: unknown };

/** A presence table of an agent from before the archive columns: read again without them. */
function withOlderPresence(read: (columns: readonly string[]) => Promise<unknown>): Promise<unknown> {
  return read([...PRESENCE_COLUMNS, ...PRESENCE_ARCHIVE]).catch((err: unknown) => {
    if (isUnknownColumn(err)) return read(PRESENCE_COLUMNS);
    throw err;
  });
}

function presenceAndTasksSql(columns: readonly string[], lockWaitS: number | undefined): string {
  // The session's lock-wait bound, carried by the statement itself: on a one-shot connection a
  // separate SET would double its round trips.
  const bound =
    lockWaitS === undefined
      ? ''
      : `SET STATEMENT lock_wait_timeout = ${Math.trunc(lockWaitS)}, innodb_lock_wait_timeout = ${Math.trunc(lockWaitS)} FOR `;
  return `${bound}(SELECT 'presence' AS Kind, ${presenceJson(columns)} AS Doc FROM ${SCHEMA}.${PRESENCE_TABLE} WHERE Host = ? AND Port = ?)
     UNION ALL
     (SELECT 'task', ${TASK_JSON} FROM ${SCHEMA}.${TABLE} WHERE Host = ? AND Port = ? AND BackupStatus = 'running')
     UNION ALL
     (SELECT 'task', ${TASK_JSON} FROM ${SCHEMA}.${TABLE} WHERE Host = ? AND Port = ? AND BackupStatus = 'success'
      ORDER BY UpdatedAt DESC LIMIT 1)`;
}

function toPresenceAndTasks(rows: readonly TaggedRow[]): PresenceAndTasks {
  // The driver parses a column the server marks as JSON (MariaDB's extended metadata) by itself.
  const doc = <T>(d: unknown): T => (typeof d === 'string' ? JSON.parse(d) : d) as T;
  const presence = rows.find((r) => r.Kind === 'presence');
  const tasks = rows.filter((r) => r.Kind === 'task').map((r) => toTask(doc<RawRow>(r.Doc)));
  return {
    presence: presence ? toPresence(doc<RawPresence>(presence.Doc)) : undefined,
    running: tasks.filter((t) => t.status === 'running'),
    lastSuccess: tasks.find((t) => t.status === 'success'),
  };
}
