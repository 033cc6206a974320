// What the daemon remembers about backups between ticks, for metrics, presence and status: when
// each running backup started and how many bytes it has written (from its supervisor's record),
// and when each instance's last successful backup ended. Plain maps and functions; the daemon
// owns one tracker for its life.
import { type TaskRecord } from '../host/protocol.js';
import { taskKeyString, type TaskKey, type TaskRow } from '../task/task.js';

export interface Progress {
  /** This host's clock, ms. */
  startedAtMs: number;
  finishedAtMs?: number;
  bytes?: number;
  bytesAtMs?: number;
}

export interface BackupTracker {
  /** By task key: backups this daemon started or saw a record of. */
  progress: Map<string, Progress>;
  /** By drop-in file: the instance's most recent successful task (read by check, see CheckDeps). */
  lastSuccess: Map<string, TaskRow | undefined>;
  /** By drop-in file: when that success ended, fixed the first tick it was seen (unix seconds). */
  successAt: Map<string, { backupId: string; at: number }>;
}

export function createTracker(): BackupTracker {
  return { progress: new Map(), lastSuccess: new Map(), successAt: new Map() };
}

/** A backup this daemon just handed to its supervisor: its clock starts now. */
export function noteStarted(t: BackupTracker, key: TaskKey, nowMs: number): void {
  if (!t.progress.has(taskKeyString(key))) t.progress.set(taskKeyString(key), { startedAtMs: nowMs });
}

/** The supervisors' records are the truth about start, end and bytes. */
export function noteRecords(t: BackupTracker, records: readonly TaskRecord[]): void {
  for (const r of records) {
    const startedAtMs = Date.parse(r.startedAt);
    if (!Number.isFinite(startedAtMs)) continue;
    const p: Progress = { startedAtMs };
    if (r.finishedAt !== undefined && Number.isFinite(Date.parse(r.finishedAt))) p.finishedAtMs = Date.parse(r.finishedAt);
    if (r.bytes !== undefined) p.bytes = r.bytes;
    if (r.bytesAt !== undefined && Number.isFinite(Date.parse(r.bytesAt))) p.bytesAtMs = Date.parse(r.bytesAt);
    t.progress.set(taskKeyString(r.key), p);
  }
}

/** Duration and bytes of a backup that just finished (seen at nowMs), as far as they are known. */
export function measured(t: BackupTracker, key: TaskKey, nowMs: number): { durationS: number | undefined; bytes: number | undefined } {
  const p = t.progress.get(taskKeyString(key));
  if (!p) return { durationS: undefined, bytes: undefined };
  return { durationS: Math.max(0, ((p.finishedAtMs ?? nowMs) - p.startedAtMs) / 1000), bytes: p.bytes };
}

/** Keeps only what may still be asked about: tasks still unfinished or still recorded. */
export function prune(t: BackupTracker, keep: ReadonlySet<string>, files: ReadonlySet<string>): void {
  for (const k of t.progress.keys()) if (!keep.has(k)) t.progress.delete(k);
  for (const f of t.lastSuccess.keys()) if (!files.has(f)) t.lastSuccess.delete(f);
  for (const f of t.successAt.keys()) if (!files.has(f)) t.successAt.delete(f);
}

/**
 * Unix seconds the instance's last success ended: null when it never had one, undefined when its
 * table has not been read yet. The row's age is by the database clock and
 * fresh only in the tick that read it, so the time is fixed then and kept.
 */
export function lastSuccessAt(t: BackupTracker, file: string, nowMs: number): number | null | undefined {
  if (!t.lastSuccess.has(file)) return undefined;
  const row = t.lastSuccess.get(file);
  if (!row) return null;
  const known = t.successAt.get(file);
  if (known?.backupId === row.backupId) return known.at;
  const at = Math.round(nowMs / 1000 - row.updatedAgeS);
  t.successAt.set(file, { backupId: row.backupId, at });
  return at;
}

/** The bytes of the running backup of `key`, as its supervisor last measured them. */
export function runningBytes(records: readonly TaskRecord[], key: TaskKey): number | undefined {
  const k = taskKeyString(key);
  return records.find((r) => taskKeyString(r.key) === k && r.phase === 'running')?.bytes;
}
