// `spiderbackup status`: the daemon's last snapshot, the pause file and whether the daemon lives,
// put together for a person (text) or a program (JSON). Pure: the command gathers the inputs.
import { printable as e, renderTable } from './table.js';
import { PAUSE_MEANING, type PauseState } from '../../state/pause.js';
import type { DaemonStatus, InstanceStatus } from '../../state/daemon-status.js';
import { downText, type InstanceDown } from '../../state/instances-down.js';
import { formatBytes, formatDuration } from '../../format.js';
import { drillStatusText, type DrillStatus } from '../../recovery/drill-model.js';

export interface StatusInputs {
  now: Date;
  stateDir: string;
  /** The pid in the lock file and whether it is a live daemon. */
  daemon: { pid: number | undefined; alive: boolean };
  snapshot: DaemonStatus | undefined;
  snapshotError: string | undefined;
  pause: PauseState | undefined;
  pauseError: string | undefined;
  /** One line per restore task this host runs or last ran (recovery/local-state.ts). */
  restores?: string[];
}

export interface StatusView {
  daemon: { running: boolean; pid: number | null; since: string | null; note: string };
  pause: {
    active: boolean;
    until: string | null;
    reason: string | null;
    by: string | null;
    since: string | null;
    meaning: string;
    error?: string;
  };
  snapshotAt: string | null;
  lastTick: DaemonStatus['lastTick'] | null;
  lastSuccessfulTickAt: string | null;
  lastError: DaemonStatus['lastError'] | null;
  schedule: {
    cron: string | null;
    spiderHost: boolean;
    nextRun: string | null;
    nextRunSkipped: boolean;
    lastRun: DaemonStatus['schedule']['lastRun'] | null;
  };
  instances: InstanceStatus[];
  /** Instances the daemon cannot reach or log in to (none while this host is paused): `status` exits 1. */
  instancesDown: InstanceDown[];
  configErrors: DaemonStatus['configErrors'];
  notServed: string[];
  /** The old tool's mysql-crond jobs still registered on this host (README "Migrating from mysql-crond"). */
  mysqlCrond: string[];
  /** With [repository]: where backups go and whether it can be used ("posix /x, prefix c1: ok"). */
  repository: string | null;
  /** With the binlog archive on: a line per archiving master of this host (lag, last archived GTID, or the problem). */
  binlogArchive: string[];
  /** One line per restore task this host runs or last ran. */
  restores: string[];
  /** With [drill]: the last restore drill, its outcome and duration, and the next (while the daemon runs). */
  drill: DrillStatus | null;
  journalBacklog: number | null;
  hostBusy: string | null;
  clusterPause: DaemonStatus['clusterPause'] | null;
  tickIntervalMs: number | null;
  configDir: string | null;
  stateDir: string;
  metrics: string | null;
}

