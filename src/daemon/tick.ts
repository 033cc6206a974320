// One tick of the daemon: the check step without waiting for backups (each runs under its own
// detached supervisor), and what it tells the metrics. The tick never throws: a failure is part
// of its result, and the loop goes on.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { runCheck, type CheckDeps, type CheckReport } from '../core/check.js';
import { errorMessage } from '../errors.js';
import type { Backoff } from '../core/backoff.js';
import type { DaemonMetrics } from './metrics.js';
import type { TickRecord } from '../state/daemon-status.js';
import { finishedSince, seenKeys, type Seen } from './transitions.js';
import type { InstanceConfig } from '../config/instance.js';
import { isFinished, STATUS } from '../core/status.js';
import type { KeptConnections } from '../kept-connections.js';
import type { TaskRow } from '../sql/tasks.js';
import { hostname } from 'node:os';
import type { Presence } from '../sql/presence.js';
import { packageVersion } from '../version.js';
import type { PauseState } from '../state/pause.js';
import type { ClusterPause } from '../sql/cluster-pause.js';

export interface TickDeps {
  config: AgentConfig;
  logger: Logger;
  metrics: DaemonMetrics;
  /** Unfinished tasks seen by the previous tick (to count what finished since). */
  seen: Seen;
  /** Problems already logged by earlier ticks: not logged again every tick while they last. */
  problemKeys: ReadonlySet<string>;
  /** A supervisor started by this tick exited: the next instance of its backup id may start. */
  onSupervisorExit: () => void;
  /** Kept across ticks by the daemon: start back-off per task, connections, last finished task. */
  backoff: Backoff;
  connections: KeptConnections;
  lastFinished: Map<string, TaskRow | undefined>;
  /** Starts the purge of old rows off the tick (the daemon runs at most one at a time). */
  purge: (instances: readonly InstanceConfig[]) => void;
  /** This host's pause, published with the presence. */
  pause: PauseState | undefined;
}

export interface TickResult {
  record: TickRecord;
  report: CheckReport | undefined;
  seen: Seen;
  problemKeys: ReadonlySet<string>;
  /** Problems worth showing as "last error" even though the tick itself succeeded. */
  problems: string[];
}

export async function runTick(deps: TickDeps, reason: string): Promise<TickResult> {
  const { logger, metrics } = deps;
  const startedAt = new Date();
  const started: string[] = [];
  const problemKeys = new Set<string>();
  const checkDeps: CheckDeps = {
    config: deps.config,
    logger,
    logFd: 1,
    backoff: deps.backoff,
    connections: deps.connections,
    watch: seenKeys(deps.seen),
    lastFinished: deps.lastFinished,
    presence: (instance, tasks, clusterPause) => presenceOf(deps, instance, tasks, clusterPause),
    logProblem: (key, fields, msg) => {
      problemKeys.add(key);
      if (!deps.problemKeys.has(key)) logger.error(fields, `${msg} (logged once until it clears)`);
    },
    onEvent: (event, task) => {
      if (event === 'started') metrics.backup('started', task.port);
      else if (event === 'killed') metrics.backup('killed', task.port);
      else metrics.housekeeping(event);
    },
    onDeleted: (count) => metrics.housekeeping('deleted', count),
    onStarted: (task, pid, done) => {
      started.push(`${task.backupId}@${task.port}`);
      void done.then((code) => {
        logger.debug({ backupId: task.backupId, port: task.port, supervisorPid: pid, exitCode: code }, 'supervisor exited');
        deps.onSupervisorExit();
      });
    },
  };
  let report: CheckReport | undefined;
  let error: string | undefined;
  let seen = deps.seen;
  const problems: string[] = [];
  try {
    report = await runCheck(checkDeps, { run: true, waitForBackups: false, start: deps.pause === undefined, purge: false });
    seen = observe(report, deps.seen, metrics);
    // Instances no longer served (drop-in removed): their connections and memory go.
    const files = new Set(report.instances.map((r) => r.instance.file));
    await deps.connections.retain(files);
    for (const f of deps.lastFinished.keys()) if (!files.has(f)) deps.lastFinished.delete(f);
    deps.purge(report.instances.map((r) => r.instance));
    for (const r of report.instances) if (r.error !== undefined) problems.push(`${r.instance.file}: ${r.error}`);
    for (const e of report.configErrors) problems.push(e.message);
  } catch (err) {
    error = errorMessage(err);
    logger.error({ err: error }, 'tick failed');
  }
  if (report) {
    for (const key of deps.problemKeys) if (!problemKeys.has(key)) logger.info({ problem: key }, 'problem cleared');
  }
  const finishedAt = new Date();
  const durationMs = finishedAt.getTime() - startedAt.getTime();
  metrics.tick(durationMs / 1000, error === undefined, finishedAt);
  logger.debug({ reason, durationMs, started }, 'tick done');
  return {
    record: {
      reason,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs,
      ok: error === undefined,
      error,
      started,
      paused: deps.pause !== undefined || report?.clusterPause !== undefined,
    },
    report,
    seen,
    // A tick that failed as a whole says nothing about the problems: keep the known ones.
    problemKeys: report ? problemKeys : deps.problemKeys,
    problems,
  };
}

function observe(report: CheckReport, previous: Seen, metrics: DaemonMetrics): Seen {
  const finished = finishedSince(
    previous,
    report.instances.map((r) => ({ port: r.instance.port, tasks: r.tasks, unreadable: r.error !== undefined })),
  );
  for (const t of finished.succeeded) metrics.backup('succeeded', t.port);
  for (const t of finished.failed) metrics.backup('failed', t.port);
  metrics.tasks(
    new Map(report.instances.map((r) => [r.instance.port, r.tasks.filter((t) => t.status === STATUS.quit || !isFinished(t.status))])),
  );
  const failing = report.instances.filter((r) => r.error !== undefined).length;
  metrics.instances(report.instances.length - failing, failing, report.configErrors.length);
  return finished.seen;
}

/** What this agent says about itself on each instance it serves. */
export function presenceOf(
  deps: Pick<TickDeps, 'config' | 'pause'>,
  instance: InstanceConfig,
  tasks: readonly TaskRow[],
  clusterPause?: ClusterPause,
): Presence {
  const running = tasks.find((t) => t.status === STATUS.running);
  // This host's own pause first (its reason is the more specific); else the cluster's.
  const pause = deps.pause ?? (clusterPause && { reason: `cluster: ${clusterPause.reason}`, until: clusterPause.until });
  return {
    host: instance.host,
    port: instance.port,
    shardValue: instance.shardValue,
    role: instance.role,
    agentVersion: packageVersion(),
    agentHost: hostname(),
    agentPid: process.pid,
    tickIntervalMs: deps.config.agent.tickIntervalMs,
    paused: pause !== undefined,
    pauseReason: pause?.reason ?? '',
    pauseUntil: pause?.until ?? '',
    runningBackupId: running?.backupId ?? '',
    runningSince: running?.updatedAt ?? '',
    runningBytes: null,
  };
}
