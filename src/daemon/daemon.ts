// `spiderbackup daemon`: the per-host agent. Every tick it runs the check step without waiting for
// backups (each backup lives in its own detached supervisor, so this process can die, restart or
// be upgraded while backups go on); on a spider host it also runs `schedule` from [schedule] cron.
import { mkdirSync, readdirSync } from 'node:fs';
import { parseListen, type AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { isSpiderInstance } from '../config/instance.js';
import { runCheck, type CheckDeps, type CheckReport } from '../core/check.js';
import { journalDir } from '../core/journal.js';
import { runSchedule } from '../core/schedule.js';
import { errorMessage } from '../errors.js';
import { createLogger, type AgentLogger } from '../log.js';
import { loadDaemonConfig, planReload } from './config.js';
import { startCron, type CronJob } from './cron.js';
import { healthOf } from './health.js';
import { startHttp, type HttpEndpoint } from './http.js';
import { daemonAlive } from './liveness.js';
import { acquireLock } from './lock.js';
import { createMetrics, type DaemonMetrics, type ScheduleOutcome } from './metrics.js';
import { activePause, readPause, type PauseState } from './pause.js';
import { hasSpiderInstance, instanceStatuses, writeStatus, type DaemonStatus, type ScheduleRecord, type TickRecord } from './status.js';
import { createTicker, type Ticker } from './ticker.js';
import { finishedSince, type Seen } from './transitions.js';

/** How long SIGTERM waits for a tick in flight; systemd's TimeoutStopSec must be longer. */
export const SHUTDOWN_WAIT_MS = 30_000;

export interface DaemonOptions {
  agentConfigFile: string | undefined;
}

interface DaemonState {
  config: AgentConfig;
  log: AgentLogger;
  startedAt: Date;
  lastTick: TickRecord | undefined;
  lastSuccessfulTickAt: Date | undefined;
  lastError: { at: Date; message: string } | undefined;
  report: CheckReport | undefined;
  seen: Seen;
  paused: PauseState | undefined;
  journalBacklog: number;
  lastSchedule: ScheduleRecord | undefined;
  cron: CronJob | undefined;
  http: HttpEndpoint | undefined;
}

/**
 * Runs until SIGTERM/SIGINT; resolves with the exit code. Start-up problems (bad config, another
 * daemon, metrics address taken) reject, so the service fails visibly instead of idling.
 */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const config = loadDaemonConfig(opts.agentConfigFile);
  mkdirSync(config.agent.stateDir, { recursive: true, mode: 0o755 });
  const lock = await acquireLock(config.agent.stateDir, daemonAlive);
  let state: DaemonState;
  try {
    const log = createLogger({ level: config.log.level, file: config.log.file, fd: 1 });
    state = {
      config,
      log,
      startedAt: new Date(),
      lastTick: undefined,
      lastSuccessfulTickAt: undefined,
      lastError: undefined,
      report: undefined,
      seen: new Map(),
      paused: undefined,
      journalBacklog: countJournal(config.agent.stateDir),
      lastSchedule: undefined,
      cron: undefined,
      http: undefined,
    };
  } catch (err) {
    lock.release();
    throw err;
  }
  const metrics = createMetrics();
  const d = new Daemon(opts, state, metrics);
  try {
    await d.startHttp(true);
  } catch (err) {
    lock.release();
    throw err;
  }
  const code = await d.run();
  lock.release();
  return code;
}

class Daemon {
  private readonly ticker: Ticker;
  private stopping: Promise<number> | undefined;
  private wasPaused = false;

  constructor(
    private readonly opts: DaemonOptions,
    private readonly s: DaemonState,
    private readonly metrics: DaemonMetrics,
  ) {
    this.ticker = createTicker({
      intervalMs: s.config.agent.tickIntervalMs,
      tick: (reason) => this.tick(reason),
      onLate: ({ lateByMs, durationMs, intervalMs }) =>
        this.logger.warn({ durationMs, intervalMs, lateByMs }, 'tick took longer than tick_interval; the next tick was delayed'),
    });
  }

  private get logger() {
    return this.s.log.logger;
  }

