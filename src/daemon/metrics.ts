// Prometheus metrics of one daemon, in its own Registry (no process-global default registry, so
// two daemons in one test process, or a reload, never collide). The backup counters and the
// last-backup gauges follow the agent's events (attachMetrics); the rest is set by the tick.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { AgentEvents } from '../check/events.js';
import { statusClass } from '../task/status.js';
import type { TaskRow } from '../task/task.js';

/**
 * prom-client's defaults that break Prometheus' naming rules (`promtool check metrics`: a gauge
 * must not end in `_total`). Their per-type twins (`nodejs_active_handles{type}` …) stay: their
 * sum is the same number.
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** prom-client keeps the name it was given but does not type it. */
const nameOf = (m: Metric): string => (m as unknown as { name: string }).name;

/** What one instance looks like at the end of a tick. */
export interface InstanceGauges {
  port: number;
  role: string;
  running: boolean;
  /** Bytes the running backup has written so far, as its supervisor last measured (undefined: not known). */
  runningBytes: number | undefined;
  /**
   * Unix seconds the last successful backup ended (database clock); null when it never had one,
   * undefined when its table could not be read yet (no sample: an instance down since the daemon
   * started is not "never backed up").
   */
  lastSuccessAt: number | null | undefined;
  /** false while the instance cannot be reached or refuses the agent's login (src/db/reachability.ts). */
  up: boolean;
}

export type BackupEvent = 'started' | 'succeeded' | 'failed' | 'killed';
export type ScheduleOutcome = 'scheduled' | 'not-primary' | 'not-spider' | 'paused' | 'error';

export interface DaemonMetrics {
  registry: Registry;
  tick(durationS: number, ok: boolean, at: Date): void;
  /** Replaces the per-port task counts with what the last tick read. */
  tasks(byPort: ReadonlyMap<number, readonly Pick<TaskRow, 'status'>[]>): void;
  backup(event: BackupEvent, port: number): void;
  housekeeping(event: 'failed' | 'expired' | 'deleted' | 'repaired', count?: number): void;
  scheduled(outcome: ScheduleOutcome): void;
  journalBacklog(n: number): void;
  paused(on: boolean): void;
  instances(ok: number, failing: number, configErrors: number): void;
  /**
   * Every per-port counter gets its sample (0) for each served port, so that `increase()` sees the
   * first event after a start or a reload; idempotent, called every tick.
   */
  served(ports: readonly number[]): void;
  /** Replaces the per-instance gauges (up, running, bytes, last success) with what the last tick saw. */
  instanceGauges(instances: readonly InstanceGauges[]): void;
  /** Duration and bytes of the instance's last finished backup, when known. */
  lastBackup(port: number, role: string, durationS: number | undefined, bytes: number | undefined): void;
  tickInterval(seconds: number): void;
  /** A restore point this agent took (automatic, or a backup's): how long commits were paused. */
  restorePointTaken(pauseMs: number): void;
  /** A restore point this agent tried to take and could not. */
  restorePointFailed(): void;
  /** Replaces the binlog archive's lag per archiving master and its bound (undefined: archiving is off). */
  archiveLag(masters: readonly { port: number; role: string; lagS: number | undefined }[], maxLagS: number | undefined): void;
  /**
   * The restore drill's metrics exist only where [drill] is configured: the failures counter from
   * the start (0), the gauges once this host ran a drill (`gauges`, from state_dir/drill.json).
   */
  drill(configured: boolean, gauges: DrillGauges | undefined): void;
  /** A drill ended: the gauges, and one more failure when it failed. */
  drillEnded(gauges: DrillGauges, failed: boolean): void;
}

export interface DrillGauges {
  lastRunS: number;
  lastRunSuccess: 0 | 1;
  durationS: number;
  /** 0 when no drill succeeded here yet. */
  lastSuccessS: number;
}

