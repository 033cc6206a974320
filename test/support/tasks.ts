// Writing and reading task rows the way the platform does: through the Spider table of the spider
// node, so rows land on the master of their shard and reach its replica by replication. Also the
// other rows tests write by hand (cancel records), built the same way.
import type { Cluster, Instance } from '../../src/sandbox/cluster.js';

/** What a row says about the instance it is for: a cluster instance, or a made-up one (a marker row). */
export type RowTarget = Pick<Instance, 'role' | 'host' | 'port' | 'shardValue'>;

export interface NewTask {
  backupId: string;
  /** The instance the task is for (its Host/Port). */
  for: RowTarget;
  status?: string;
  taskPid?: number;
  /** ServerName; default the one the platform gives `for` (SPT<shard>, SPT_SLAVE<shard>, SPIDER0). */
  serverName?: string;
  /** Age of CreatedAt / UpdatedAt in seconds, by the database clock. */
  createdAgoS?: number;
  updatedAgoS?: number;
}

export interface WriteOptions {
  /** Where to write: default the spider node, whose Spider table routes each row to its shard master. */
  on?: Instance;
}

const wrapperOf = (i: RowTarget) => (i.role === 'spider' ? 'SPIDER' : i.role === 'slave' ? 'mysql_slave' : 'mysql');
const serverNameOf = (i: RowTarget) =>
  i.role === 'spider' ? 'SPIDER0' : i.role === 'slave' ? `SPT_SLAVE${i.shardValue}` : `SPT${i.shardValue}`;
const defaultStatus = (i: RowTarget) => (i.role === 'slave' ? 'replicated' : 'init');

/** Writes the task rows (on the spider node unless `on` says otherwise), then waits for every replica. */
export async function insertTasks(cluster: Cluster, tasks: NewTask[], opts: WriteOptions = {}): Promise<void> {
  for (const t of tasks) {
    const shard = t.for.role === 'spider' ? 0 : t.for.shardValue;
    await cluster.exec(
      opts.on ?? cluster.spider,
      `INSERT INTO infodba_schema.global_backup (ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, ` +
        `CreatedAt, UpdatedAt)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, NOW() - INTERVAL ? SECOND, NOW() - INTERVAL ? SECOND)`,
      [
        t.serverName ?? serverNameOf(t.for),
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

export interface NewCancel {
  backupId: string;
  /** The instance whose task was cancelled (its Host/Port). */
  for: RowTarget;
  /** CancelledBy; default 'op@h'. */
  by?: string;
  /** Age of CancelledAt in seconds, by the database clock. */
  agoS?: number;
}

/** Writes cancel records (spiderbackup_cancel, which must exist) on `on`, then waits for every replica. */
export async function insertCancels(cluster: Cluster, on: Instance, cancels: NewCancel[]): Promise<void> {
  for (const c of cancels) {
    await cluster.exec(
      on,
      'INSERT INTO infodba_schema.spiderbackup_cancel (BackupId, Host, Port, CancelledBy, CancelledAt) ' +
        'VALUES (?, ?, ?, ?, NOW() - INTERVAL ? SECOND)',
      [c.backupId, c.for.host, c.for.port, c.by ?? 'op@h', c.agoS ?? 0],
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
