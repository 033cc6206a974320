// Every complete global backup gets a restore point named after its backup id (issue 12 item 2),
// taken after its last task succeeded: binlogs only roll a restored shard forward, so the point
// must come after every shard's backup. Taken by the spider master's agent when it sees the
// backup complete, and by `schedule --wait`; whoever comes second finds the name taken.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { errorMessage } from '../errors.js';
import { formatDuration } from '../format.js';
import type { RestorePoint } from './restore-point-model.js';
import { RestorePointExistsError, takeRestorePoint } from './restore-point.js';
import { notPrimary, NotPrimaryError, type ClusterSession } from './session.js';
import { buildTaskSet } from './task-set.js';
import { waitForBackup } from './wait.js';

export type BackupPoint =
  | { kind: 'not-primary'; spider: string }
  | { kind: 'taken'; point: RestorePoint; attempts: number }
  /** Taken before (by the agent or --wait), or opted out at schedule time (point.status). */
  | { kind: 'exists'; point: RestorePoint }
  | { kind: 'failed'; error: string };

export interface BackupPointDeps {
  config: AgentConfig;
  logger: Logger;
}

/**
 * The backup's restore point: takes it unless a point (or an opt-out) of that name exists. Never
 * throws. Called once the backup completed, after a wait that may have lasted hours: tdbctl is
 * asked again whether this node is (still) the primary.
 */
export async function ensureBackupRestorePoint(deps: BackupPointDeps, session: ClusterSession, backupId: string): Promise<BackupPoint> {
  session.askAgain();
  try {
    const res = await takeRestorePoint(deps, session, { name: backupId });
    for (const w of res.warnings) deps.logger.warn({ backupId }, w);
    return { kind: 'taken', point: res.point, attempts: res.attempts };
  } catch (err) {
    if (err instanceof NotPrimaryError) return { kind: 'not-primary', spider: err.spider };
    if (err instanceof RestorePointExistsError) return { kind: 'exists', point: err.point };
    deps.logger.error({ backupId, err: errorMessage(err) }, 'the restore point of a complete backup could not be taken');
    return { kind: 'failed', error: errorMessage(err) };
  }
}

export type WatchResult = BackupPoint | { kind: 'backup-not-complete'; reason: string };

/**
 * For the spider master's agent once its own task of `backupId` succeeded: follows the backup
 * (the rounds of `schedule --wait`, at [schedule] wait_interval) and, once every task succeeded,
 * takes its restore point. A backup that ends with failures gets none.
 */
export async function watchBackupForRestorePoint(
  deps: BackupPointDeps & { sleep?: (ms: number) => Promise<void> },
  session: ClusterSession,
  backupId: string,
): Promise<WatchResult> {
  const waited = await watchBackupComplete(deps, session, backupId);
  if (waited.kind !== 'complete') return waited;
  return ensureBackupRestorePoint(deps, session, backupId);
}

export type CompleteResult = { kind: 'complete' } | Extract<WatchResult, { kind: 'backup-not-complete' | 'not-primary' | 'failed' }>;

/** Follows the backup until every task is final: `complete` when every one succeeded. */
export async function watchBackupComplete(
  deps: BackupPointDeps & { sleep?: (ms: number) => Promise<void> },
  session: ClusterSession,
  backupId: string,
): Promise<CompleteResult> {
  try {
    const set = buildTaskSet(await session.primaryServers(), session.spider, backupId);
    const waited = await waitForBackup({ config: deps.config, logger: deps.logger, sleep: deps.sleep }, session, set, backupId);
    if (!waited.ok) return { kind: 'backup-not-complete', reason: waited.reason };
    return { kind: 'complete' };
  } catch (err) {
    if (err instanceof NotPrimaryError) return { kind: 'not-primary', spider: err.spider };
    return { kind: 'failed', error: errorMessage(err) };
  }
}

/** One line for logs and `schedule --wait`. */
export function describeBackupPoint(backupId: string, r: WatchResult): string {
  switch (r.kind) {
    case 'taken':
    case 'exists':
      if (r.point.status === 'opted-out') return `backup id ${backupId}: no restore point (scheduled with --no-restore-point)`;
      return (
        `backup id ${backupId}: restore point ${r.point.name} at ${r.point.takenAt} (` +
        r.point.shards.map((s) => `${s.serverName} ${s.gtid}`).join(', ') +
        `; commits paused ${formatDuration(r.point.pauseMs)})`
      );
    case 'not-primary':
      return `backup id ${backupId}: no restore point: ${notPrimary(r.spider)}`;
    case 'backup-not-complete':
      return `backup id ${backupId}: no restore point: the backup did not complete (${r.reason})`;
    case 'failed':
      return `backup id ${backupId}: complete, but its restore point could not be taken: ${r.error}`;
  }
}
