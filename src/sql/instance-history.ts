// What `status --cluster` reads of one instance's tasks: its running task and its last success,
// in one statement, ages by the database clock.
import type { Queryable } from '../db/connect.js';
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
