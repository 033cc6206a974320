// What happens when [schedule] cron fires: nothing while paused or on a host without a spider
// instance; otherwise `schedule`, which asks tdbctl whether this node is the primary right now.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { isSpiderInstance } from '../config/instance.js';
import type { runSchedule } from '../cluster/schedule.js';
import { errorMessage } from '../errors.js';
import type { ScheduleOutcome } from './metrics.js';
import type { PauseState } from '../state/pause.js';
import type { ScheduleRecord } from '../state/daemon-status.js';

export interface FireDeps {
  config: AgentConfig;
  logger: Logger;
  pause: PauseState | undefined;
  schedule?: typeof runSchedule;
}

export interface FireResult extends ScheduleRecord {
  result: ScheduleOutcome;
}

export async function fireSchedule(deps: FireDeps, firedAt: Date): Promise<FireResult> {
  const { config } = deps;
  const log = deps.logger.child({ cron: config.schedule.cron, firedAt: firedAt.toISOString() });
  const at = new Date().toISOString();
  if (deps.pause) {
    log.info({ until: deps.pause.until, reason: deps.pause.reason }, 'schedule time reached while paused; no backup scheduled');
    return { at, result: 'paused' };
  }
  try {
    if (!discoverInstances(config.agent.configDir).instances.some(isSpiderInstance)) {
      log.info(
        { configDir: config.agent.configDir },
        'schedule time reached, but this host has no spider instance config; nothing scheduled',
      );
      return { at, result: 'not-spider' };
    }
    // Loaded at the first fire, not with the daemon: most hosts never schedule.
    const { openClusterSession, NotPrimaryError } = await import('../cluster/session.js');
    const schedule = deps.schedule ?? (await import('../cluster/schedule.js')).runSchedule;
    const session = openClusterSession(config, undefined);
    try {
      const r = await schedule({ config, logger: deps.logger }, session, {});
      log.info({ backupId: r.backupId, tasks: r.tasks }, 'schedule time reached; global backup scheduled');
      return { at, result: 'scheduled', backupId: r.backupId };
    } catch (err) {
      if (!(err instanceof NotPrimaryError)) throw err;
      log.info({ spider: err.spider }, 'schedule time reached; this spider node is not the primary, so it schedules nothing');
      return { at, result: 'not-primary' };
    } finally {
      await session.close();
    }
  } catch (err) {
    const error = errorMessage(err);
    log.error({ err: error }, 'scheduled run failed');
    return { at, result: 'error', error };
  }
}
