// `restore-plan` as data: per shard, which backup of a global backup to restore and what to replay
// to reach a restore point. Pure: unit-tested without a cluster.
import type { TaskRow } from '../sql/tasks.js';
import { STATUS, statusClass } from './status.js';
import type { PointShard, RestorePoint } from './restore-point-model.js';

export interface ShardChoice {
  shard: PointShard;
  /** The task whose backup to restore: the master's if it succeeded, else its replica's. */
  backup?: TaskRow;
  /** 'master' | 'replica': a replica's backup carries its master's position (--slave-info). */
  from?: 'master' | 'replica';
  problem?: string;
}

/** Chooses, per shard of the point, the backup to restore from the backup id's tasks. */
export function chooseBackups(point: RestorePoint, tasks: readonly TaskRow[]): ShardChoice[] {
  const ok = (t: TaskRow) => statusClass(t.status) === STATUS.success;
  return point.shards.map((shard) => {
    const master = tasks.find((t) => t.wrapper.toLowerCase() === 'mysql' && t.shardValue === shard.shardValue && ok(t));
    if (master) return { shard, backup: master, from: 'master' };
    const replica = tasks.find((t) => t.wrapper.toLowerCase() === 'mysql_slave' && t.shardValue === shard.shardValue && ok(t));
    if (replica) return { shard, backup: replica, from: 'replica' };
    return { shard, problem: `no successful backup of shard ${shard.shardValue} (${shard.serverName}) in this backup id` };
  });
}

/** Problems that make the point unusable for this backup (before any shard is looked at). */
export function pointProblems(point: RestorePoint | undefined, name: string, tasks: readonly TaskRow[]): string[] {
  if (!point) return [`no restore point named ${JSON.stringify(name)}`];
  if (point.status === 'opted-out') return [`${JSON.stringify(name)} holds no position: its backup was scheduled with --no-restore-point`];
  const out: string[] = [];
  if (!point.complete) out.push(`restore point ${JSON.stringify(name)} lacks a shard's row: some shard master lost it`);
  // Binlogs only roll forward: the point must come after every backup it is combined with.
  const late = tasks.filter((t) => t.updatedAt > point.takenAt.slice(0, 19));
  if (late.length > 0)
    out.push(
      `restore point ${JSON.stringify(name)} (${point.takenAt}) is older than the end of ${late.map((t) => `${t.serverName} ${t.host}:${t.port}`).join(', ')}'s backup: ` +
        'binlogs cannot roll a restored shard back; use a point taken after the backup',
    );
  return out;
}

/** What to do about XA and Spider's XA tables after the replay (README: Restore points). */
export const AFTER_REPLAY = [
  'XA: no XA transaction was prepared on any shard at a restore point (restore-point refuses such a point), so XA RECOVER on each ' +
    'restored shard must be empty after the replay; an entry there came from a write not made through Spider: XA ROLLBACK it.',
  'Spider: on every Spider node of the restored cluster empty mysql.spider_xa, mysql.spider_xa_member and mysql.spider_xa_failed_log: ' +
    'their entries belong to transactions after the point.',
];