export function statusView(i: StatusInputs): StatusView {
  const s = i.snapshot;
  const activePause = i.pause !== undefined && Date.parse(i.pause.until) > i.now.getTime() ? i.pause : undefined;
  const running = i.daemon.alive;
  let note: string;
  if (running) note = `running (pid ${i.daemon.pid})`;
  else if (s === undefined) note = `not running (no status in ${i.stateDir}: it has never run with this state_dir)`;
  else
    note =
      `NOT RUNNING — what follows is what it saw at ` +
      `${s.writtenAt}${s.state === 'stopped' ? ' when it was stopped' : ' (it did not stop cleanly)'}`;
  const nextRun = running ? (s?.schedule.nextRun ?? null) : null;
  return {
    daemon: { running, pid: i.daemon.pid ?? s?.pid ?? null, since: s?.startedAt ?? null, note },
    pause: {
      // A damaged pause file holds the daemon as a pause does (state/pause.ts pauseInForce): so it reads here.
      active: activePause !== undefined || i.pauseError !== undefined,
      until: activePause?.until ?? null,
      reason: activePause?.reason ?? null,
      by: activePause?.by ?? null,
      since: activePause?.since ?? null,
      meaning: PAUSE_MEANING,
      ...(i.pauseError ? { error: i.pauseError } : {}),
    },
    snapshotAt: s?.writtenAt ?? null,
    lastTick: s?.lastTick ?? null,
    lastSuccessfulTickAt: s?.lastSuccessfulTickAt ?? null,
    lastError: s?.lastError ?? (i.snapshotError ? { at: i.now.toISOString(), message: i.snapshotError } : null),
    schedule: {
      cron: s?.schedule.cron ?? null,
      spiderHost: s?.schedule.spiderHost ?? false,
      nextRun,
      nextRunSkipped: nextRun !== null && activePause !== undefined && Date.parse(nextRun) < Date.parse(activePause.until),
      lastRun: s?.schedule.lastRun ?? null,
    },
    instances: s?.instances ?? [],
    // A pause taken since the daemon's last tick already counts here.
    instancesDown: activePause !== undefined || i.pauseError !== undefined ? [] : (s?.instancesDown ?? []),
    configErrors: s?.configErrors ?? [],
    notServed: s?.notServed ?? [],
    mysqlCrond: s?.mysqlCrond ?? [],
    repository: s?.repository ?? null,
    binlogArchive: s?.binlogArchive ?? [],
    restores: i.restores ?? [],
    drill: s?.drill ? drillView(s.drill, running) : null,
    journalBacklog: s?.journalBacklog ?? null,
    hostBusy: s?.hostBusy ?? null,
    clusterPause: s?.clusterPause ?? null,
    tickIntervalMs: s?.tickIntervalMs ?? null,
    configDir: s?.configDir ?? null,
    stateDir: i.stateDir,
    metrics: s?.metricsListen ?? null,
  };
}

/** A stopped daemon runs neither the next drill nor the one it was running. */
function drillView(d: DrillStatus, running: boolean): DrillStatus {
  if (running) return d;
  const { nextRun: _next, runningSince: _since, ...rest } = d;
  return rest;
}

const ago = (iso: string, now: Date): string => {
  const ms = now.getTime() - Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  if (ms < 1000) return `${iso} (just now)`;
  return `${iso} (${formatDuration(ms)} ago)`;
};

