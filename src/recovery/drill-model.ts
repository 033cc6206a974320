// The restore drill's judgements, pure (unit-tested with a fake clock): whether a cron slot starts
// a drill, whether a drill succeeded (the restore's outcome, then check_sql against expect), what
// is remembered of the last one (state_dir/drill.json, so status and the metrics survive a
// restart) and how `status` says it.
import { formatDuration } from '../format.js';
import type { RestoreOutcome } from './job.js';

export interface DrillRecord {
  /** Wall clock of this host (ISO). */
  startedAt: string;
  endedAt: string;
  /** The restore and the check (not the wipe after it): the measured recovery time. */
  durationMs: number;
  outcome: 'success' | 'failed';
  /** Absent when the restore was refused before it wrote anything. */
  restoreId?: string;
  /** What failed, one line. */
  error?: string;
  /** What check_sql returned, when it ran. */
  value?: string | null;
  /** The wipe after the drill failed (the next drill's scratch restore wipes first anyway). */
  wipeError?: string;
}

/** state_dir/drill.json: the last drill, and the last that succeeded (the stale alert's input). */
export interface DrillMemory {
  format: 1;
  last: DrillRecord;
  /** endedAt of the newest successful drill on this host; absent when none succeeded yet. */
  lastSuccessAt?: string;
}

/** What status.json says of the drill on a host where it is configured. */
export interface DrillStatus {
  cron: string;
  target: string;
  keep: boolean;
  nextRun?: string;
  /** A drill in progress: when it started. */
  runningSince?: string;
  /** Why this host's agent does not drill (not the primary spider node, paused …), when it said so last. */
  idle?: string;
  last?: DrillRecord;
  lastSuccessAt?: string;
}

export type SlotDecision = { run: true } | { run: false; level: 'info' | 'warn'; why: string };

/** One drill at a time; none while the host or the cluster is paused. */
export function slotDecision(slot: Date, running: { since: Date } | undefined, paused: string | undefined, now: Date): SlotDecision {
  if (running)
    return {
      run: false,
      level: 'warn',
      why:
        `restore drill slot ${slot.toISOString()} skipped: the drill started ${running.since.toISOString()} ` +
        `(${formatDuration(now.getTime() - running.since.getTime())} ago) still runs`,
    };
  if (paused !== undefined) return { run: false, level: 'info', why: `restore drill slot ${slot.toISOString()} skipped: ${paused}` };
  return { run: true };
}

/** Why the restore did not reach its point (undefined: it did), one line. */
export function restoreFailure(o: RestoreOutcome): string | undefined {
  if (o.problems.length > 0) return o.problems.join('; ');
  if (o.dryRun) return 'the restore ran as a dry run';
  const r = o.result;
  if (!r) return 'the restore reported no result';
  if (r.outcome !== 'done') {
    const failed = r.failed.map((f) => `${f.target.host}:${f.target.port}: ${f.error}`).join('; ');
    return `the restore ended ${r.outcome}${failed ? ` (${failed})` : ''}${r.routed ? '' : ', not routed'}`;
  }
  if (!r.routed) return 'the restore reached the point but the new spider node was not routed';
  return undefined;
}

/** check_sql's value against expect (unset: any value, but a row must come back). */
export function checkFailure(value: string | null | undefined, expect: string | undefined, sql: string): string | undefined {
  if (value === undefined) return `check_sql returned no row (${sql})`;
  if (expect === undefined) return undefined;
  if (value === expect.trim()) return undefined;
  return `check_sql returned ${value === null ? 'NULL' : JSON.stringify(value)}, expected ${JSON.stringify(expect.trim())} (${sql})`;
}

/** The record of a drill that started at `started` and ended now. */
export function drillRecord(
  started: Date,
  ended: Date,
  r: { restoreId?: string | undefined; error?: string | undefined; value?: string | null | undefined },
): DrillRecord {
  return {
    startedAt: started.toISOString(),
    endedAt: ended.toISOString(),
    durationMs: Math.max(0, ended.getTime() - started.getTime()),
    outcome: r.error === undefined ? 'success' : 'failed',
    ...(r.restoreId !== undefined ? { restoreId: r.restoreId } : {}),
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(r.value !== undefined ? { value: r.value } : {}),
  };
}

/** The memory after one more drill. */
export function remember(prev: DrillMemory | undefined, rec: DrillRecord): DrillMemory {
  const lastSuccessAt = rec.outcome === 'success' ? rec.endedAt : prev?.lastSuccessAt;
  return { format: 1, last: rec, ...(lastSuccessAt !== undefined ? { lastSuccessAt } : {}) };
}

/** The one log line of a drill. */
export function drillLogLine(rec: DrillRecord): string {
  const id = rec.restoreId !== undefined ? ` ${rec.restoreId}` : '';
  return rec.outcome === 'success'
    ? `restore drill${id} succeeded in ${formatDuration(rec.durationMs)}${rec.value !== undefined ? ` (check_sql: ${String(rec.value)})` : ''}`
    : `restore drill${id} FAILED after ${formatDuration(rec.durationMs)}: ${rec.error ?? 'unknown'}`;
}

/** The metrics' view of the memory (before this host ran any drill there is none, and no samples). */
export function drillGauges(m: DrillMemory): { lastRunS: number; lastRunSuccess: 0 | 1; durationS: number; lastSuccessS: number } {
  return {
    lastRunS: Date.parse(m.last.endedAt) / 1000,
    lastRunSuccess: m.last.outcome === 'success' ? 1 : 0,
    durationS: m.last.durationMs / 1000,
    // 0 when none succeeded: the stale alert fires for a drill that never worked.
    lastSuccessS: m.lastSuccessAt !== undefined ? Date.parse(m.lastSuccessAt) / 1000 : 0,
  };
}

const ago = (iso: string, now: Date): string => {
  const ms = now.getTime() - Date.parse(iso);
  return Number.isFinite(ms) && ms >= 1000 ? `${iso} (${formatDuration(ms)} ago)` : iso;
};

/** `status`'s Drill line: last run, outcome, duration, next run. */
export function drillStatusText(d: DrillStatus, now: Date): string {
  const parts: string[] = [];
  if (d.runningSince !== undefined) parts.push(`running since ${ago(d.runningSince, now)}`);
  const l = d.last;
  if (l)
    parts.push(
      `last ${ago(l.endedAt, now)}: ` +
        (l.outcome === 'success'
          ? `succeeded in ${formatDuration(l.durationMs)}`
          : `FAILED after ${formatDuration(l.durationMs)}: ${l.error ?? 'unknown'}`) +
        (l.restoreId !== undefined ? ` (${l.restoreId})` : '') +
        (l.wipeError !== undefined ? `; wipe failed: ${l.wipeError}` : ''),
    );
  else if (d.runningSince === undefined) parts.push('no drill run yet');
  if (l && l.outcome !== 'success') parts.push(d.lastSuccessAt !== undefined ? `last success ${d.lastSuccessAt}` : 'never succeeded');
  if (d.idle !== undefined) parts.push(`idle: ${d.idle}`);
  parts.push(d.nextRun !== undefined ? `next ${d.nextRun}` : `cron ${d.cron}`);
  return parts.join('; ');
}
