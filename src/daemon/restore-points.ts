// The spider master's agent gives every complete global backup its restore point (issue 12 item
// 2). Its own task of a backup succeeding is the cue: from then on it follows that backup (the
// rounds of `schedule --wait`, at [schedule] wait_interval, off the tick) and takes the point once
// every task succeeded. An idle agent watches nothing and costs nothing. With `[repository]
// retention_keep` / `retention_days` set, a complete backup is followed by an `expire` of the
// repository (README "Repository"), also with restore points off.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import type { CompleteResult, WatchResult } from '../cluster/backup-restore-point.js';
import { errorMessage } from '../errors.js';

export interface RestorePointWatcherDeps {
  config: () => AgentConfig;
  logger: () => Logger;
  /** A backup's point taken by this agent (for the metrics). */
  taken?: (pauseMs: number) => void;
  /** A backup's point that this agent could not take, or a complete backup it could not follow to its point. */
  failed?: () => void;
}

export class RestorePointWatcher {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();

  constructor(private readonly deps: RestorePointWatcherDeps) {}

  /** Backup ids being followed. */
  get watching(): string[] {
    return [...this.inFlight.keys()];
  }

  /** The spider master's own task of `backupId` succeeded (its instance config: `spiderIni`). */
  watch(backupId: string, spiderIni: string): void {
    if (this.inFlight.has(backupId) || this.abort.signal.aborted) return;
    const log = this.deps.logger().child({ backupId });
    const run = (async () => {
      const [{ describeBackupPoint, watchBackupComplete, watchBackupForRestorePoint }, { openClusterSession }] = await Promise.all([
        import('../cluster/backup-restore-point.js'),
        import('../cluster/session.js'),
      ]);
      const sleep = (ms: number) => delay(ms, undefined, { signal: this.abort.signal });
      const config = this.deps.config();
      const points = config.schedule.restorePoints;
      log.info(
        points
          ? 'following the global backup to take its restore point once every task succeeded'
          : 'following the global backup to expire the repository once every task succeeded',
      );
      let r: WatchResult | CompleteResult;
      try {
        // The spider node of this agent's own drop-in; the session lasts as long as the watch.
        const session = openClusterSession(config, [spiderIni]);
        try {
          const deps = { config, logger: log, sleep };
          r = points ? await watchBackupForRestorePoint(deps, session, backupId) : await watchBackupComplete(deps, session, backupId);
        } finally {
          await session.close();
        }
      } catch (err) {
        r = { kind: 'failed', error: errorMessage(err) };
      }
      if (this.abort.signal.aborted) return log.info('agent stopping; the restore point is left to `schedule --wait` or `restore-point`');
      if (r.kind !== 'complete') {
        const line = describeBackupPoint(backupId, r);
        if (r.kind === 'failed') log.error({ result: r.kind }, line);
        else log.info({ result: r.kind, ...(r.kind === 'taken' ? { pauseMs: r.point.pauseMs } : {}) }, line);
        if (r.kind === 'taken') this.deps.taken?.(r.point.pauseMs);
        if (r.kind === 'failed' && points) this.deps.failed?.();
      }
      if ((r.kind === 'complete' || r.kind === 'taken' || r.kind === 'exists') && retentionSet(config))
        await expireAfterBackup(config, spiderIni, log);
    })()
      .catch((err: unknown) => log.error({ err: errorMessage(err) }, 'restore point watch failed'))
      .finally(() => this.inFlight.delete(backupId));
    this.inFlight.set(backupId, run);
  }

  /** Stops following (waits end at once) and waits up to `ms` for what is in flight. */
  async stop(ms: number): Promise<void> {
    this.abort.abort();
    const timer = new AbortController();
    await Promise.race([Promise.allSettled([...this.inFlight.values()]), delay(ms, undefined, { signal: timer.signal }).catch(() => {})]);
    timer.abort();
  }
}

/** `[repository]` with retention_keep or retention_days: the agent expires after each complete backup. */
export const retentionSet = (config: AgentConfig): boolean =>
  config.repository !== undefined && (config.repository.retentionKeep !== undefined || config.repository.retentionDays !== undefined);

/** The retention settings applied to the repository; a lock held elsewhere (a verify, a restore) defers it to the next backup. */
async function expireAfterBackup(config: AgentConfig, spiderIni: string, log: Logger): Promise<void> {
  const repository = config.repository;
  if (!repository) return;
  try {
    const [{ configuredRepository }, { runExpire }] = await Promise.all([
      import('../repo/agent-repository.js'),
      import('../restore/expire-run.js'),
    ]);
    const repo = await configuredRepository(config, [spiderIni]);
    if (!repo) return;
    const policy = { keep: repository.retentionKeep, keepDays: repository.retentionDays };
    const r = await runExpire(config, repo, policy, { confirm: true, files: [spiderIni] });
    const deleted = r.done?.deleted ?? [];
    const bytes = deleted.reduce((n, e) => n + e.bytes, 0);
    const fields = {
      deleted: deleted.map((e) => e.backupId),
      bytes,
      judgedBy: r.plan.judgedBy,
      notes: r.plan.notes,
      pointsDeleted: r.done?.pointsDeleted ?? [],
      binlogsDeleted: r.done?.binlogsDeleted ?? [],
    };
    log.info(
      fields,
      `expire: ${deleted.length} backup(s) deleted from the repository${deleted.length > 0 ? `: ${fields.deleted.join(', ')}` : ''}`,
    );
    for (const e of r.done?.errors ?? []) log.error({ err: e }, `expire: ${e}`);
  } catch (err) {
    log.warn({ err: errorMessage(err) }, `expire after the backup not done: ${errorMessage(err)}`);
  }
}