  run(): Promise<number> {
    const { config } = this.s;
    this.logger.info(
      { pid: process.pid, agentConfig: config.file, configDir: config.agent.configDir, stateDir: config.agent.stateDir, tickIntervalMs: config.agent.tickIntervalMs, cron: config.schedule.cron, metrics: this.s.http?.address ?? 'off' },
      'daemon started',
    );
    this.startCron();
    this.saveStatus('running');
    return new Promise<number>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        if (this.stopping) {
          this.logger.warn({ signal }, 'second stop signal; exiting without waiting for the tick');
          this.s.log.flush();
          resolve(0);
          return;
        }
        this.stopping = this.shutdown(signal);
        void this.stopping.then(resolve);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      process.on('SIGHUP', () => {
        this.reload().catch((err: unknown) => this.logger.error({ err: errorMessage(err) }, 'reload failed; the previous configuration stays in force'));
      });
      process.on('SIGUSR2', () => {
        try {
          this.s.log.reopen();
          this.logger.info('log file reopened (SIGUSR2)');
        } catch (err) {
          this.logger.error({ err: errorMessage(err) }, 'cannot reopen the log file');
        }
      });
      // A bug must not leave a half-working agent: log it, and let systemd restart us.
      const crash = (err: unknown) => {
        this.logger.fatal({ err: errorMessage(err), stack: (err as Error)?.stack }, 'internal error; exiting');
        this.s.log.flush();
        process.exit(70);
      };
      process.on('uncaughtException', crash);
      process.on('unhandledRejection', crash);
      this.ticker.start();
    });
  }

  // ---- the tick -------------------------------------------------------------------------------

  private async tick(reason: string): Promise<void> {
    const { config } = this.s;
    const startedAt = new Date();
    const started: string[] = [];
    const paused = this.currentPause();
    let error: string | undefined;
    try {
      const deps: CheckDeps = {
        config,
        logger: this.logger,
        logFd: 1,
        onEvent: (event, task) => {
          if (event === 'started') this.metrics.backup('started', task.port);
          else if (event === 'killed') this.metrics.backup('killed', task.port);
          else this.metrics.housekeeping(event);
        },
        onStarted: (task, pid, done) => {
          started.push(`${task.backupId}@${task.port}`);
          // The next instance of the backup id may start as soon as this one ends.
          void done.then((code) => {
            this.logger.debug({ backupId: task.backupId, port: task.port, supervisorPid: pid, exitCode: code }, 'supervisor exited');
            this.ticker.trigger('supervisor exited');
          });
        },
      };
      const report = await runCheck(deps, { run: true, waitForBackups: false, start: paused === undefined });
      this.observe(report);
    } catch (err) {
      error = errorMessage(err);
      this.logger.error({ err: error }, 'tick failed');
    }
    const finishedAt = new Date();
    const durationMs = finishedAt.getTime() - startedAt.getTime();
    const ok = error === undefined;
    this.s.lastTick = { reason, startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), durationMs, ok, error, started, paused: paused !== undefined };
    if (ok) this.s.lastSuccessfulTickAt = finishedAt;
    else this.noteError(error as string, finishedAt);
    this.s.journalBacklog = countJournal(config.agent.stateDir);
    this.metrics.tick(durationMs / 1000, ok, finishedAt);
    this.metrics.journalBacklog(this.s.journalBacklog);
    this.logger.debug({ reason, durationMs, started }, 'tick done');
    this.saveStatus('running');
  }

  private observe(report: CheckReport): void {
    this.s.report = report;
    const instances = report.instances.map((r) => ({ port: r.instance.port, tasks: r.tasks, unreadable: r.error !== undefined }));
    const finished = finishedSince(this.s.seen, instances);
    this.s.seen = finished.seen;
    for (const t of finished.succeeded) this.metrics.backup('succeeded', t.port);
    for (const t of finished.failed) this.metrics.backup('failed', t.port);
    this.metrics.tasks(new Map(report.instances.map((r) => [r.instance.port, r.tasks])));
    const failing = report.instances.filter((r) => r.error !== undefined);
    this.metrics.instances(report.instances.length - failing.length, failing.length, report.configErrors.length);
    const at = new Date();
    for (const r of failing) this.noteError(`${r.instance.file}: ${r.error}`, at);
    for (const e of report.configErrors) this.noteError(e.message, at);
  }

  /** The pause in force; a damaged pause file counts as a pause, so an operator's stop is never ignored. */
  private currentPause(): PauseState | undefined {
    const now = new Date();
    let pause: PauseState | undefined;
    try {
      pause = activePause(readPause(this.s.config.agent.stateDir), now);
    } catch (err) {
      const message = errorMessage(err);
      this.logger.error({ err: message }, 'pause file damaged; treated as paused');
      this.noteError(message, now);
      pause = { until: 'unknown', reason: message, since: '', by: undefined };
    }
    if ((pause !== undefined) !== this.wasPaused) {
      if (pause) {
        this.logger.info({ until: pause.until, reason: pause.reason, by: pause.by }, 'paused: no new backup starts and no schedule fires; housekeeping, quit and journal delivery go on');
      } else {
        this.logger.info('not paused any more: backups start and the schedule fires again');
      }
      this.wasPaused = pause !== undefined;
    }
    this.s.paused = pause;
    this.metrics.paused(pause !== undefined);
    return pause;
  }

  private noteError(message: string, at: Date): void {
    this.s.lastError = { at, message };
  }

  // ---- the daily schedule ---------------------------------------------------------------------

  private startCron(): void {
    this.s.cron?.stop();
    this.s.cron = undefined;
    const expr = this.s.config.schedule.cron;
    if (expr === undefined) return;
    this.s.cron = startCron(expr, (at) => this.fire(at), this.logger);
  }

  private async fire(at: Date): Promise<void> {
    const { config } = this.s;
    const log = this.logger.child({ cron: config.schedule.cron, firedAt: at.toISOString() });
    let outcome: ScheduleOutcome;
    const record: ScheduleRecord = { at: new Date().toISOString(), result: '' };
    try {
      const pause = this.currentPause();
      if (pause) {
        outcome = 'paused';
        log.info({ until: pause.until, reason: pause.reason }, 'schedule time reached while paused; no backup scheduled');
      } else if (!discoverInstances(config.agent.configDir).instances.some(isSpiderInstance)) {
        outcome = 'not-spider';
        log.info({ configDir: config.agent.configDir }, 'schedule time reached, but this host has no spider instance config; nothing scheduled');
      } else {
        const r = await runSchedule({ config, logger: this.logger }, {});
        if (r.kind === 'not-primary') {
          outcome = 'not-primary';
          log.info({ spider: r.spider }, 'schedule time reached; this spider node is not the primary, so it schedules nothing');
        } else {
          outcome = 'scheduled';
          record.backupId = r.backupId;
          log.info({ backupId: r.backupId, tasks: r.tasks }, 'schedule time reached; global backup scheduled');
          this.ticker.trigger('scheduled');
        }
      }
    } catch (err) {
      outcome = 'error';
      record.error = errorMessage(err);
      log.error({ err: record.error }, 'scheduled run failed');
      this.noteError(`schedule: ${record.error}`, new Date());
    }
    record.result = outcome;
    this.s.lastSchedule = record;
    this.metrics.scheduled(outcome);
    this.saveStatus('running');
  }

  // ---- metrics endpoint -----------------------------------------------------------------------

  /** At start-up a failure to listen is fatal; on reload it is logged and metrics stay off. */
  async startHttp(fatal: boolean): Promise<void> {
    const { metrics: m } = this.s.config;
    if (m.listen === 'off') return;
    const { host, port } = parseListen(m.listen);
    try {
      this.s.http = await startHttp(host, port, {
        registry: this.metrics.registry,
        health: () => this.health(),
        onError: (err) => this.logger.error({ err: err.message }, 'metrics endpoint error'),
      });
    } catch (err) {
      const message = `cannot listen on ${m.listen} for metrics: ${errorMessage(err)}`;
      if (fatal) throw new MetricsListenError(message);
      this.logger.error({ listen: m.listen }, `${message}; metrics stay off until the next reload`);
      this.noteError(message, new Date());
    }
  }

  private health() {
    return healthOf(
      {
        startedAt: this.s.startedAt,
        lastTickOk: this.s.lastTick?.ok,
        lastSuccessfulTickAt: this.s.lastSuccessfulTickAt,
        lastError: this.s.lastTick?.error ?? this.s.lastError?.message,
        intervalMs: this.s.config.agent.tickIntervalMs,
        paused: this.s.paused !== undefined,
        journalBacklog: this.s.journalBacklog,
        instanceErrors: this.s.report?.instances.filter((r) => r.error !== undefined).length ?? 0,
      },
      new Date(),
    );
  }

  // ---- reload and shutdown --------------------------------------------------------------------

  private async reload(): Promise<void> {
    const old = this.s.config;
    let next: AgentConfig;
    try {
      next = loadDaemonConfig(this.opts.agentConfigFile);
    } catch (err) {
      const message = errorMessage(err);
      this.s.log.reopen();
      this.logger.error({ err: message }, 'reload: agent config not usable; the previous configuration stays in force');
      this.noteError(`reload: ${message}`, new Date());
      this.saveStatus('running');
      return;
    }
    const plan = planReload(old, next);
    this.s.config = plan.config;
    if (plan.logFile) {
      const previous = this.s.log;
      try {
        this.s.log = createLogger({ level: plan.config.log.level, file: plan.config.log.file, fd: 1 });
        previous.logger.info({ file: plan.config.log.file ?? 'stdout' }, 'logging moves to a new destination');
        previous.flush();
      } catch (err) {
        this.logger.error({ err: errorMessage(err) }, 'reload: cannot open the new log file; logging stays where it was');
      }
    } else {
      this.s.log.reopen();
      if (plan.logLevel) this.logger.level = plan.config.log.level;
    }
    for (const k of plan.kept) this.logger.warn(k);
    if (plan.tickInterval) this.ticker.setInterval(plan.config.agent.tickIntervalMs);
    if (plan.cron) this.startCron();
    if (plan.metrics) {
      await this.s.http?.close();
      this.s.http = undefined;
      await this.startHttp(false);
    }
    const found = discoverInstances(plan.config.agent.configDir);
    this.logger.info(
      { agentConfig: plan.config.file, instances: found.instances.map((i) => i.port), skipped: found.errors.map((e) => e.file), tickIntervalMs: plan.config.agent.tickIntervalMs, cron: plan.config.schedule.cron, metrics: this.s.http?.address ?? 'off' },
      'configuration reloaded (SIGHUP)',
    );
    this.ticker.trigger('reload');
  }

  private async shutdown(signal: NodeJS.Signals): Promise<number> {
    this.logger.info({ signal }, 'stopping: no new ticks; running backups are left to their supervisors');
    this.s.cron?.stop();
    const idle = await this.ticker.stop(SHUTDOWN_WAIT_MS);
    if (!idle) this.logger.warn({ waitedMs: SHUTDOWN_WAIT_MS }, 'a tick was still running; exiting without it (its backups, if any, are not affected)');
    await this.s.http?.close();
    this.saveStatus('stopped');
    this.logger.info('daemon stopped');
    this.s.log.flush();
    return 0;
  }

  private saveStatus(state: DaemonStatus['state']): void {
    const { config, report } = this.s;
    const status: DaemonStatus = {
      format: 1,
      pid: process.pid,
      startedAt: this.s.startedAt.toISOString(),
      writtenAt: new Date().toISOString(),
      state,
      agentConfig: config.file,
      configDir: config.agent.configDir,
      stateDir: config.agent.stateDir,
      tickIntervalMs: config.agent.tickIntervalMs,
      metricsListen: this.s.http?.address ?? 'off',
      lastTick: this.s.lastTick,
      lastSuccessfulTickAt: this.s.lastSuccessfulTickAt?.toISOString(),
      lastError: this.s.lastError ? { at: this.s.lastError.at.toISOString(), message: this.s.lastError.message } : undefined,
      schedule: {
        cron: config.schedule.cron,
        spiderHost: report ? hasSpiderInstance(report) : false,
        nextRun: this.s.cron?.nextRun()?.toISOString(),
        lastRun: this.s.lastSchedule,
      },
      instances: report ? instanceStatuses(report) : [],
      configErrors: report ? report.configErrors.map((e) => ({ file: e.file, message: e.message })) : [],
      journalBacklog: this.s.journalBacklog,
    };
    try {
      writeStatus(config.agent.stateDir, status);
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'cannot write status.json');
    }
  }
}

export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError';
}

/** Final statuses waiting in the journal (entries are *.json; temporary and .bad files are not). */
function countJournal(stateDir: string): number {
  try {
    return readdirSync(journalDir(stateDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).length;
  } catch {
    return 0;
  }
}