export function createMetrics(): DaemonMetrics {
  const registry = new Registry();
  // Event-loop lag sampled once a second, not every 10 ms: an idle agent should stay asleep.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  const registers = [registry];
  const ticks = new Counter({ name: 'spiderbackup_ticks_total', help: 'Check ticks run, by result.', labelNames: ['result'], registers });
  const tickDuration = new Histogram({
    name: 'spiderbackup_tick_duration_seconds',
    help: 'Duration of a check tick.',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const lastOk = new Gauge({
    name: 'spiderbackup_last_successful_tick_timestamp_seconds',
    help: 'Unix time the last successful tick ended.',
    registers,
  });
  const tasks = new Gauge({
    name: 'spiderbackup_tasks',
    help: 'Unfinished tasks (init, replicated, running, quit) per local instance and status.',
    labelNames: ['port', 'status'],
    registers,
  });
  const backups = {
    started: new Counter({
      name: 'spiderbackup_backups_started_total',
      help: 'Backups handed to a supervisor by this daemon.',
      labelNames: ['port'],
      registers,
    }),
    succeeded: new Counter({
      name: 'spiderbackup_backups_succeeded_total',
      help: 'Tasks seen to move from waiting/running to success.',
      labelNames: ['port'],
      registers,
    }),
    failed: new Counter({
      name: 'spiderbackup_backups_failed_total',
      help: 'Tasks seen to move from waiting/running to failed (any reason).',
      labelNames: ['port'],
      registers,
    }),
    killed: new Counter({
      name: 'spiderbackup_backups_killed_total',
      help: 'Backup process trees killed (quit or 48 h timeout).',
      labelNames: ['port'],
      registers,
    }),
  };
  const hk = new Counter({
    name: 'spiderbackup_housekeeping_actions_total',
    help:
      'Housekeeping changes: failed (no live process), expired (waited over 12 h), deleted (rows over 30 days), repaired (row ' +
      'overwritten while its backup ran here).',
    labelNames: ['action'],
    registers,
  });
  const sched = new Counter({
    name: 'spiderbackup_scheduled_runs_total',
    help: 'Cron fires of the daily schedule, by outcome.',
    labelNames: ['result'],
    registers,
  });
  const backlog = new Gauge({
    name: 'spiderbackup_journal_backlog',
    help: 'Final statuses waiting in the local journal for their instance.',
    registers,
  });
  const paused = new Gauge({ name: 'spiderbackup_paused', help: '1 while an operator pause is in force.', registers });
  const instances = new Gauge({
    name: 'spiderbackup_instances',
    help: 'Instance drop-ins by state at the last tick.',
    labelNames: ['state'],
    registers,
  });

  const instanceLabels = ['port', 'role'];
  const lastSuccess = new Gauge({
    name: 'spiderbackup_last_success_timestamp_seconds',
    help: 'Unix time the last successful backup of the instance ended (its row, by the database clock); 0 when it never had one.',
    labelNames: instanceLabels,
    registers,
  });
  const up = new Gauge({
    name: 'spiderbackup_instance_up',
    help: "1 while the agent can reach the instance and log in; 0 while it cannot be reached or refuses the agent's login.",
    labelNames: instanceLabels,
    registers,
  });
  const running = new Gauge({
    name: 'spiderbackup_backup_running',
    help: '1 while a backup of the instance runs.',
    labelNames: instanceLabels,
    registers,
  });
  const runningBytes = new Gauge({
    name: 'spiderbackup_backup_running_bytes',
    help: "Bytes the running backup has written into the instance's BackupDir so far (measured every few seconds).",
    labelNames: instanceLabels,
    registers,
  });
  const lastDuration = new Gauge({
    name: 'spiderbackup_last_backup_duration_seconds',
    help: 'How long the last backup of the instance that this daemon saw finish ran (success or not).',
    labelNames: instanceLabels,
    registers,
  });
  const lastBytes = new Gauge({
    name: 'spiderbackup_last_backup_bytes',
    help: 'Bytes the last backup of the instance that this daemon saw finish wrote into its BackupDir (success or not).',
    labelNames: instanceLabels,
    registers,
  });
  const interval = new Gauge({ name: 'spiderbackup_tick_interval_seconds', help: 'The configured tick interval.', registers });
  // Unlabelled, so both have their samples (0) from the start: increase() sees the first failure.
  const pointPause = new Histogram({
    name: 'spiderbackup_restore_point_pause_seconds',
    help: "How long commits were paused on some Spider node for a restore point this agent took (automatic or a backup's).",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const pointFailures = new Counter({
    name: 'spiderbackup_restore_point_failures_total',
    help: "Restore points this agent tried to take (automatic or a backup's) and could not.",
    registers,
  });
  const archiveLag = new Gauge({
    name: 'spiderbackup_binlog_archive_lag_seconds',
    help:
      "How far the binlog archive is behind the shard master: 0 when it holds the master's @@gtid_binlog_pos, else the age of " +
      'the oldest event not archived yet (an upper bound while the stream has not delivered it).',
    labelNames: instanceLabels,
    registers,
  });
  const archiveMaxLag = new Gauge({
    name: 'spiderbackup_binlog_archive_max_lag_seconds',
    help: 'The archive lag bound ([archive] max_lag): the recovery point objective the alert compares the lag with.',
    registers,
  });

  // Registered only while [drill] is configured (see drill()), so other agents do not show them.
  const drill = {
    failures: new Counter({
      name: 'spiderbackup_restore_drill_failures_total',
      help: 'Restore drills of this agent that failed (the restore, check_sql against expect, or the target file).',
      registers: [],
    }),
    lastRun: new Gauge({
      name: 'spiderbackup_restore_drill_last_run_timestamp_seconds',
      help: 'Unix time the last restore drill of this agent ended (success or not).',
      registers: [],
    }),
    lastRunSuccess: new Gauge({
      name: 'spiderbackup_restore_drill_last_run_success',
      help: '1 when the last restore drill of this agent succeeded, 0 when it failed.',
      registers: [],
    }),
    duration: new Gauge({
      name: 'spiderbackup_restore_drill_duration_seconds',
      help: 'How long the last restore drill of this agent took: the restore and the check, not the wipe after it.',
      registers: [],
    }),
    lastSuccess: new Gauge({
      name: 'spiderbackup_restore_drill_last_success_timestamp_seconds',
      help: 'Unix time the last successful restore drill of this agent ended; 0 when none succeeded yet.',
      registers: [],
    }),
  };
  const drillGaugeList = [drill.lastRun, drill.lastRunSuccess, drill.duration, drill.lastSuccess];
  const registered = (m: Metric) => registry.getSingleMetric(nameOf(m)) !== undefined;
  const setDrillGauges = (g: DrillGauges) => {
    for (const m of drillGaugeList) if (!registered(m)) registry.registerMetric(m);
    drill.lastRun.set(g.lastRunS);
    drill.lastRunSuccess.set(g.lastRunSuccess);
    drill.duration.set(g.durationS);
    drill.lastSuccess.set(g.lastSuccessS);
  };

  for (const r of ['ok', 'error']) ticks.inc({ result: r }, 0);
  for (const r of ['scheduled', 'not-primary', 'not-spider', 'paused', 'error']) sched.inc({ result: r }, 0);
  for (const a of ['failed', 'expired', 'deleted']) hk.inc({ action: a }, 0);

  return {
    registry,
    tick(durationS, ok, at) {
      ticks.inc({ result: ok ? 'ok' : 'error' });
      tickDuration.observe(durationS);
      if (ok) lastOk.set(at.getTime() / 1000);
    },
    tasks(byPort) {
      tasks.reset();
      for (const [port, rows] of byPort) {
        const counts = new Map<string, number>();
        for (const r of rows) counts.set(statusClass(r.status), (counts.get(statusClass(r.status)) ?? 0) + 1);
        for (const [status, n] of counts) tasks.set({ port: String(port), status }, n);
      }
    },
    backup(event, port) {
      backups[event].inc({ port: String(port) });
    },
    housekeeping(event, count = 1) {
      hk.inc({ action: event }, count);
    },
    scheduled(outcome) {
      sched.inc({ result: outcome });
    },
    journalBacklog(n) {
      backlog.set(n);
    },
    paused(on) {
      paused.set(on ? 1 : 0);
    },
    instances(ok, failing, configErrors) {
      instances.set({ state: 'ok' }, ok);
      instances.set({ state: 'error' }, failing);
      instances.set({ state: 'config_error' }, configErrors);
    },
    served(ports) {
      for (const port of ports) for (const c of Object.values(backups)) c.inc({ port: String(port) }, 0);
    },
    instanceGauges(list) {
      lastSuccess.reset();
      up.reset();
      running.reset();
      runningBytes.reset();
      for (const i of list) {
        const labels = { port: String(i.port), role: i.role };
        up.set(labels, i.up ? 1 : 0);
        if (i.lastSuccessAt !== undefined) lastSuccess.set(labels, i.lastSuccessAt ?? 0);
        running.set(labels, i.running ? 1 : 0);
        if (i.running && i.runningBytes !== undefined) runningBytes.set(labels, i.runningBytes);
      }
    },
    lastBackup(port, role, durationS, bytes) {
      const labels = { port: String(port), role };
      if (durationS === undefined) lastDuration.remove(labels);
      else lastDuration.set(labels, durationS);
      if (bytes === undefined) lastBytes.remove(labels);
      else lastBytes.set(labels, bytes);
    },
    tickInterval(seconds) {
      interval.set(seconds);
    },
    restorePointTaken(pauseMs) {
      pointPause.observe(pauseMs / 1000);
    },
    restorePointFailed() {
      pointFailures.inc();
    },
    archiveLag(masters, maxLagS) {
      archiveLag.reset();
      for (const m of masters) if (m.lagS !== undefined) archiveLag.set({ port: String(m.port), role: m.role }, m.lagS);
      if (maxLagS === undefined) archiveMaxLag.reset();
      else archiveMaxLag.set(maxLagS);
    },
    drill(configured, gauges) {
      if (!configured) {
        for (const m of [drill.failures, ...drillGaugeList]) registry.removeSingleMetric(nameOf(m));
        return;
      }
      if (!registered(drill.failures)) registry.registerMetric(drill.failures);
      if (gauges) setDrillGauges(gauges);
    },
    drillEnded(gauges, failed) {
      if (!registered(drill.failures)) registry.registerMetric(drill.failures);
      setDrillGauges(gauges);
      if (failed) drill.failures.inc();
    },
  };
}

/** The metrics' subscription to the agent's events: counters and last-backup gauges follow them. */
export function attachMetrics(events: AgentEvents, metrics: DaemonMetrics): void {
  events.on('started', ({ task }) => metrics.backup('started', task.port));
  events.on('killed', ({ task }) => metrics.backup('killed', task.port));
  events.on('failed', () => metrics.housekeeping('failed'));
  events.on('expired', () => metrics.housekeeping('expired'));
  events.on('repaired', () => metrics.housekeeping('repaired'));
  events.on('deleted', ({ count }) => metrics.housekeeping('deleted', count));
  events.on('finished', (e) => {
    metrics.backup(e.outcome === 'success' ? 'succeeded' : 'failed', e.task.port);
    metrics.lastBackup(e.task.port, e.role, e.durationS, e.bytes);
  });
}
