// How `list` shows a backup: one column list for the table and the JSON alike, so a new field
// (a restore point, …) is one entry here.
import type { BackupSummary } from '../../cluster/history.js';
import { formatSeconds } from '../../format.js';

export interface ListColumn {
  /** Table heading. */
  header: string;
  /** JSON field name. */
  field: string;
  value(b: BackupSummary): string | number | null;
}

export const LIST_COLUMNS: ListColumn[] = [
  { header: 'BackupId', field: 'backupId', value: (b) => b.backupId },
  { header: 'State', field: 'state', value: (b) => b.state },
  { header: 'Created', field: 'createdAt', value: (b) => b.createdAt },
  { header: 'Ended', field: 'endedAt', value: (b) => b.endedAt ?? null },
  { header: 'Duration', field: 'durationS', value: (b) => b.durationS ?? null },
  { header: 'Tasks', field: 'total', value: (b) => b.tasks.total },
  { header: 'Success', field: 'success', value: (b) => b.tasks.success },
  { header: 'Failed', field: 'failed', value: (b) => b.tasks.failed },
  { header: 'Running', field: 'running', value: (b) => b.tasks.running },
  { header: 'Cancelled', field: 'cancelled', value: (b) => b.tasks.cancelled },
  { header: 'Unknown', field: 'unknown', value: (b) => b.tasks.unknown },
  { header: 'CancelledBy', field: 'cancelledBy', value: (b) => b.cancel?.by ?? null },
  { header: 'CancelledAt', field: 'cancelledAt', value: (b) => b.cancel?.at ?? null },
  { header: 'RestorePoint', field: 'restorePoint', value: restorePointCell },
  { header: 'Bytes', field: 'bytes', value: (b) => b.bytes ?? null },
];

/**
 * When the backup's restore point was taken; `opted-out` (--no-restore-point); `none` for a
 * complete backup without one (it cannot be restored to one consistent instant: say so), and
 * `incomplete` when a shard master lost its row of the point.
 */
function restorePointCell(b: BackupSummary): string | null {
  const p = b.restorePoint;
  if (p === undefined) return b.state === 'complete' ? 'none' : null;
  if (p.status === 'opted-out') return 'opted-out';
  return p.complete ? p.takenAt : 'incomplete';
}

export function listJson(backups: readonly BackupSummary[]): Record<string, string | number | null>[] {
  return backups.map((b) => Object.fromEntries(LIST_COLUMNS.map((c) => [c.field, c.value(b)])));
}

/** Table cells: empty for what does not apply, durations human-readable. */
export function listTableRows(backups: readonly BackupSummary[]): { head: string[]; rows: (string | number)[][] } {
  // Columns that are empty for every backup shown are left out of the table (never out of JSON).
  const optional: Record<string, (b: BackupSummary) => boolean> = {
    unknown: (b) => b.tasks.unknown > 0,
    cancelledBy: (b) => b.cancel !== undefined,
    cancelledAt: (b) => b.cancel !== undefined,
    restorePoint: (b) => restorePointCell(b) !== null,
    bytes: (b) => b.bytes !== undefined,
  };
  const cols = LIST_COLUMNS.filter((c) => optional[c.field] === undefined || backups.some((b) => optional[c.field]?.(b)));
  return {
    head: cols.map((c) => c.header),
    rows: backups.map((b) =>
      cols.map((c) => {
        const v = c.value(b);
        if (v === null) return '';
        return c.field === 'durationS' && typeof v === 'number' ? formatSeconds(v) : v;
      }),
    ),
  };
}
