// `spiderbackup daemon`: the per-host agent. Wires the tick loop, the cron trigger, the metrics
// endpoint, the lock and the signals together; the work itself is in tick.ts and fire.ts, a
// SIGHUP's reload in reload.ts. Each backup lives in its own detached supervisor, so this process
// can die, restart or be upgraded while backups go on.
import { mkdirSync } from 'node:fs';
import type { HeldSignals } from '../signals.js';
import { parseListen } from '../config/agent.js';
import { Backoff } from '../check/backoff.js';
import { CONNECTIONS, purgeAll } from '../check/check.js';
import { discoverInstances } from '../config/discover.js';
import type { InstanceConfig } from '../config/instance.js';
import { KeptConnections } from '../db/connections.js';
import { UnloggedSessions } from '../check/unlogged-sessions.js';
import type { CheckReport } from '../check/check.js';
import { countJournal } from '../host/journal.js';
import { errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import type { ClusterPause } from '../sql/cluster-pause.js';
import { loadDaemonConfig } from './config.js';
import { startCron } from './cron.js';
import { fireSchedule } from './fire.js';
import { healthOf } from './health.js';
import { MetricsListenError, startHttp, type HttpEndpoint } from './http.js';
import { acquireDaemonLock, type DaemonLock } from './lock.js';
import { attachMetrics, createMetrics, type DaemonMetrics } from './metrics.js';
import { createAgentEvents, type AgentEvents } from '../check/events.js';
import { createTracker, type BackupTracker } from './backup-tracker.js';
import { pauseInForce, type PauseState } from '../state/pause.js';
import { buildStatus, writeStatus, type DaemonStatus, type ScheduleRecord, type TickRecord } from '../state/daemon-status.js';
import { reloadDaemon, type Reloadable } from './reload.js';
import { RestorePointWatcher, retentionSet } from './restore-points.js';
import { AutoRestorePoints } from './auto-points.js';
import { RestoreDrill, type RunRestore } from './drill.js';
import { drillGauges } from '../recovery/drill-model.js';
import { runTick } from './tick.js';
import { createCrondWatch } from './crond-watch.js';
import { createRepoWatch } from './repo-watch.js';
import { createArchiveWatch } from './archive-watch.js';
import { createRestoreWatch } from './restore-watch.js';
import { createTicker, type Ticker } from './ticker.js';
import type { Seen } from './transitions.js';
import type { TaskRow } from '../task/task.js';
import type { ClockLook } from '../check/clock-step.js';
import { clusterPauseKnown, instancesDown, type InstanceDown } from '../state/instances-down.js';

/** How long SIGTERM waits for a tick (or a schedule) in flight; the unit's TimeoutStopSec is longer. */
export const SHUTDOWN_WAIT_MS = 30_000;

export interface DaemonOptions {
  agentConfigFile: string | undefined;
  /** Unknown sections and keys in the agent config are errors (at start and on reload). */
  strict?: boolean;
  /** SIGHUP/SIGUSR2 held since the process started; their handlers take them over (signals.ts). */
  signals?: HeldSignals;
  /** The restore command's coordinator (src/recovery/run-restore.ts), which the [drill] runs. */
  runRestore: RunRestore;
}

/** Everything the daemon knows (what a reload switches included); owned by one runDaemon call, never shared. */
interface State extends Reloadable {
  readonly startedAt: Date;
  lastTick: TickRecord | undefined;
  lastSuccessfulTickAt: Date | undefined;
  lastError: { at: Date; message: string } | undefined;
  report: CheckReport | undefined;
  seen: Seen;
  /** Problems logged by earlier ticks, so each is logged when it appears and when it clears. */
  problemKeys: ReadonlySet<string>;
  paused: PauseState | undefined;
  /** Served, unpaused instances the last tick could not reach or log in to: /healthz and status say so. */
  down: InstanceDown[];
  journalBacklog: number;
  lastSchedule: ScheduleRecord | undefined;
  /** A cron fire in progress (shutdown waits for it like for a tick). */
  firing: Promise<void> | undefined;
  readonly backoff: Backoff;
  readonly purgedAt: Map<string, number>;
  /** One kept connection per served instance, for the ticks. */
  readonly connections: KeptConnections;
  /** A second kept connection per replica, unbinlogged, for the agent's own writes there. */
  readonly unlogged: UnloggedSessions;
  readonly lastFinished: Map<string, TaskRow | undefined>;
  /** Each instance's last look for a step of its database clock (check/clock-step.ts). */
  readonly clockLooks: Map<string, ClockLook>;
  /** The purge in flight (off the tick), and the purge problems already logged. */
  purging: Promise<void> | undefined;
  purgeProblems: Set<string>;
  /** What happened, for the metrics (subscribed for the daemon's life) and the tick's logging. */
  readonly events: AgentEvents;
  readonly tracker: BackupTracker;
}

/**
 * Runs until SIGTERM/SIGINT and resolves with the exit code. Start-up problems (bad config,
 * another daemon, metrics address taken) reject, so the service fails visibly instead of idling.
 */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const config = loadDaemonConfig(opts.agentConfigFile, { strict: opts.strict === true });
  mkdirSync(config.agent.stateDir, { recursive: true, mode: 0o755 });
  const lock = await acquireDaemonLock(config.agent.hostLock, { agentConfig: config.file, stateDir: config.agent.stateDir });
  try {
    const s: State = {
      config,
      log: createLogger({ level: config.log.level, file: config.log.file, fd: 1 }),
      startedAt: new Date(),
      lastTick: undefined,
      lastSuccessfulTickAt: undefined,
      lastError: undefined,
      report: undefined,
      seen: new Map(),
      problemKeys: new Set(),
      paused: undefined,
      down: [],
      journalBacklog: journalBacklog(config.agent.stateDir, () => {}),
      lastSchedule: undefined,
      cron: undefined,
      http: undefined,
      firing: undefined,
      stopping: false,
      backoff: new Backoff(),
      purgedAt: new Map(),
      connections: new KeptConnections(CONNECTIONS),
      unlogged: new UnloggedSessions(new KeptConnections(CONNECTIONS)),
      lastFinished: new Map(),
      clockLooks: new Map(),
      purging: undefined,
      purgeProblems: new Set(),
      events: createAgentEvents(),
      tracker: createTracker(),
    };
    for (const w of config.warnings) s.log.logger.warn(w);
    const metrics = createMetrics();
    attachMetrics(s.events, metrics);
    metrics.served(servedPorts(config.agent.configDir));
    await startMetricsEndpoint(s, metrics, true);
    return await serve(opts, s, metrics, lock);
  } finally {
    lock.release();
  }
}

