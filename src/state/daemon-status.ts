// What the daemon sees, written to state_dir/status.json after every tick so `spiderbackup status`
// can show it — also when the daemon is down (the file then says what was true when it stopped).
import { join } from 'node:path';
import type { CheckReport } from '../check/check.js';
import { isFinished, isRunnable, STATUS } from '../task/status.js';
import { isSpiderInstance } from '../config/instance.js';
import { readJsonFile, writeJsonAtomic } from './files.js';
import type { InstanceDown } from './instances-down.js';
import type { DrillStatus } from '../recovery/drill-model.js';
import { type TaskRow, taskKeyString } from '../task/task.js';

export interface TaskBrief {
  backupId: string;
  shardValue: number;
  status: string;
  taskPid: number;
  createdAt: string;
  updatedAt: string;
}

export interface InstanceStatus {
  port: number;
  host: string;
  role: string;
  file: string;
  /** Tasks not finished yet (running, quit requested, and the first few waiting). */
  current: TaskBrief[];
  /** Waiting tasks not listed in `current` (a long queue is summarised). */
  moreWaiting?: number;
  /** The most recently finished task. */
  last: TaskBrief | undefined;
  error: string | undefined;
  /** Problems that did not stop the instance from being served (a missing privilege for the presence …). */
  warnings?: string[];
  /** The running backup's progress, from its supervisor's record (bytes measured every few seconds). */
  progress?: { backupId: string; startedAt: string; bytes: number | null; bytesAt: string | null };
}

export interface TickRecord {
  reason: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  ok: boolean;
  error: string | undefined;
  /** Backups handed to a supervisor in this tick ("backupId@port"). */
  started: string[];
  paused: boolean;
}

export interface ScheduleRecord {
  at: string;
  result: string;
  backupId?: string;
  error?: string;
}

export interface DaemonStatus {
  format: 1;
  pid: number;
  startedAt: string;
  writtenAt: string;
  /** `stopped` is written on a clean shutdown; after a crash the file still says `running`. */
  state: 'running' | 'stopped';
  agentConfig: string | undefined;
  configDir: string;
  stateDir: string;
  tickIntervalMs: number;
  metricsListen: string;
  lastTick: TickRecord | undefined;
  lastSuccessfulTickAt: string | undefined;
  lastError: { at: string; message: string } | undefined;
  schedule: { cron: string | undefined; spiderHost: boolean; nextRun: string | undefined; lastRun: ScheduleRecord | undefined };
  instances: InstanceStatus[];
  configErrors: { file: string; message: string }[];
  /** Drop-ins recognised and not served (tdbctl's own), one line each. */
  notServed?: string[];
  journalBacklog: number;
  /** Why the last tick started nothing although tasks waited (a backup of ours or the old tool's runs). */
  hostBusy?: string;
  /** A cluster-wide pause (`pause --cluster`) the last tick read on this host's instances. */
  clusterPause?: { until: string; reason: string; by: string };
  /** Served, unpaused instances the last tick could not reach or log in to (`status` exits 1). */
  instancesDown?: InstanceDown[];
  /** The old tool's mysql-crond jobs still registered here (or why the list could not be read). */
  mysqlCrond?: string[];
  /** With [repository]: "posix /x, prefix c1: ok", or what is wrong with it (daemon/repo-watch.ts). */
  repository?: string;
  /** With the binlog archive on: one line per archiving master (lag, last archived GTID) and its problems. */
  binlogArchive?: string[];
  /** With [drill]: its cron, the last drill and the next (src/daemon/drill.ts). */
  drill?: DrillStatus;
}

export const statusFile = (stateDir: string): string => join(stateDir, 'status.json');

export function writeStatus(stateDir: string, status: DaemonStatus): void {
  writeJsonAtomic(statusFile(stateDir), status, { durable: false });
}

export function readStatus(stateDir: string): DaemonStatus | undefined {
  const raw = readJsonFile(statusFile(stateDir)) as Partial<DaemonStatus> | undefined;
  if (raw === undefined) return undefined;
  if (raw.format !== 1) throw new Error(`${statusFile(stateDir)}: unknown format`);
  return raw as DaemonStatus;
}

const brief = (t: TaskRow): TaskBrief => ({
  backupId: t.backupId,
  shardValue: t.shardValue,
  status: t.status,
  taskPid: t.taskPid,
  createdAt: t.createdAt,
  updatedAt: t.updatedAt,
});

/** How many waiting tasks of an instance status lists; the rest are counted. */
export const WAITING_SHOWN = 5;

