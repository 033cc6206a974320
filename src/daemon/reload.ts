// SIGHUP: the daemon reopens its log file and reads its agent config again, all or nothing.
// Whatever can fail (loading the file, listing config_dir, the new metrics listener, the new log
// file, the cron job) is prepared first while the old settings stay in force; then everything
// switches at once, with no await in between.
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances, type Discovered } from '../config/discover.js';
import { errorMessage } from '../errors.js';
import { createLogger, type AgentLogger } from '../log.js';
import { loadDaemonConfig, planReload, type ReloadPlan } from './config.js';
import { startCron, type CronJob } from './cron.js';
import { MetricsListenError, type HttpEndpoint } from './http.js';
import type { Ticker } from './ticker.js';

/** The part of the daemon's state a reload switches. */
export interface Reloadable {
  config: AgentConfig;
  log: AgentLogger;
  http: HttpEndpoint | undefined;
  cron: CronJob | undefined;
  /** Shutdown has begun: a reload does nothing, or drops what it prepared (read here, never set). */
  stopping: boolean;
}

export interface ReloadDeps {
  agentConfigFile: string | undefined;
  /** Unknown sections and keys in the agent config are errors. */
  strict: boolean;
  ticker: Pick<Ticker, 'setInterval' | 'trigger'>;
  /** What a re-armed cron job runs. */
  fire: (at: Date) => Promise<void>;
  /** A metrics endpoint on `listen` serving the daemon's registry and health. */
  listenMetrics: (listen: string) => Promise<HttpEndpoint>;
  noteError: (message: string) => void;
  /** Writes the status snapshot, so `status` shows why a reload was refused. */
  save: () => void;
  /** A reload took effect, serving these ports from now on (their counters get a 0 sample; mysql-crond is looked at again). */
  applied: (ports: number[]) => void;
}

export async function reloadDaemon(s: Reloadable, deps: ReloadDeps): Promise<void> {
  if (s.stopping) return;
  const logger = () => s.log.logger;
  // SIGHUP is also logrotate's signal: the current log file is reopened whatever else happens.
  try {
    s.log.reopen();
  } catch (err) {
    logger().error({ err: errorMessage(err) }, 'cannot reopen the log file');
  }
  const refuse = (err: unknown, what: string) => {
    logger().error({ err: errorMessage(err) }, `reload: ${what}; the previous configuration stays in force`);
    deps.noteError(`reload: ${errorMessage(err)}`);
    deps.save();
  };

  let plan: ReloadPlan;
  let found: Discovered;
  try {
    plan = planReload(s.config, loadDaemonConfig(deps.agentConfigFile, { strict: deps.strict }));
    found = discoverInstances(plan.config.agent.configDir);
  } catch (err) {
    refuse(err, 'agent config not usable');
    return;
  }

  const oldHttp = s.http;
  let oldHttpClosed = false;
  let nextHttp: HttpEndpoint | undefined;
  let nextLog: AgentLogger | undefined;
  let nextCron: CronJob | undefined;
  const rearmCron = plan.cron || (plan.logFile && plan.config.schedule.cron !== undefined);
  const undo = async () => {
    nextCron?.stop();
    await nextHttp?.close();
    if (oldHttpClosed && !s.stopping) {
      try {
        s.http = await deps.listenMetrics(s.config.metrics.listen);
      } catch (err) {
        s.http = undefined;
        logger().error(
          { err: errorMessage(err), listen: s.config.metrics.listen },
          'reload: cannot listen on the previous metrics address again; metrics stay off until the next reload',
        );
      }
    }
  };
  try {
    const { listen } = plan.config.metrics;
    if (plan.metricsSwitch === 'in-place') {
      // Same port: the old listener must let go of it first.
      await oldHttp?.close();
      oldHttpClosed = oldHttp !== undefined;
    }
    if (plan.metricsSwitch === 'alongside' || plan.metricsSwitch === 'in-place') {
      try {
        nextHttp = await deps.listenMetrics(listen);
      } catch (err) {
        throw new MetricsListenError(`cannot listen on ${listen} for metrics: ${errorMessage(err)}`);
      }
    }
    // Opened after the listener, so that no step after it can fail and leave its file open.
    if (plan.logFile) nextLog = createLogger({ level: plan.config.log.level, file: plan.config.log.file, fd: 1 });
    if (rearmCron && plan.config.schedule.cron !== undefined)
      nextCron = startCron(plan.config.schedule.cron, deps.fire, (nextLog ?? s.log).logger);
  } catch (err) {
    await undo();
    refuse(err, 'cannot apply the new configuration');
    return;
  }
  if (s.stopping) {
    // Shutdown began while preparing and closes only what is in force: drop what was prepared.
    await undo();
    return;
  }

  // The switch: nothing below can fail.
  s.config = plan.config;
  if (nextLog) {
    s.log.logger.info({ file: plan.config.log.file ?? 'stdout' }, 'logging moves to a new destination');
    s.log.flush();
    s.log = nextLog;
  } else if (plan.logLevel) {
    s.log.logger.level = plan.config.log.level;
  }
  if (plan.tickInterval) deps.ticker.setInterval(plan.config.agent.tickIntervalMs);
  if (rearmCron) {
    s.cron?.stop();
    s.cron = nextCron;
  }
  if (plan.metrics) s.http = nextHttp;

  if (plan.metrics && !oldHttpClosed) await oldHttp?.close();
  for (const k of plan.kept) logger().warn(k);
  for (const w of plan.config.warnings) logger().warn(w);
  logger().info(
    {
      agentConfig: plan.config.file,
      instances: found.instances.map((i) => i.port),
      skipped: found.errors.map((e) => e.file),
      tickIntervalMs: plan.config.agent.tickIntervalMs,
      cron: plan.config.schedule.cron,
      metrics: s.http?.address ?? 'off',
    },
    'configuration reloaded (SIGHUP)',
  );
  deps.ticker.trigger('reload');
  deps.applied(found.instances.map((i) => i.port));
}