function serve(opts: DaemonOptions, s: State, metrics: DaemonMetrics, lock: DaemonLock): Promise<number> {
  const logger = () => s.log.logger;
  const noteError = (message: string) => {
    s.lastError = { at: new Date(), message };
  };
  // The old scheduler's jobs, read from mysql-crond's own list: off the tick, every few minutes.
  const crond = createCrondWatch({
    binary: () => s.config.migration.mysqlCrond,
    logger,
    onChange: () => save('running'),
  });
  // The repository, checked off the tick: at start, on reload, after a failure, every few minutes.
  const repoWatch = createRepoWatch({
    config: () => s.config,
    logger,
    onChange: (problem) => {
      if (problem !== undefined) noteError(`repository: ${problem}`);
      save('running');
    },
  });
  // The binlog archivers of this host's shard masters: off the tick, never under the host lock.
  const archive = createArchiveWatch({
    config: () => s.config,
    logger,
    onLag: (views, maxLagS) => {
      metrics.archiveLag(views, maxLagS);
      save('running');
    },
    // Defined below; asked only once both run.
    restoring: (host, port) => restores.restoring({ host, port }),
  });
  // The restore tasks of `spiderbackup restore` for the instances served here: off the tick.
  const restores = createRestoreWatch({
    config: () => s.config,
    logger,
    beforeWorker: (target, why) => archive.hold(target.host, target.port, why),
    onEvent: (e) => {
      const where = { restoreId: e.restoreId, host: e.target.host, port: e.target.port, attempt: e.attempt };
      if (e.kind === 'started') s.events.emit('restoreStarted', { ...where, pid: e.pid });
      else {
        s.events.emit('restoreLost', { ...where, why: e.why });
        noteError(`restore ${e.restoreId} ${e.target.host}:${e.target.port}: ${e.why}`);
      }
    },
  });
  const save = (state: DaemonStatus['state']) => {
    try {
      writeStatus(
        s.config.agent.stateDir,
        buildStatus({
          state,
          pid: process.pid,
          startedAt: s.startedAt,
          now: new Date(),
          config: s.config,
          metricsAddress: s.http?.address,
          lastTick: s.lastTick,
          lastSuccessfulTickAt: s.lastSuccessfulTickAt,
          lastError: s.lastError,
          nextRun: s.cron?.nextRun(),
          lastSchedule: s.lastSchedule,
          report: s.report,
          down: s.down,
          journalBacklog: s.journalBacklog,
          mysqlCrond: crond.lines(),
          repository: repoWatch.line(),
          binlogArchive: archive.lines(),
          drill: drill.status(),
        }),
      );
    } catch (err) {
      logger().error({ err: errorMessage(err) }, 'cannot write status.json');
    }
  };

  const refreshPause = (): PauseState | undefined => {
    const { pause, error } = pauseInForce(s.config.agent.stateDir, new Date());
    if (error !== undefined) {
      logger().error({ err: error }, 'pause file damaged; treated as paused');
      noteError(error);
    }
    if ((pause === undefined) !== (s.paused === undefined)) {
      if (pause)
        logger().info(
          { until: pause.until, reason: pause.reason, by: pause.by },
          'paused: no new backup starts and no schedule fires; housekeeping, quit and journal delivery go on',
        );
      else logger().info('not paused any more: backups start and the schedule fires again');
    }
    s.paused = pause;
    metrics.paused(pause !== undefined);
    return pause;
  };

  // Old rows go at most hourly per instance, on connections of their own, never holding up a tick.
  const purge = (instances: readonly InstanceConfig[]) => {
    if (s.purging || s.stopping) return;
    const seen = new Set<string>();
    s.purging = purgeAll({ config: s.config, logger: logger(), purgedAt: s.purgedAt, events: s.events }, instances, (key, fields, msg) => {
      seen.add(key);
      if (s.purgeProblems.has(key)) return;
      logger().error(fields, `${msg} (logged once until it clears)`);
      noteError(`port ${String(fields.port)}: ${msg}: ${String(fields.err)}`);
    })
      .catch((err: unknown) => logger().error({ err: errorMessage(err) }, 'purge failed'))
      .finally(() => {
        for (const k of s.purgeProblems) if (!seen.has(k)) logger().info({ problem: k }, 'problem cleared');
        s.purgeProblems = seen;
        s.purging = undefined;
      });
  };

  // The spider master's agent follows each backup whose spider task it ran, to take its restore point.
  // Set once the stop signals are handled: steps down (exit 1, systemd restarts it) when the lock is lost.
  let stepDown: (why: string) => void = () => {};
  const lockLost = (): boolean => {
    const why = lock.lost();
    if (why !== undefined) stepDown(why);
    return why !== undefined;
  };
  const restorePoints = new RestorePointWatcher({
    config: () => s.config,
    logger,
    taken: (pauseMs) => metrics.restorePointTaken(pauseMs),
    failed: () => metrics.restorePointFailed(),
  });
  // [schedule] restore_point_interval: points of the primary spider node's agent, off the tick.
  const autoPoints = new AutoRestorePoints({
    config: () => s.config,
    logger,
    paused: () => s.paused !== undefined || s.report?.clusterPause !== undefined,
    taken: (pauseMs) => metrics.restorePointTaken(pauseMs),
    failed: (message) => {
      metrics.restorePointFailed();
      noteError(message);
    },
  });
  // [drill]: the primary spider node's agent restores onto scratch instances on its own cron.
  const drill = new RestoreDrill({
    config: () => s.config,
    logger,
    paused: () => {
      if (refreshPause() !== undefined) return 'this host is paused';
      const cp = s.report?.clusterPause;
      return cp ? `the cluster is paused (${cp.reason}, until ${cp.until})` : undefined;
    },
    runRestore: opts.runRestore,
    ended: (m) => {
      metrics.drillEnded(drillGauges(m), m.last.outcome !== 'success');
      if (m.last.outcome !== 'success') noteError(`restore drill: ${m.last.error ?? 'failed'}`);
      save('running');
    },
    changed: () => save('running'),
  });
  const planDrill = () => {
    metrics.drill(s.config.drill.cron !== undefined, drill.last && drillGauges(drill.last));
    drill.plan();
  };
  const ticker: Ticker = createTicker({
    intervalMs: s.config.agent.tickIntervalMs,
    tick: async (reason) => {
      if (lockLost()) return;
      const pause = refreshPause();
      const r = await runTick(
        {
          config: s.config,
          logger: logger(),
          metrics,
          events: s.events,
          tracker: s.tracker,
          pause,
          seen: s.seen,
          problemKeys: s.problemKeys,
          backoff: s.backoff,
          connections: s.connections,
          unlogged: s.unlogged,
          lastFinished: s.lastFinished,
          clockLooks: s.clockLooks,
          purge,
          archiveOf: (host, port) => archive.presenceOf(host, port),
          holdWrites: (instance) => restores.holdsWrites(instance),
          onSupervisorExit: () => ticker.trigger('supervisor exited'),
        },
        reason,
      );
      s.lastTick = r.record;
      s.seen = r.seen;
      s.problemKeys = r.problemKeys;
      if (r.report) {
        const clusterPause = clusterPauseKnown(s.report?.clusterPause, r.report, new Date());
        logClusterPauseChange(logger(), s.report?.clusterPause, clusterPause);
        s.report = clusterPause === r.report.clusterPause ? r.report : { ...r.report, clusterPause };
        s.down = instancesDown(s.report, pause !== undefined || clusterPause !== undefined);
      }
      if (r.record.ok) s.lastSuccessfulTickAt = new Date(r.record.finishedAt);
      else noteError(r.record.error as string);
      for (const p of r.problems) noteError(p);
      for (const { task, file } of r.succeeded)
        if ((s.config.schedule.restorePoints || retentionSet(s.config)) && task.wrapper.toUpperCase() === 'SPIDER')
          restorePoints.watch(task.backupId, file);
      s.journalBacklog = journalBacklog(s.config.agent.stateDir, noteError);
      metrics.journalBacklog(s.journalBacklog);
      save('running');
      crond.poke(Date.now());
      repoWatch.poke(Date.now(), r.repositoryFailed);
    },
    onLate: ({ lateByMs, durationMs, intervalMs }) =>
      logger().warn({ durationMs, intervalMs, lateByMs }, 'tick took longer than tick_interval; the next tick was delayed'),
  });

  const fire = (at: Date): Promise<void> => {
    // Two daemons would both fire: a daemon whose lock is gone fires nothing.
    if (lockLost()) return Promise.resolve();
    const run = (async () => {
      // A cluster-wide pause seen by the last tick holds the schedule as well as this host's own.
      const cp = s.report?.clusterPause;
      const pause = refreshPause() ?? (cp && { until: cp.until, reason: `cluster: ${cp.reason}`, since: '', by: cp.by });
      const r = await fireSchedule({ config: s.config, logger: logger(), pause }, at);
      s.lastSchedule = r;
      metrics.scheduled(r.result);
      if (r.result === 'error') noteError(`schedule: ${r.error}`);
      if (r.result === 'scheduled') ticker.trigger('scheduled');
      save('running');
    })();
    s.firing = run.finally(() => {
      s.firing = undefined;
    });
    return s.firing;
  };

  const armCron = () => {
    s.cron?.stop();
    s.cron = s.config.schedule.cron === undefined ? undefined : startCron(s.config.schedule.cron, fire, logger());
  };

  let reloads = Promise.resolve();
  const reload = () =>
    reloadDaemon(s, {
      agentConfigFile: opts.agentConfigFile,
      strict: opts.strict === true,
      ticker,
      fire,
      listenMetrics: (listen) => listenMetrics(s, metrics, listen),
      noteError,
      save: () => save('running'),
      applied: (ports) => {
        metrics.served(ports);
        crond.poke(Date.now(), true);
        repoWatch.poke(Date.now(), true);
        autoPoints.plan();
        planDrill();
        archive.poke();
        restores.poke();
      },
    });

  const shutdown = async (signal: NodeJS.Signals | 'lock lost'): Promise<number> => {
    logger().info({ signal }, 'stopping: no new ticks; running backups are left to their supervisors');
    s.cron?.stop();
    const deadline = Date.now() + SHUTDOWN_WAIT_MS;
    const idle = await ticker.stop(SHUTDOWN_WAIT_MS);
    const fired = s.firing ? await settledWithin(s.firing, Math.max(0, deadline - Date.now())) : true;
    if (s.purging) await settledWithin(s.purging, Math.max(0, deadline - Date.now()));
    await Promise.all([
      restorePoints.stop(Math.max(0, deadline - Date.now())),
      autoPoints.stop(Math.max(0, deadline - Date.now())),
      drill.stop(Math.max(0, deadline - Date.now())),
      settledWithin(archive.stop(), Math.max(0, deadline - Date.now())),
      settledWithin(restores.stop(), Math.max(0, deadline - Date.now())),
    ]);
    for (const look of [crond.inFlight(), repoWatch.inFlight()]) if (look) await settledWithin(look, Math.max(0, deadline - Date.now()));
    await s.connections.close();
    await s.unlogged.close();
    if (!idle || !fired)
      logger().warn({ waitedMs: SHUTDOWN_WAIT_MS }, 'work still in flight; exiting without it (running backups are not affected)');
    await s.http?.close();
    save('stopped');
    logger().info('daemon stopped');
    s.log.flush();
    return 0;
  };

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (s.stopping) {
        logger().warn({ signal }, 'second stop signal; exiting at once');
        s.log.flush();
        resolve(0);
        return;
      }
      s.stopping = true;
      void shutdown(signal).then(resolve);
    };
    stepDown = (why) => {
      if (s.stopping) return;
      logger().error(
        { lock: lock.file, why },
        'daemon lock lost: another daemon could run beside this one; stopping (exit 1) so that systemd restarts this one under the lock',
      );
      noteError(`daemon lock lost: ${why}`);
      s.stopping = true;
      void shutdown('lock lost').then(() => resolve(1));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    const take = (sig: NodeJS.Signals, handler: () => void) => (opts.signals ? opts.signals.take(sig, handler) : process.on(sig, handler));
    take('SIGHUP', () => {
      reloads = reloads
        .then(reload)
        .catch((err: unknown) => logger().error({ err: errorMessage(err) }, 'reload failed; the previous configuration stays in force'));
    });
    take('SIGUSR2', () => {
      try {
        s.log.reopen();
        logger().info('log file reopened (SIGUSR2)');
      } catch (err) {
        logger().error({ err: errorMessage(err) }, 'cannot reopen the log file');
      }
    });
    // A bug must not leave a half-working agent behind: log it and exit; systemd restarts us.
    const crash = (err: unknown) => {
      logger().fatal({ err: errorMessage(err), stack: (err as Error | undefined)?.stack }, 'internal error; exiting');
      s.log.flush();
      lock.release();
      process.exit(70);
    };
    process.on('uncaughtException', crash);
    process.on('unhandledRejection', crash);

    const c = s.config;
    logger().info(
      {
        agentConfig: c.file,
        configDir: c.agent.configDir,
        stateDir: c.agent.stateDir,
        tickIntervalMs: c.agent.tickIntervalMs,
        cron: c.schedule.cron,
        metrics: s.http?.address ?? 'off',
      },
      'daemon started',
    );
    armCron();
    autoPoints.plan();
    planDrill();
    save('running');
    crond.poke(Date.now(), true);
    repoWatch.poke(Date.now(), true);
    archive.start();
    restores.start();
    ticker.start();
  });
}

