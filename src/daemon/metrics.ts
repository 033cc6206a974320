// Prometheus metrics of one daemon, in its own Registry (no process-global default registry, so
// two daemons in one test process, or a reload, never collide).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { statusClass } from '../core/status.js';
import type { TaskRow } from '../sql/tasks.js';

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
}

export function createMetrics(): DaemonMetrics {
  const registry = new Registry();
  // Event-loop lag sampled once a second, not every 10 ms: an idle agent should stay asleep.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
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
  };
}
