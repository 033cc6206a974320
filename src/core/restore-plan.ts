// `restore-plan <backup-id> --to-point <name>` (issue 12 item 3): per shard, the backup to restore
// and the binlog range to replay up to the point's GTID, checked against the binlogs each shard
// master still has.
import type { AgentConfig } from '../config/agent.js';
import { instanceName } from '../config/instance.js';
import { withConnection } from '../db.js';
import { errorMessage } from '../errors.js';
import { validateBackupId } from './backup-id.js';
import { binlogRangeOn } from './binlog-inventory.js';
import { endpointOf, readControl } from './cluster-view.js';
import type { BinlogRange } from './gtid.js';
import { queryTasks } from './query.js';
import { restorePointOf } from './restore-point.js';
import type { RestorePoint } from './restore-point-model.js';
import { AFTER_REPLAY, chooseBackups, pointProblems, type ShardChoice } from './restore-plan-model.js';
import { resolveSpiderTarget } from './spider-target.js';

/**
 * The position a backup was taken at (for a replica's backup: its master's), from the backup's
 * manifest. The built-in runners record it; until they are wired in, plans say it is unknown.
 */
export type BackupPositionOf = (choice: ShardChoice) => Promise<string | undefined>;

export interface ShardPlan extends ShardChoice {
  /** The backup's own GTID position, when its manifest gives one. */
  backupGtid?: string;
  binlogs?: BinlogRange;
  binlogError?: string;
}

export type PlanResult =
  | { kind: 'not-primary'; spider: string }
  | { kind: 'plan'; backupId: string; point?: RestorePoint; problems: string[]; shards: ShardPlan[]; afterReplay: string[] };

export async function restorePlan(
  config: AgentConfig,
  opts: { files?: string[]; backupId: string; pointName: string; positionOf?: BackupPositionOf },
): Promise<PlanResult> {
  const backupId = validateBackupId(opts.backupId, 'backup id');
  const pointName = validateBackupId(opts.pointName, '--to-point');
  const target = resolveSpiderTarget(config, opts.files);
  const control = await readControl(target.tdbctl);
  if (!control.primary) return { kind: 'not-primary', spider: instanceName(target.spider) };
  const [point, tasks] = await Promise.all([
    withConnection(target.spider, (c) => restorePointOf(c, pointName)),
    queryTasks(config, { files: opts.files, backupId }),
  ]);
  const rows = tasks.kind === 'tasks' ? tasks.tasks : [];
  const problems = [...pointProblems(point, pointName, rows), ...(tasks.kind === 'tasks' ? tasks.errors : [])];
  if (rows.length === 0) problems.push(`no task of backup id ${backupId} found`);
  if (!point || point.status !== 'taken') return { kind: 'plan', backupId, problems, shards: [], afterReplay: AFTER_REPLAY };
  const masters = new Map(control.servers.filter((s) => s.wrapper.toLowerCase() === 'mysql').map((s) => [`${s.host}:${s.port}`, s]));
  const shards = await Promise.all(
    chooseBackups(point, rows).map(async (choice): Promise<ShardPlan> => {
      const plan: ShardPlan = { ...choice };
      const backupGtid = choice.backup ? await opts.positionOf?.(choice) : undefined;
      if (backupGtid !== undefined) plan.backupGtid = backupGtid;
      const server = masters.get(`${choice.shard.host}:${choice.shard.port}`);
      if (!server) {
        plan.binlogError = `${choice.shard.serverName} ${choice.shard.host}:${choice.shard.port} is no longer in mysql.servers`;
        return plan;
      }
      try {
        // Without the backup's position, list from the oldest kept file: which are gone cannot be told.
        plan.binlogs = await withConnection(endpointOf(server), (c) => binlogRangeOn(c, backupGtid ?? '', choice.shard.gtid));
        if (backupGtid === undefined && plan.binlogs.gone) delete plan.binlogs.gone;
      } catch (err) {
        plan.binlogError = errorMessage(err);
      }
      return plan;
    }),
  );
  return { kind: 'plan', backupId, point, problems, shards, afterReplay: AFTER_REPLAY };
}