export function renderStatusText(v: StatusView, now: Date): string {
  const out: string[] = [];
  const line = (k: string, val: string) => out.push(`${(k === '' ? '' : `${k}:`).padEnd(14)}${e(val)}`);
  line('Daemon', v.daemon.note + (v.daemon.running && v.daemon.since ? `, since ${v.daemon.since}` : ''));
  if (v.configDir) line('Instances in', v.configDir);
  line('State dir', v.stateDir);
  if (v.lastTick) {
    const t = v.lastTick;
    line(
      'Last tick',
      `${ago(t.finishedAt, now)}, took ${formatDuration(t.durationMs)}, ` +
        `${t.ok ? 'ok' : `FAILED: ${t.error}`}${t.started.length ? `, started ${t.started.join(', ')}` : ''}`,
    );
  } else {
    line('Last tick', 'none yet');
  }
  if (v.tickIntervalMs !== null) line('Tick every', formatDuration(v.tickIntervalMs));
  line('Last error', v.lastError ? `${v.lastError.at}: ${v.lastError.message}` : 'none');
  if (v.pause.active && v.pause.error) {
    line('Paused', 'yes: the pause file is damaged (see Pause file); `spiderbackup resume` removes it');
    line('', `(${v.pause.meaning})`);
  } else if (v.pause.active) {
    line(
      'Paused',
      `until ${v.pause.until}${v.pause.reason ? ` — ${v.pause.reason}` : ''}${v.pause.by ? ` (by ${v.pause.by} at ${v.pause.since})` : ''}`,
    );
    line('', `(${v.pause.meaning})`);
  } else {
    line('Paused', 'no');
  }
  if (v.clusterPause)
    line('Cluster', `paused until ${v.clusterPause.until} — ${v.clusterPause.reason} (by ${v.clusterPause.by}; resume --cluster ends it)`);
  if (v.pause.error) line('Pause file', `DAMAGED, treated as paused: ${v.pause.error}`);
  line('Schedule', scheduleText(v));
  const last = v.schedule.lastRun;
  if (last)
    line('Last schedule', `${last.at}: ${last.result}${last.backupId ? ` ${last.backupId}` : ''}${last.error ? ` — ${last.error}` : ''}`);
  if (v.repository !== null) line('Repository', v.repository);
  v.binlogArchive.forEach((a, i) => line(i === 0 ? 'Binlogs' : '', a));
  for (const r of v.restores) line('Restore', r);
  if (v.drill) line('Drill', drillStatusText(v.drill, now));
  if (v.journalBacklog !== null)
    line('Journal', v.journalBacklog === 0 ? 'empty' : `${v.journalBacklog} final status(es) waiting for their instance`);
  if (v.hostBusy !== null) line('Host busy', `nothing new starts: ${v.hostBusy}`);
  for (const d of v.instancesDown) line('DOWN', `${downText(d)} (nothing is backed up there)`);
  line('Metrics', v.metrics ?? 'unknown');
  for (const c of v.configErrors) out.push(`config error: ${e(c.message)}`);
  for (const n of v.notServed) out.push(`not served: ${e(n)}`);
  v.mysqlCrond.forEach((m, i) => line(i === 0 ? 'mysql-crond' : '', e(m)));
  if (v.instances.length > 0) {
    out.push('');
    out.push(
      renderTable(
        ['Port', 'Role', 'Current tasks', 'Last finished', 'Error'],
        v.instances.map((i) => [
          i.port,
          i.role,
          i.current.length === 0
            ? '-'
            : i.current
                .map(
                  (t) =>
                    `${e(t.backupId)} ${e(t.status)}${t.taskPid > 0 ? ` pid ${t.taskPid}` : ''}${progressText(i, t.backupId, t.status)}`,
                )
                .concat(i.moreWaiting ? [`… and ${i.moreWaiting} more waiting`] : [])
                .join('\n'),
          i.last ? e(`${i.last.backupId} ${i.last.status} ${i.last.updatedAt}`) : '-',
          [i.error, ...(i.warnings ?? [])]
            .filter((x) => x !== undefined)
            .map(e)
            .join('\n'),
        ]),
        { multiline: true },
      ),
    );
  } else if (v.snapshotAt !== null) {
    out.push('', 'No instance configs found.');
  }
  return out.join('\n');
}

/** ", 1.2 GiB written, 35 MiB/s" for the running backup (average since it started). */
export function progressText(i: InstanceStatus, backupId: string, status: string): string {
  const p = i.progress;
  if (status !== 'running' || p === undefined || p.backupId !== backupId) return '';
  if (p.bytes === null || p.bytesAt === null) return ', no bytes measured yet';
  const s = (Date.parse(p.bytesAt) - Date.parse(p.startedAt)) / 1000;
  return `, ${formatBytes(p.bytes)} written${s > 0 ? `, ${formatBytes(Math.round(p.bytes / s))}/s` : ''}`;
}

function scheduleText(v: StatusView): string {
  const s = v.schedule;
  if (s.cron === null) return 'no [schedule] cron (this host does not schedule backups)';
  if (!s.spiderHost) return `cron "${s.cron}", but no spider instance config here: nothing is scheduled from this host`;
  if (s.nextRun === null) return `cron "${s.cron}"${v.daemon.running ? '' : ' (daemon not running: nothing fires)'}`;
  return (
    `cron "${s.cron}", next run ${s.nextRun}${s.nextRunSkipped ? ' — SKIPPED: paused then' : ''} (fires only if this spider node ` +
    `is the tdbctl primary then)`
  );
}
