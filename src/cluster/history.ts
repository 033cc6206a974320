// `list` (SPEC §5): the history of global backups with one state each, newest first. Counts are
// aggregated by the servers (sql/history.ts): master-side tasks through the Spider node, replica
// tasks on each replica. A backup with a cancel record on the spider node is `cancelled`, never
// `complete`; a task stopped without one (the 12 h expiry, a hand-written quit) makes it `failed`.
import type { AgentConfig } from '../config/agent.js';
import { isNoSuchTable, type Connection } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { readCancels, type CancelRecord } from '../sql/cancel.js';
import { masterSideSummaries, replicaSummaries, type MasterSideSummary, type StatusCounts } from '../sql/history.js';
import { initSpiderReadSession, mapLimited } from './reach.js';
import { restorePointsOf } from './restore-point.js';
import type { RestorePoint } from './restore-point-model.js';
import { endpointOf, type ClusterSession } from './session.js';

export type BackupState = 'running' | 'complete' | 'failed' | 'cancelled' | 'unknown';

export interface TaskCounts {
  total: number;
  success: number;
  failed: number;
  /** Not final yet: waiting, running, or a quit its agent has not carried out. */
  running: number;
  /** Stopped by a cancel of the backup id (without a cancel record, stopped tasks count as failed). */
  cancelled: number;
  /** Replica tasks whose replica could not be read (or whose row has not arrived there). */
  unknown: number;
}

export interface BackupSummary {
  backupId: string;
  state: BackupState;
  createdAt: string;
  /** Latest UpdatedAt once no task is unfinished or unknown. */
  endedAt?: string;
  durationS?: number;
  tasks: TaskCounts;
  cancel?: CancelRecord;
  /** The backup's restore point (named after its id), when one was recorded or opted out of. */
  restorePoint?: RestorePoint;
  /** With a repository: the stored bytes its manifests there list (0: none there). */
  bytes?: number;
}

/** One backup's state from its master-side counts, its replicas' own counts and its cancel record. Pure. */
export function summarize(master: MasterSideSummary, replicas: readonly StatusCounts[], cancel?: CancelRecord): BackupSummary {
  const parts = [master as StatusCounts, ...replicas];
  const sum = (f: (c: StatusCounts) => number) => parts.reduce((n, c) => n + f(c), 0);
  const total = master.tasks + master.replicaTasks;
  const seen = sum((c) => c.tasks);
  const unknown = Math.max(0, total - seen);
  const success = sum((c) => c.success);
  const running = sum((c) => c.unfinished);
  const stopped = sum((c) => c.stopped);
  // Anything else final (`unknown`, odd statuses written by hand) is not a success: failed.
  const otherFinal = Math.max(0, seen - success - running - stopped - sum((c) => c.failed));
  const failed = sum((c) => c.failed) + otherFinal + (cancel ? 0 : stopped);
  const tasks: TaskCounts = { total, success, failed, running, cancelled: cancel ? stopped : 0, unknown };
  let state: BackupState;
  if (cancel) state = 'cancelled';
  else if (running > 0) state = 'running';
  else if (unknown > 0) state = 'unknown';
  else state = success === total ? 'complete' : 'failed';
  const summary: BackupSummary = { backupId: master.backupId, state, createdAt: master.createdAt, tasks, ...(cancel ? { cancel } : {}) };
  if (running === 0 && unknown === 0) {
    const latest = parts.filter((c) => c.tasks > 0).sort((a, b) => a.updatedAgeS - b.updatedAgeS)[0];
    if (latest) {
      summary.endedAt = latest.updatedAt;
      summary.durationS = Math.max(0, master.createdAgeS - latest.updatedAgeS);
    }
  }
  return summary;
}

export interface ListOptions {
  limit: number;
}

export interface ListResult {
  backups: BackupSummary[];
  errors: string[];
}

