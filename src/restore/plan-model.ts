// `restore-plan` as data: per shard, which backup of a global backup to restore and what to replay
// to reach a restore point. Pure: unit-tested without a cluster.
import { STATUS, statusClass } from '../task/status.js';
import type { Manifest } from '../runner/manifest.js';
import type { PointShard, RestorePoint } from '../cluster/restore-point-model.js';
import type { TaskRow } from '../task/task.js';

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

/** Where the replay of a shard starts: the position its chosen backup was taken at. */
export interface StartPosition {
  /** GTID position of the backup (for a replica's backup: its master's). */
  gtid?: string;
  /** The master's binlog file and offset of the same position, when recorded. */
  binlogFile?: string;
  binlogPos?: number;
  /** Why there is no usable position. */
  problem?: string;
}

/**
 * The start of a shard's replay from its backup's manifest: a master's own position; a replica's
 * master position (its own binlog numbers its own events, not the master's).
 */
export function startPositionOf(manifest: Manifest, from: 'master' | 'replica'): StartPosition {
  const p = from === 'replica' ? manifest.masterPosition : manifest.position;
  if (!p) return { problem: "its replica's manifest records no master position (written before it was recorded): take another backup" };
  const out: StartPosition = {};
  if (p.gtid) out.gtid = p.gtid;
  if (p.binlogFile) out.binlogFile = p.binlogFile;
  if (p.binlogPos !== undefined) out.binlogPos = p.binlogPos;
  if (!p.gtid && !p.binlogFile)
    out.problem = `its manifest (${manifest.tool.name}) records no ${from === 'replica' ? 'master ' : ''}binlog position`;
  return out;
}

/**
 * The binlog files between the one holding the backup's position and the oldest the master still
 * keeps: those a replay needs and a purge removed. Names like mysql-bin.000012 count up; others
 * cannot be told apart, and only the range is named.
 */
export function purgedFiles(startFile: string, oldestKept: string): string[] {
  const a = /^(.*\.)(\d+)$/.exec(startFile);
  const b = /^(.*\.)(\d+)$/.exec(oldestKept);
  if (!a || !b || a[1] !== b[1]) return [startFile];
  const width = (a[2] as string).length;
  const out: string[] = [];
  for (let n = Number(a[2]); n < Number(b[2]) && out.length < 10_000; n++) out.push(`${a[1]}${String(n).padStart(width, '0')}`);
  return out;
}

/** "mysql-bin.000003 … mysql-bin.000007 (5 files)" or the list itself when short. */
export function describeFiles(files: readonly string[]): string {
  if (files.length <= 4) return files.join(' ');
  return `${files[0]} … ${files.at(-1)} (${files.length} files)`;
}