export function instanceStatuses(report: CheckReport): InstanceStatus[] {
  return report.instances.map((r) => {
    const finished = r.tasks.filter((t) => isFinished(t.status) && t.status !== STATUS.quit);
    // updatedAgeS is by the instance's own clock, so it orders that instance's rows correctly.
    const last = r.last ?? [...finished].sort((a, b) => a.updatedAgeS - b.updatedAgeS)[0];
    const running = r.tasks.find((t) => t.status === STATUS.running);
    // A long waiting queue is a count and its first few: status.json and `status` stay small.
    const unfinished = r.tasks.filter((t) => t.status === STATUS.quit || !isFinished(t.status));
    const waiting = unfinished.filter((t) => isRunnable(t.status));
    const current = [...unfinished.filter((t) => !isRunnable(t.status)), ...waiting.slice(0, WAITING_SHOWN)];
    const moreWaiting = Math.max(r.unfinishedTotal ?? 0, unfinished.length) - current.length;
    const record = running && report.records.find((x) => x.phase === 'running' && taskKeyString(x.key) === taskKeyString(running));
    return {
      port: r.instance.port,
      host: r.instance.host,
      role: r.instance.role || (isSpiderInstance(r.instance) ? 'spider' : ''),
      file: r.instance.file,
      current: current.map(brief),
      ...(moreWaiting > 0 ? { moreWaiting } : {}),
      last: last ? brief(last) : undefined,
      error: r.error,
      ...(r.warnings ? { warnings: r.warnings } : {}),
      ...(record
        ? {
            progress: {
              backupId: record.key.backupId,
              startedAt: record.startedAt,
              bytes: record.bytes ?? null,
              bytesAt: record.bytesAt ?? null,
            },
          }
        : {}),
    };
  });
}

export function hasSpiderInstance(report: CheckReport): boolean {
  return report.instances.some((r) => isSpiderInstance(r.instance));
}

export interface SnapshotInputs {
  state: DaemonStatus['state'];
  pid: number;
  startedAt: Date;
  now: Date;
  config: {
    file: string | undefined;
    agent: { configDir: string; stateDir: string; tickIntervalMs: number };
    schedule: { cron: string | undefined };
  };
  metricsAddress: string | undefined;
  lastTick: TickRecord | undefined;
  lastSuccessfulTickAt: Date | undefined;
  lastError: { at: Date; message: string } | undefined;
  nextRun: Date | undefined;
  lastSchedule: ScheduleRecord | undefined;
  report: CheckReport | undefined;
  down?: readonly InstanceDown[];
  journalBacklog: number;
  /** Lines about mysql-crond's jobs (src/daemon/crond-watch.ts); empty: nothing to say. */
  mysqlCrond?: readonly string[];
  /** The repository's last look (src/daemon/repo-watch.ts); undefined without [repository]. */
  repository?: string | undefined;
  /** The binlog archivers (src/daemon/archive-watch.ts); undefined while archiving is off. */
  binlogArchive?: readonly string[] | undefined;
  /** The restore drill (src/daemon/drill.ts); undefined without [drill]. */
  drill?: DrillStatus | undefined;
}

export function buildStatus(i: SnapshotInputs): DaemonStatus {
  return {
    format: 1,
    pid: i.pid,
    startedAt: i.startedAt.toISOString(),
    writtenAt: i.now.toISOString(),
    state: i.state,
    agentConfig: i.config.file,
    configDir: i.config.agent.configDir,
    stateDir: i.config.agent.stateDir,
    tickIntervalMs: i.config.agent.tickIntervalMs,
    metricsListen: i.metricsAddress ?? 'off',
    lastTick: i.lastTick,
    lastSuccessfulTickAt: i.lastSuccessfulTickAt?.toISOString(),
    lastError: i.lastError ? { at: i.lastError.at.toISOString(), message: i.lastError.message } : undefined,
    schedule: {
      cron: i.config.schedule.cron,
      spiderHost: i.report ? hasSpiderInstance(i.report) : false,
      nextRun: i.nextRun?.toISOString(),
      lastRun: i.lastSchedule,
    },
    instances: i.report ? instanceStatuses(i.report) : [],
    configErrors: i.report ? i.report.configErrors.map((e) => ({ file: e.file, message: e.message })) : [],
    ...(i.report && i.report.notServed.length > 0 ? { notServed: i.report.notServed } : {}),
    journalBacklog: i.journalBacklog,
    ...(i.mysqlCrond !== undefined && i.mysqlCrond.length > 0 ? { mysqlCrond: [...i.mysqlCrond] } : {}),
    ...(i.repository !== undefined ? { repository: i.repository } : {}),
    ...(i.binlogArchive !== undefined ? { binlogArchive: [...i.binlogArchive] } : {}),
    ...(i.drill !== undefined ? { drill: i.drill } : {}),
    ...(i.report?.hostBusy !== undefined ? { hostBusy: i.report.hostBusy } : {}),
    ...(i.down !== undefined && i.down.length > 0 ? { instancesDown: [...i.down] } : {}),
    ...(i.report?.clusterPause !== undefined
      ? { clusterPause: { until: i.report.clusterPause.until, reason: i.report.clusterPause.reason, by: i.report.clusterPause.by } }
      : {}),
  };
}