/** The newest `limit` backups, newest first. Not the primary: NotPrimaryError. */
export async function listBackups(config: AgentConfig, session: ClusterSession, opts: ListOptions): Promise<ListResult> {
  return withCluster(config, session, async (read) => {
    const { summaries, errors } = await read({ limit: opts.limit });
    return { backups: summaries, errors };
  });
}

/** The newest complete backup (every task `success`, no cancel), or undefined. Not the primary: NotPrimaryError. */
export async function latestComplete(config: AgentConfig, session: ClusterSession): Promise<{ backup?: BackupSummary; errors: string[] }> {
  const PAGE = 20;
  return withCluster(config, session, async (read) => {
    for (let offset = 0; ; offset += PAGE) {
      // Only ids whose master side all succeeded; their replicas and cancel records decide.
      const { summaries, errors, candidates } = await read({ limit: PAGE, offset, onlyAllSuccess: true });
      // A replica that cannot be read may hide that a newer backup is complete: no answer then.
      if (errors.length > 0) return { errors };
      const backup = summaries.find((s) => s.state === 'complete');
      if (backup || candidates < PAGE) return { ...(backup ? { backup } : {}), errors };
    }
  });
}

type Read = (q: {
  limit: number;
  offset?: number;
  onlyAllSuccess?: boolean;
}) => Promise<{ summaries: BackupSummary[]; errors: string[]; candidates: number }>;

async function withCluster<R>(config: AgentConfig, session: ClusterSession, fn: (read: Read) => Promise<R>): Promise<R> {
  const servers = await session.primaryServers();
  const replicas = servers.filter((s) => s.wrapper.toLowerCase() === 'mysql_slave');
  const pool = session.connections;
  return fn(async (q) => {
    const errors: string[] = [];
    const spider = <T>(f: (c: Connection) => Promise<T>) => pool.use(session.spider, f, { init: initSpiderReadSession, retry: true });
    let masters: MasterSideSummary[];
    try {
      masters = await spider((c) => masterSideSummaries(c, q));
    } catch (err) {
      if (isNoSuchTable(err)) return { summaries: [], errors, candidates: 0 };
      throw err;
    }
    const ids = masters.map((m) => m.backupId);
    /** Replicas without a task table: no row arrived yet, or the table is gone (told below). */
    const noTable: string[] = [];
    const [cancels, points, perReplica] = await Promise.all([
      spider((c) => readCancels(c, ids)).catch((err: unknown) => {
        if (!isNoSuchTable(err)) errors.push(`spider ${session.spiderName}: cancel records: ${errorMessage(err)}`);
        return new Map<string, CancelRecord>();
      }),
      spider((c) => restorePointsOf(c, ids)).catch((err: unknown) => {
        errors.push(`spider ${session.spiderName}: restore points: ${errorMessage(err)}`);
        return new Map<string, RestorePoint>();
      }),
      mapLimited(replicas, config.schedule.waitConcurrency, async (r) => {
        if (ids.length === 0) return new Map<string, StatusCounts>();
        try {
          return await pool.use(endpointOf(r), (c) => replicaSummaries(c, r.host, r.port, ids), { retry: true });
        } catch (err) {
          if (isNoSuchTable(err)) noTable.push(`${r.serverName} ${r.host}:${r.port}: ${errorMessage(err)}`);
          else errors.push(`${r.serverName} ${r.host}:${r.port}: ${errorMessage(err)}`);
          return new Map<string, StatusCounts>();
        }
      }),
    ]);
    const summaries = masters.map((m) => {
      const summary = summarize(
        m,
        perReplica.flatMap((byId) => byId.get(m.backupId) ?? []),
        cancels.get(m.backupId),
      );
      const point = points.get(m.backupId);
      return point ? { ...summary, restorePoint: point } : summary;
    });
    // A replica task the master side has that no replica showed, beside a replica without its
    // table: that replica cannot be read, not "nothing there yet".
    if (summaries.some((b) => b.tasks.unknown > 0)) errors.push(...noTable);
    return { summaries, errors, candidates: masters.length };
  });
}
