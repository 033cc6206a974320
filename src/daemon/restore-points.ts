// The spider master's agent gives every complete global backup its restore point (issue 12 item
// 2). Its own task of a backup succeeding is the cue: from then on it follows that backup (the
// rounds of `schedule --wait`, at [schedule] wait_interval, off the tick) and takes the point once
// every task succeeded. An idle agent watches nothing and costs nothing.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import type { WatchResult } from '../cluster/backup-restore-point.js';
import { errorMessage } from '../errors.js';

export interface RestorePointWatcherDeps {
  config: () => AgentConfig;
  logger: () => Logger;
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
      const [{ describeBackupPoint, watchBackupForRestorePoint }, { openClusterSession }] = await Promise.all([
        import('../cluster/backup-restore-point.js'),
        import('../cluster/session.js'),
      ]);
      const sleep = (ms: number) => delay(ms, undefined, { signal: this.abort.signal });
      log.info('following the global backup to take its restore point once every task succeeded');
      const config = this.deps.config();
      let r: WatchResult;
      try {
        // The spider node of this agent's own drop-in; the session lasts as long as the watch.
        const session = openClusterSession(config, [spiderIni]);
        try {
          r = await watchBackupForRestorePoint({ config, logger: log, sleep }, session, backupId);
        } finally {
          await session.close();
        }
      } catch (err) {
        r = { kind: 'failed', error: errorMessage(err) };
      }
      if (this.abort.signal.aborted) return log.info('agent stopping; the restore point is left to `schedule --wait` or `restore-point`');
      const line = describeBackupPoint(backupId, r);
      if (r.kind === 'failed') log.error({ result: r.kind }, line);
      else log.info({ result: r.kind, ...(r.kind === 'taken' ? { pauseMs: r.point.pauseMs } : {}) }, line);
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
