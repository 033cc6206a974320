// `list` (SPEC §5): the history of global backups with one state each, newest first. Counts are
// aggregated by the servers (sql/history.ts): master-side tasks through the Spider node, replica
// tasks on each replica. A backup with a cancel record on the spider node is `cancelled`, never
// `complete`; a task stopped without one (the 12 h expiry, a hand-written quit) makes it `failed`.
import type { AgentConfig } from '../config/agent.js';
import { isNoSuchTable } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import { readCancels, type CancelRecord } from '../sql/cancel.js';
import { masterSideSummaries, replicaSummaries, type MasterSideSummary, type StatusCounts } from '../sql/history.js';
import { mapLimited } from './reach.js';
import { restorePointsOf } from './restore-point.js';
import type { RestorePoint } from './restore-point-model.js';
import { endpointOf, type ClusterSession } from './session.js';
import { shardTablesOf } from './shard-tables.js';

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

/** The newest `limit` backups, newest first; on any spider node. */
export async function listBackups(config: AgentConfig, session: ClusterSession, opts: ListOptions): Promise<ListResult> {
  return withCluster(config, session, async (read) => {
    const { summaries, errors } = await read({ limit: opts.limit });
    return { backups: summaries, errors };
  });
}

/** The newest complete backup (every task `success`, no cancel), or undefined; on any spider node. */
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

/**
 * One shard master's counts per backup id summed with the others' (away from the primary, the
 * Spider table's GROUP BY done here). Pure.
 */
export function mergeSummaries(parts: readonly MasterSideSummary[]): MasterSideSummary[] {
  const byId = new Map<string, MasterSideSummary>();
  for (const p of parts) {
    const m = byId.get(p.backupId);
    if (!m) {
      byId.set(p.backupId, { ...p });
      continue;
    }
    if (p.createdAt < m.createdAt) m.createdAt = p.createdAt;
    m.createdAgeS = Math.max(m.createdAgeS, p.createdAgeS);
    m.replicaTasks += p.replicaTasks;
    m.success += p.success;
    m.failed += p.failed;
    m.unfinished += p.unfinished;
    m.stopped += p.stopped;
    // The latest UpdatedAt of the master-side tasks (a master may hold only replica copies of an id).
    if (p.tasks > 0 && (m.tasks === 0 || p.updatedAt > m.updatedAt)) {
      m.updatedAt = p.updatedAt;
      m.updatedAgeS = p.updatedAgeS;
    }
    m.tasks += p.tasks;
  }
  return [...byId.values()];
}

/** The page `q` asks for, ordered as the Spider table's statement orders it (newest first). Pure. */
export function pageOf(
  all: readonly MasterSideSummary[],
  q: { limit: number; offset?: number; onlyAllSuccess?: boolean },
): MasterSideSummary[] {
  return all
    .filter((s) => !q.onlyAllSuccess || s.success === s.tasks)
    .sort((a, b) => cmp(b.createdAt, a.createdAt) || cmp(b.backupId, a.backupId))
    .slice(q.offset ?? 0, (q.offset ?? 0) + q.limit);
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

type Read = (q: {
  limit: number;
  offset?: number;
  onlyAllSuccess?: boolean;
}) => Promise<{ summaries: BackupSummary[]; errors: string[]; candidates: number }>;

async function withCluster<R>(config: AgentConfig, session: ClusterSession, fn: (read: Read) => Promise<R>): Promise<R> {
  const tables = await shardTablesOf(session, config.schedule.waitConcurrency);
  const replicas = tables.servers.filter((s) => s.wrapper.toLowerCase() === 'mysql_slave');
  const pool = session.connections;
  // The cancel records `list` reads are the spider node's own; away from it, the primary's.
  const primary = tables.view.primarySpider;
  const cancelsOn = tables.notPrimary
    ? primary && { ep: endpointOf(primary), name: `${primary.serverName} ${primary.host}:${primary.port}` }
    : {
        ep: session.spider,
        name: `spider ${session.spiderName}`,
      };
  return fn(async (q) => {
    const errors: string[] = [];
    let masters: MasterSideSummary[];
    try {
      masters = tables.notPrimary
        ? pageOf(mergeSummaries(await tables.rows((c) => masterSideSummaries(c, {}))), q)
        : await tables.readOn(0, (c) => masterSideSummaries(c, q));
    } catch (err) {
      if (isNoSuchTable(err)) return { summaries: [], errors, candidates: 0 };
      throw err;
    }
    const ids = masters.map((m) => m.backupId);
    /** Replicas without a task table: no row arrived yet, or the table is gone (told below). */
    const noTable: string[] = [];
    const [cancels, points, perReplica] = await Promise.all([
      (cancelsOn
        ? pool.use(cancelsOn.ep, (c) => readCancels(c, ids), { retry: true })
        : Promise.reject(new OperationError('the primary spider node is not in tdbctl mysql.servers'))
      ).catch((err: unknown) => {
        if (!isNoSuchTable(err)) errors.push(`${cancelsOn?.name ?? 'primary spider node'}: cancel records: ${errorMessage(err)}`);
        return new Map<string, CancelRecord>();
      }),
      restorePointsOf(tables, ids).catch((err: unknown) => {
        errors.push(`${tables.notPrimary ? '' : `spider ${session.spiderName}: `}restore points: ${errorMessage(err)}`);
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
