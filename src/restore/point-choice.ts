// Which restore point and which backup a restore without them named uses (issue 19 item 4):
// `--to-time T` reads T on the clock `restore-point --list` shows (the database clock of the spider
// master, no zone) and picks the newest point at or before it; without a backup id, the newest
// backup whose every shard has a usable backup (master's or replica's) that ended before the point.
// Pure: unit-tested without a cluster.
import { UsageError } from '../errors.js';
import { formatDuration } from '../format.js';
import type { RestorePoint } from '../cluster/restore-point-model.js';
import { covers, parseGtidPos } from '../archive/gtid.js';
import type { Manifest } from '../runner/manifest.js';
import { STATUS, statusClass } from '../task/status.js';
import type { TaskRow } from '../task/task.js';

const CLOCK = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

/**
 * Microseconds of a time on the database clock, counted as if it were UTC: two times of that one
 * clock compare and subtract right; the zone is never needed. Throws a UsageError naming `text`.
 */
export function clockMicros(text: string, what = '--to-time'): number {
  const m = CLOCK.exec(text.trim());
  const bad = () =>
    new UsageError(
      `${what} ${JSON.stringify(text)}: not a time as restore-point --list shows them (YYYY-MM-DD HH:MM:SS, fractional seconds allowed, ` +
        'on the database clock, no zone)',
    );
  if (!m) throw bad();
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw bad();
  return ms * 1000 + Number((m[7] ?? '').padEnd(6, '0'));
}

export interface PointAtTime {
  point: RestorePoint;
  /** How far before the requested time the point was taken, in ms (the restore reaches the point, not the time). */
  beforeMs: number;
}

/**
 * The newest usable point (taken, complete) at or before `time`; a UsageError naming `time` when
 * there is none.
 */
export function choosePointAt(points: readonly RestorePoint[], time: string): PointAtTime {
  const t = clockMicros(time);
  const usable = points.filter((p) => p.status === 'taken' && p.complete && p.takenAt !== '');
  let best: { point: RestorePoint; at: number } | undefined;
  for (const p of usable) {
    const at = clockMicros(p.takenAt, `restore point ${p.name}'s time`);
    if (at > t) continue;
    if (!best || at > best.at || (at === best.at && p.name > best.point.name)) best = { point: p, at };
  }
  if (!best) {
    const oldest = [...usable].sort((a, b) => clockMicros(a.takenAt) - clockMicros(b.takenAt))[0];
    throw new UsageError(
      `--to-time ${JSON.stringify(time)}: no restore point at or before it` +
        (oldest ? ` (the oldest is ${oldest.name}, taken ${oldest.takenAt})` : ' (none is recorded)'),
    );
  }
  return { point: best.point, beforeMs: (t - best.at) / 1000 };
}

/** "restore point auto-20261205-101500 (taken 2026-12-05 10:15:00.120), 4.9 s before the requested 2026-12-05 10:15:05" */
export function describePointAt(p: PointAtTime, time: string): string {
  const gap = p.beforeMs === 0 ? 'exactly at' : `${formatDuration(p.beforeMs)} before`;
  return `restore point ${p.point.name} (taken ${p.point.takenAt}), ${gap} the requested ${time}: the restore reaches the point, not the time`;
}

/** One instance's backup as the choice of a backup sees it. */
export interface BackupCandidate {
  shardValue: number;
  from: 'master' | 'replica';
  /** Succeeded (and, with a repository, complete there) and ended before the point. */
  usable: boolean;
}

export interface BackupCandidates {
  backupId: string;
  instances: BackupCandidate[];
}

/**
 * The newest backup (`backups` newest first) in which every shard of `point` has a usable backup;
 * undefined when none has.
 */
export function newestUsableBackup(point: RestorePoint, backups: readonly BackupCandidates[]): string | undefined {
  const found = backups.find((b) => point.shards.every((s) => b.instances.some((i) => i.shardValue === s.shardValue && i.usable)));
  return found?.backupId;
}

/**
 * The backups of these task rows as candidates for `point`, newest first (by their first task's
 * creation). An instance is usable when its task succeeded, ended before the point (the database
 * clock, as the point's time) and, when `inRepository` is given, is complete there.
 */
export function candidatesFromTasks(
  point: RestorePoint,
  tasks: readonly TaskRow[],
  inRepository?: (t: TaskRow) => boolean,
): BackupCandidates[] {
  const byId = new Map<string, TaskRow[]>();
  for (const t of tasks) byId.set(t.backupId, [...(byId.get(t.backupId) ?? []), t]);
  const created = (rows: TaskRow[]) => rows.reduce((m, t) => (t.createdAt < m ? t.createdAt : m), rows[0]?.createdAt ?? '');
  return [...byId.entries()]
    .sort((a, b) => (created(a[1]) === created(b[1]) ? b[0].localeCompare(a[0]) : created(a[1]) < created(b[1]) ? 1 : -1))
    .map(([backupId, rows]) => ({
      backupId,
      instances: rows.flatMap((t): BackupCandidate[] => {
        const wrapper = t.wrapper.toLowerCase();
        if (wrapper !== 'mysql' && wrapper !== 'mysql_slave') return [];
        const usable = statusClass(t.status) === STATUS.success && t.updatedAt <= point.takenAt.slice(0, 19) && (inRepository?.(t) ?? true);
        return [{ shardValue: t.shardValue, from: wrapper === 'mysql' ? 'master' : 'replica', usable }];
      }),
    }));
}

/** A backup as the repository holds it: its instances' manifests. */
export interface ManifestBackup {
  backupId: string;
  manifests: Manifest[];
}

/**
 * The position a shard's replay starts from in an instance's manifest (a replica's: its master's),
 * when it is a GTID position: without the cluster, that is how "before the point" is told.
 */
export function manifestGtid(m: Manifest): string | undefined {
  const p = m.role === 'slave' ? m.masterPosition : m.position;
  return p?.gtid || undefined;
}

/** Whether the point's position of the shard comes at or after the backup's (binlogs roll forward only). */
export function manifestBeforePoint(m: Manifest, point: RestorePoint): boolean {
  const shard = point.shards.find((s) => s.shardValue === m.shardValue);
  const gtid = manifestGtid(m);
  if (!shard || gtid === undefined) return false;
  try {
    return covers(parseGtidPos(shard.gtid), parseGtidPos(gtid));
  } catch {
    return false;
  }
}

/** The repository's backups (newest first) as candidates for `point`, judged by their manifests alone. */
export function candidatesFromManifests(point: RestorePoint, backups: readonly ManifestBackup[]): BackupCandidates[] {
  return backups.map((b) => ({
    backupId: b.backupId,
    instances: b.manifests
      .filter((m) => m.role === 'master' || m.role === 'slave')
      .map((m) => ({ shardValue: m.shardValue, from: m.role === 'master' ? 'master' : 'replica', usable: manifestBeforePoint(m, point) })),
  }));
}
