// `query` (SPEC §3): every task as the spider master sees it — spider and shard masters through
// the Spider table (away from the primary: on each shard master, shard-tables.ts), replicas read
// on the replicas — newest first.
import type { AgentConfig } from '../config/agent.js';
import { errorMessage } from '../errors.js';
import * as sql from '../sql/tasks.js';
import { validateBackupId } from '../task/backup-id.js';
import { readSlaveTasks } from './reach.js';
import type { ClusterSession } from './session.js';
import { failures, shardTablesOf } from './shard-tables.js';
import { statusClass } from '../task/status.js';
import type { TaskRow } from '../task/task.js';

export interface QueryOptions {
  backupId?: string;
  /** Status classes: `failed` matches `failed: timeout`. */
  statuses?: string[];
}

export interface QueryResult {
  tasks: TaskRow[];
  /** What could not be read, each naming the instance and the server's error: the tasks are then partial. */
  errors: string[];
  /** The instances of `errors` by name ("SPT_SLAVE0 host:port"): what the tasks lack. */
  unread: string[];
}

/** Any spider node. Each replica is read on a connection of its own, closed once read. */
export async function queryTasks(config: AgentConfig, session: ClusterSession, opts: QueryOptions): Promise<QueryResult> {
  const backupId = opts.backupId === undefined ? undefined : validateBackupId(opts.backupId, '--BackupId');
  const tables = await shardTablesOf(session, config.schedule.waitConcurrency);
  const errors: string[] = [];
  const unread: string[] = [];
  const slaves = tables.servers.filter((s) => s.wrapper.toLowerCase() === 'mysql_slave');
  const [parts, slaveSide] = await Promise.all([
    tables.each((c) => sql.listTasks(c, { backupId })),
    readSlaveTasks(slaves, backupId, config.schedule.waitConcurrency, session.connectOptions),
  ]);
  for (const f of failures(parts)) {
    errors.push(`${f.part.name}: ${errorMessage(f.error)}`);
    unread.push(f.part.name);
  }
  const listed = parts.flatMap((p) => p.value ?? []);
  // A replica's own row is read on the replica; its master-side copy only says that it has one.
  const masterSide = listed.filter((t) => t.wrapper.toLowerCase() !== 'mysql_slave');
  const copies = new Set(listed.filter((t) => t.wrapper.toLowerCase() === 'mysql_slave').map((t) => `${t.host}:${t.port}`));
  for (const s of slaveSide) {
    const at = `${s.server.host}:${s.server.port}`;
    const why = s.error ?? (s.noTable !== undefined && copies.has(at) ? s.noTable : undefined);
    if (why === undefined) continue;
    errors.push(`${s.server.serverName} ${at}: ${why}`);
    unread.push(`${s.server.serverName} ${at}`);
  }
  const wanted = opts.statuses?.map((s) => s.trim()).filter((s) => s !== '');
  const tasks = [...masterSide, ...slaveSide.flatMap((s) => s.tasks)]
    .filter((t) => !wanted || wanted.length === 0 || wanted.includes(statusClass(t.status)))
    // By the creation time as stored, newest first (as listTasks orders): ages are read at different
    // moments on different instances, so two rows of one second could differ by one and swap.
    .sort(
      (a, b) =>
        (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0) ||
        a.backupId.localeCompare(b.backupId) ||
        a.shardValue - b.shardValue ||
        a.port - b.port,
    );
  return { tasks, errors, unread };
}
