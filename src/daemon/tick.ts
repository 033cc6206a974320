// One tick of the daemon: the check step without waiting for backups (each runs under its own
// detached supervisor), and what it tells the metrics. The tick never throws: a failure is part
// of its result, and the loop goes on.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { runCheck, type CheckDeps, type CheckReport } from '../check/check.js';
import { errorMessage } from '../errors.js';
import type { Backoff } from '../check/backoff.js';
import type { DaemonMetrics, InstanceGauges } from './metrics.js';
import type { AgentEventMap, AgentEvents } from '../check/events.js';
import { lastSuccessAt, measured, noteRecords, noteStarted, prune, runningBytes, type BackupTracker } from './backup-tracker.js';
import { hostPaths, type TaskRecord } from '../host/protocol.js';
import { readRecords } from '../host/records.js';
import type { TickRecord } from '../state/daemon-status.js';
import { finishedSince, seenKeys, type Finished, type Seen } from './transitions.js';
import type { InstanceConfig } from '../config/instance.js';
import { isFinished, STATUS } from '../task/status.js';
import { isSpiderInstance } from '../config/instance.js';
import type { KeptConnections } from '../db/connections.js';
import type { UnloggedSessions } from '../check/unlogged-sessions.js';
import { hostname } from 'node:os';
import type { Presence, PresenceArchive } from '../sql/presence.js';
import { packageVersion } from '../version.js';
import type { PauseState } from '../state/pause.js';
import type { ClusterPause } from '../sql/cluster-pause.js';
import { taskKeyString, type TaskRow } from '../task/task.js';
import type { ClockLook } from '../check/clock-step.js';

export interface TickDeps {
  config: AgentConfig;
  logger: Logger;
  metrics: DaemonMetrics;
  /** The daemon's emitter: the tick emits `finished` and listens to `started` and `problem` while it runs. */
  events: AgentEvents;
  /** Start times, bytes and last successes, kept across ticks by the daemon. */
  tracker: BackupTracker;
  /** Unfinished tasks seen by the previous tick (to count what finished since). */
  seen: Seen;
  /** Problems already logged by earlier ticks: not logged again every tick while they last. */
  problemKeys: ReadonlySet<string>;
  /** A supervisor started by this tick exited: the next instance of its backup id may start. */
  onSupervisorExit: () => void;
  /** Kept across ticks by the daemon: start back-off per task, connections, last finished task. */
  backoff: Backoff;
  connections: KeptConnections;
  unlogged: UnloggedSessions;
  lastFinished: Map<string, TaskRow | undefined>;
  clockLooks: Map<string, ClockLook>;
  /** Starts the purge of old rows off the tick (the daemon runs at most one at a time). */
  purge: (instances: readonly InstanceConfig[]) => void;
  /** This host's pause, published with the presence. */
  pause: PauseState | undefined;
  /** The binlog archiver's state of an instance archived here, published with its presence. */
  archiveOf?: (host: string, port: number) => PresenceArchive | undefined;
  /** Why the agent's own writes on an instance wait (a restore task runs on it), or undefined. */
  holdWrites?: (instance: InstanceConfig) => string | undefined;
}

export interface TickResult {
  record: TickRecord;
  report: CheckReport | undefined;
  seen: Seen;
  problemKeys: ReadonlySet<string>;
  /** Problems worth showing as "last error" even though the tick itself succeeded. */
  problems: string[];
  /** Tasks of this host that succeeded since the previous tick (with the instance config they belong to). */
  succeeded: { task: TaskRow; file: string }[];
  /** A backup of this host failed since the previous tick because of the repository (its supervisor said so). */
  repositoryFailed: boolean;
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
    events: deps.events,
    backoff: deps.backoff,
    connections: deps.connections,
    unlogged: deps.unlogged,
    watch: seenKeys(deps.seen),
    lastFinished: deps.lastFinished,
    clockLooks: deps.clockLooks,
    lastSuccess: deps.tracker.lastSuccess,
    presence: (instance, tasks, records, clusterPause) => presenceOf(deps, instance, tasks, records, clusterPause),
    ...(deps.holdWrites ? { holdWrites: deps.holdWrites } : {}),
  };
  // Problems are logged once until they clear; each tick collects the ones it met.
  const onProblem = ({ key, fields, msg }: AgentEventMap['problem'][0]) => {
    problemKeys.add(key);
    if (!deps.problemKeys.has(key)) logger.error(fields, `${msg} (logged once until it clears)`);
  };
  const onStarted = ({ task, pid, done }: AgentEventMap['started'][0]) => {
    started.push(`${task.backupId}@${task.port}`);
    noteStarted(deps.tracker, task, Date.now());
    void done.then((code) => {
      logger.debug({ backupId: task.backupId, port: task.port, supervisorPid: pid, exitCode: code }, 'supervisor exited');
      deps.onSupervisorExit();
    });
  };
  deps.events.on('problem', onProblem);
  deps.events.on('started', onStarted);
  let report: CheckReport | undefined;
  let error: string | undefined;
  let seen = deps.seen;
  const problems: string[] = [];
  const succeeded: { task: TaskRow; file: string }[] = [];
  let repositoryFailed = false;
  try {
    report = await runCheck(checkDeps, { run: true, waitForBackups: false, start: deps.pause === undefined, purge: false });
    const finished = observe(report, deps, metrics);
    seen = finished.seen;
    for (const task of finished.succeeded) {
      const inst = report.instances.find((r) => r.instance.host === task.host && r.instance.port === task.port);
      if (inst) succeeded.push({ task, file: inst.instance.file });
    }
    // Instances no longer served (drop-in removed): their memory goes, and so do the connections
    // of every endpoint not served as it is now (a drop-in removed or its settings changed).
    const files = new Set(report.instances.map((r) => r.instance.file));
    const served = report.instances.map((r) => r.instance);
    await deps.connections.retain(served);
    await deps.unlogged.retain(served);
    for (const f of deps.lastFinished.keys()) if (!files.has(f)) deps.lastFinished.delete(f);
    for (const f of deps.clockLooks.keys()) if (!files.has(f)) deps.clockLooks.delete(f);
    prune(deps.tracker, new Set([...seen.keys(), ...report.records.map((r) => taskKeyString(r.key))]), files);
    deps.purge(report.instances.map((r) => r.instance));
    for (const r of report.instances) if (r.error !== undefined) problems.push(`${r.instance.file}: ${r.error}`);
    for (const e of report.configErrors) problems.push(e.message);
    for (const { task, error } of repositoryFailures(deps.config, report.records, finished.failed)) {
      problems.push(`backup ${task.backupId} on port ${task.port}: ${task.status}: ${error}`);
      repositoryFailed = true;
    }
  } catch (err) {
    error = errorMessage(err);
    logger.error({ err: error }, 'tick failed');
  } finally {
    deps.events.off('problem', onProblem);
    deps.events.off('started', onStarted);
  }
  if (report) {
    for (const key of deps.problemKeys) if (!problemKeys.has(key)) logger.info({ problem: key }, 'problem cleared');
  }
  const finishedAt = new Date();
  const durationMs = finishedAt.getTime() - startedAt.getTime();
  metrics.tick(durationMs / 1000, error === undefined, finishedAt);
  metrics.tickInterval(deps.config.agent.tickIntervalMs / 1000);
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
    succeeded,
    repositoryFailed,
  };
}

