// The per-host check step (SPEC §3 `check`): journal delivery and housekeeping on every local
// instance, then — if nothing of this host runs — the earliest backup id, instance by instance.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import type { InstanceConfig } from '../config/instance.js';
import { connect, isNoSuchTable, type Connection } from '../db.js';
import { ConfigError, errorMessage } from '../errors.js';
import * as sql from '../sql/tasks.js';
import type { TaskKey, TaskRow } from '../sql/tasks.js';
import { deliverJournal } from './deliver.js';
import { housekeep } from './housekeeping.js';
import { pickWork, type Pick } from './pick.js';
import { startTask } from './start-task.js';
import { STATUS } from './status.js';

export interface CheckOptions {
  run: boolean;
  backupId?: string;
  /** Instance files given with -c; otherwise the drop-ins of [agent] config_dir. */
  files?: string[];
  /**
   * true (CLI): back up every instance of the id one after another, waiting for each.
   * false (daemon): start the next backup and return; the next tick continues.
   */
  waitForBackups: boolean;
  /** false (daemon while paused): deliver and housekeep, but start no backup. Default true. */
  start?: boolean;
}

export interface CheckDeps {
  config: AgentConfig;
  logger: Logger;
  onEvent?: (event: 'killed' | 'failed' | 'expired' | 'deleted' | 'started', task: TaskKey) => void;
  /** Called when a backup is handed to a supervisor (the daemon watches its exit). */
  onStarted?: (task: TaskRow, pid: number, done: Promise<number | null>) => void;
  /** The fd the agent logs to (CLI: 2, daemon: 1); supervisors log there too. */
  logFd?: 1 | 2;
}

export interface InstanceReport {
  instance: InstanceConfig;
  tasks: TaskRow[];
  error?: string;
}

export interface Outcome {
  task: TaskRow;
  pid?: number;
  /** Final status as read back (CLI), or `running` when not waited for. */
  status: string;
  note?: string;
}

export interface CheckReport {
  configErrors: ConfigError[];
  instances: InstanceReport[];
  pick: Pick;
  outcomes: Outcome[];
  ok: boolean;
}

export async function runCheck(deps: CheckDeps, opts: CheckOptions): Promise<CheckReport> {
  const { config, logger } = deps;
  const { instances, errors: configErrors } = discoverInstances(config.agent.configDir, opts.files);
  for (const e of configErrors) logger.error({ file: e.file, key: e.key }, `instance config skipped: ${e.message}`);

  const reports = await Promise.all(instances.map((inst) => inspectInstance(deps, inst, opts.run)));
  const tasks = reports.flatMap((r) => r.tasks);
  const pick = pickWork(tasks, opts.backupId);
  const outcomes: Outcome[] = [];
  if (opts.run && opts.start !== false && pick.kind === 'run') {
    for (const task of pick.tasks) {
      const instance = instances.find((i) => i.port === task.port) as InstanceConfig;
      const outcome = await runOne(deps, instance, task, opts.waitForBackups);
      outcomes.push(outcome);
      if (!opts.waitForBackups && outcome.status === STATUS.running) break;
    }
  } else if (pick.kind === 'busy') {
    logger.debug({ running: pick.running.map((t) => `${t.backupId}@${t.port}`) }, 'a backup of this host is running; nothing started');
  }
  const ok =
    configErrors.length === 0 &&
    reports.every((r) => r.error === undefined) &&
    outcomes.every((o) => o.status === STATUS.success || o.status === STATUS.running || o.note === 'skipped');
  return { configErrors, instances: reports, pick, outcomes, ok };
}

async function inspectInstance(deps: CheckDeps, instance: InstanceConfig, run: boolean): Promise<InstanceReport> {
  const logger = deps.logger.child({ port: instance.port });
  let conn: Connection | undefined;
  try {
    conn = await connect(instance);
    if (run) {
      await deliverJournal(conn, instance, deps.config.agent.stateDir, logger);
      await housekeep({ conn, instance, stateDir: deps.config.agent.stateDir, killGraceMs: deps.config.backup.killGraceMs, logger, onEvent: deps.onEvent });
    }
    return { instance, tasks: await sql.listInstanceTasks(conn, instance.host, instance.port) };
  } catch (err) {
    // A host whose table does not exist yet simply has no tasks.
    if (isNoSuchTable(err)) return { instance, tasks: [] };
    const error = errorMessage(err);
    logger.error({ file: instance.file, err: error }, 'instance skipped this round');
    return { instance, tasks: [], error };
  } finally {
    await conn?.close();
  }
}

async function runOne(deps: CheckDeps, instance: InstanceConfig, task: TaskRow, wait: boolean): Promise<Outcome> {
  const logger = deps.logger.child({ backupId: task.backupId, port: task.port, shardValue: task.shardValue });
  let conn: Connection | undefined;
  try {
    conn = await connect(instance);
    const started = await startTask(conn, deps.config, instance, task, logger, deps.logFd);
    if (started.kind === 'skipped') {
      logger.info({ reason: started.reason }, 'task not started');
      return { task, status: task.status, note: 'skipped' };
    }
    deps.onEvent?.('started', task);
    deps.onStarted?.(task, started.pid, started.done);
    if (!wait) return { task, pid: started.pid, status: STATUS.running };
    await conn.close();
    conn = undefined;
    await started.done;
    return { task, pid: started.pid, status: await finalStatus(instance, task) };
  } catch (err) {
    const error = errorMessage(err);
    logger.error({ err: error }, 'cannot run task');
    return { task, status: 'error', note: error };
  } finally {
    await conn?.close();
  }
}

async function finalStatus(instance: InstanceConfig, task: TaskKey): Promise<string> {
  try {
    const c = await connect(instance);
    try {
      return (await sql.getTask(c, task))?.status ?? 'gone';
    } finally {
      await c.close();
    }
  } catch (err) {
    return `unknown (${errorMessage(err)}; the result waits in the journal)`;
  }
}
