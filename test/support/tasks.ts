// Writing and reading task rows the way the platform does: through the Spider table of the spider
// node, so rows land on the master of their shard and reach its replica by replication.
import type { Cluster, Instance } from '../../src/sandbox/cluster.js';

export interface NewTask {
  backupId: string;
  /** The instance the task is for (its Host/Port). */
  for: Instance;
  status?: string;
  taskPid?: number;
  /** Age of CreatedAt / UpdatedAt in seconds, by the database clock. */
  createdAgoS?: number;
  updatedAgoS?: number;
}

const wrapperOf = (i: Instance) => (i.role === 'spider' ? 'SPIDER' : i.role === 'slave' ? 'mysql_slave' : 'mysql');
const serverNameOf = (i: Instance) =>
  i.role === 'spider' ? 'SPIDER0' : i.role === 'slave' ? `SPT_SLAVE${i.shardValue}` : `SPT${i.shardValue}`;
const defaultStatus = (i: Instance) => (i.role === 'slave' ? 'replicated' : 'init');

export async function insertTasks(cluster: Cluster, tasks: NewTask[]): Promise<void> {
  for (const t of tasks) {
    const shard = t.for.role === 'spider' ? 0 : t.for.shardValue;
    await cluster.exec(
      cluster.spider,
      `INSERT INTO infodba_schema.global_backup (ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, ` +
        `CreatedAt, UpdatedAt)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, NOW() - INTERVAL ? SECOND, NOW() - INTERVAL ? SECOND)`,
      [
        serverNameOf(t.for),
        wrapperOf(t.for),
        t.for.host,
        t.for.port,
        shard,
        t.backupId,
        t.status ?? defaultStatus(t.for),
        t.taskPid ?? -1,
        t.createdAgoS ?? 0,
        t.updatedAgoS ?? t.createdAgoS ?? 0,
      ],
    );
  }
  await cluster.waitReplicated();
}

export interface Row {
  BackupId: string;
  Host: string;
  Port: number;
  ShardValue: number;
  BackupStatus: string;
  TaskPid: number;
}

/** The task of `inst` for a backup id, as stored on `on` (default: where it lives). */
export async function taskOf(cluster: Cluster, inst: Instance, backupId: string, on?: Instance): Promise<Row | undefined> {
  const where = on ?? (inst.role === 'spider' ? cluster.spider : inst);
  const rows = await cluster.query<Row>(
    where,
    'SELECT BackupId, Host, Port, ShardValue, BackupStatus, TaskPid FROM infodba_schema.global_backup WHERE BackupId = ? AND Port = ?',
    [backupId, inst.port],
  );
  return rows[0];
}

export async function statusOf(cluster: Cluster, inst: Instance, backupId: string, on?: Instance): Promise<string | undefined> {
  return (await taskOf(cluster, inst, backupId, on))?.BackupStatus;
}

/** Empties the table on every master; the deletes replicate to the replicas. */
export async function clearTasks(cluster: Cluster): Promise<void> {
  for (const m of cluster.masters) await cluster.exec(m, 'DELETE FROM infodba_schema.global_backup');
  await cluster.waitReplicated();
}