/**
 * The failed backups whose supervisor recorded why they did not get into the repository. The
 * record is written before the row, so one the check read too early is read again here.
 */
function repositoryFailures(
  config: AgentConfig,
  records: readonly TaskRecord[],
  failed: readonly TaskRow[],
): { task: TaskRow; error: string }[] {
  if (config.repository === undefined || failed.length === 0) return [];
  let fresh: readonly TaskRecord[] | undefined;
  const out: { task: TaskRow; error: string }[] = [];
  for (const task of failed) {
    const find = (rs: readonly TaskRecord[]) => rs.find((r) => taskKeyString(r.key) === taskKeyString(task) && r.error !== undefined);
    let record = find(records);
    if (record === undefined) record = find((fresh ??= readRecords(hostPaths(config.agent.hostLock).records).records));
    if (record?.error !== undefined) out.push({ task, error: record.error });
  }
  return out;
}

function observe(report: CheckReport, deps: Pick<TickDeps, 'seen' | 'events' | 'tracker'>, metrics: DaemonMetrics): Finished {
  const { tracker } = deps;
  const now = Date.now();
  noteRecords(tracker, report.records);
  const finished = finishedSince(
    deps.seen,
    report.instances.map((r) => ({ port: r.instance.port, tasks: r.tasks, unreadable: r.error !== undefined })),
  );
  const roles = new Map(report.instances.map((r) => [r.instance.port, roleOf(r.instance)]));
  // Before any event is counted: the first failure after a start or reload is then an increase.
  metrics.served([...roles.keys()]);
  for (const [outcome, tasks] of [
    ['success', finished.succeeded],
    ['failed', finished.failed],
  ] as const) {
    for (const task of tasks)
      deps.events.emit('finished', { task, outcome, role: roles.get(task.port) ?? 'unknown', ...measured(tracker, task, now) });
  }
  // An unreachable instance keeps its series (no running backup seen): an alert on it must not resolve.
  metrics.instanceGauges(
    report.instances.map((r): InstanceGauges => {
      const run = r.tasks.find((t) => t.status === STATUS.running);
      return {
        port: r.instance.port,
        role: roleOf(r.instance),
        running: run !== undefined,
        runningBytes: run ? runningBytes(report.records, run) : undefined,
        lastSuccessAt: lastSuccessAt(tracker, r.instance.file, now),
        up: r.unreachable === undefined,
      };
    }),
  );
  metrics.tasks(
    new Map(report.instances.map((r) => [r.instance.port, r.tasks.filter((t) => t.status === STATUS.quit || !isFinished(t.status))])),
  );
  const failing = report.instances.filter((r) => r.error !== undefined).length;
  metrics.instances(report.instances.length - failing, failing, report.configErrors.length);
  return finished;
}

/** The instance's role as a metric label: its MysqlRole, `spider` for a spider port without one. */
export function roleOf(instance: InstanceConfig): string {
  return instance.role || (isSpiderInstance(instance) ? 'spider' : 'unknown');
}

/** What this agent says about itself on each instance it serves. */
export function presenceOf(
  deps: Pick<TickDeps, 'config' | 'pause' | 'archiveOf'>,
  instance: InstanceConfig,
  tasks: readonly TaskRow[],
  records: readonly TaskRecord[] = [],
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
    runningBytes: running ? (runningBytes(records, running) ?? null) : null,
    ...archiveField(deps.archiveOf?.(instance.host, instance.port)),
  };
}

/** Not archived here: the row's archive columns emptied (they may hold what an archiving agent wrote before). */
const archiveField = (archive: PresenceArchive | undefined): Pick<Presence, 'archive'> => ({ archive: archive ?? null });