/** At start-up a failure to listen is fatal; on reload it is logged and metrics stay off. */
async function startMetricsEndpoint(s: State, metrics: DaemonMetrics, fatal: boolean): Promise<void> {
  const { listen } = s.config.metrics;
  if (listen === 'off') return;
  try {
    s.http = await listenMetrics(s, metrics, listen);
  } catch (err) {
    const message = `cannot listen on ${listen} for metrics: ${errorMessage(err)}`;
    if (fatal) throw new MetricsListenError(message);
    s.log.logger.error({ listen }, `${message}; metrics stay off until the next reload`);
    s.lastError = { at: new Date(), message };
  }
}

/** The endpoint on `listen`; its /healthz reads the daemon's state as it is at each request. */
function listenMetrics(s: State, metrics: DaemonMetrics, listen: string): Promise<HttpEndpoint> {
  const { host, port } = parseListen(listen);
  return startHttp(host, port, {
    registry: metrics.registry,
    health: () =>
      healthOf(
        {
          startedAt: s.startedAt,
          lastTickOk: s.lastTick?.ok,
          lastSuccessfulTickAt: s.lastSuccessfulTickAt,
          lastError: s.lastTick?.error ?? s.lastError?.message,
          intervalMs: s.config.agent.tickIntervalMs,
          paused: s.paused !== undefined,
          journalBacklog: s.journalBacklog,
          instanceErrors: s.report?.instances.filter((r) => r.error !== undefined).length ?? 0,
          instancesDown: s.down,
        },
        new Date(),
      ),
    onError: (err) => s.log.logger.error({ err: err.message }, 'metrics endpoint error'),
  });
}

function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    t = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    timeout,
  ]).finally(() => clearTimeout(t));
}

/** The ports of the drop-ins found at start (the first tick finds them again, and any added later). */
function servedPorts(configDir: string): number[] {
  try {
    return discoverInstances(configDir).instances.map((i) => i.port);
  } catch {
    return []; // the first tick reports what is wrong with config_dir
  }
}

/** The journal's backlog for status and metrics; an unreadable journal is an error shown, not a crash. */
function journalBacklog(stateDir: string, onError: (message: string) => void): number {
  try {
    return countJournal(stateDir);
  } catch (err) {
    onError(errorMessage(err));
    return 0;
  }
}

/** The cluster-wide pause comes from the instances' tables (pause --cluster): said once when it starts and ends. */
function logClusterPauseChange(logger: Logger, was: ClusterPause | undefined, now: ClusterPause | undefined): void {
  if ((was === undefined) === (now === undefined)) return;
  if (now) logger.info({ until: now.until, reason: now.reason, by: now.by }, 'cluster paused (pause --cluster): no new backup starts');
  else logger.info('cluster pause over: backups start again');
}
