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
import { pendingJournalKeys } from './journal.js';
import { EMPTY_PROCESS_TABLE, snapshotProcesses } from '../process/processes.js';
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
  onEvent?: (event: 'killed' | 'failed' | 'expired' | 'started', task: TaskKey) => void;
  onDeleted?: (count: number) => void;
  /** Called when a backup is handed to a supervisor (the daemon watches its exit). */
  onStarted?: (task: TaskRow, pid: number, done: Promise<number | null>) => void;
  /**
   * Reports a problem that may repeat every tick (a broken drop-in, an instance down); the
   * daemon logs each only when it appears. Default: log it every time.
   */
  logProblem?: (key: string, fields: Record<string, unknown>, msg: string) => void;
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
  const problem = deps.logProblem ?? ((_key, fields, msg) => logger.error(fields, msg));
  const { instances, errors: configErrors } = discoverInstances(config.agent.configDir, opts.files);
  for (const e of configErrors) problem(`config:${e.file}`, { file: e.file, key: e.key }, `instance config skipped: ${e.message}`);

  const sessions = await Promise.all(instances.map((inst) => openSession(deps, inst, opts.run)));
  try {
    if (opts.run) await housekeepAll(deps, sessions);
  } finally {
    await Promise.all(sessions.map((s) => s.conn?.close()));
  }
  const reports: InstanceReport[] = sessions.map(({ instance, tasks, error }) => ({ instance, tasks, ...(error === undefined ? {} : { error }) }));
  for (const r of reports) {
    if (r.error !== undefined) problem(`instance:${r.instance.file}`, { port: r.instance.port, file: r.instance.file, err: r.error }, 'instance skipped this round');
  }

  const pick = pickWork(reports.flatMap((r) => r.tasks), opts.backupId);
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
  // Waited for, a backup must have ended `success`; handed off (daemon), `running` is the result.
  const fine = (o: Outcome) => o.note === 'skipped' || o.status === STATUS.success || (!opts.waitForBackups && o.status === STATUS.running);
  const ok = configErrors.length === 0 && reports.every((r) => r.error === undefined) && outcomes.every(fine);
  return { configErrors, instances: reports, pick, outcomes, ok };
}

interface Session {
  instance: InstanceConfig;
  conn?: Connection;
  tasks: TaskRow[];
  error?: string;
}

/** Connects, delivers the journal (with --run) and reads the instance's rows. */
async function openSession(deps: CheckDeps, instance: InstanceConfig, run: boolean): Promise<Session> {
  const session: Session = { instance, tasks: [] };
  try {
    session.conn = await connect(instance);
    if (run) await deliverJournal(session.conn, instance, deps.config.agent.stateDir, deps.logger.child({ port: instance.port }));
    session.tasks = await sql.listInstanceTasks(session.conn, instance.host, instance.port);
  } catch (err) {
    failSession(session, err);
  }
  return session;
}

/**
 * Housekeeping of every instance against one process-table snapshot, taken after all rows were
 * read (a pid in a row was alive before the row was read) and only when a row needs it: an idle
 * host does not run `ps` every tick. The journal is read after the snapshot (see housekeeping.ts).
 */
async function housekeepAll(deps: CheckDeps, sessions: Session[]): Promise<void> {
  const live = sessions.filter((s) => s.conn !== undefined);
  const needsProcesses = live.some((s) => s.tasks.some((t) => t.status === STATUS.running || t.status === STATUS.quit));
  const table = needsProcesses ? await snapshotProcesses() : EMPTY_PROCESS_TABLE;
  const pending = pendingJournalKeys(deps.config.agent.stateDir);
  await Promise.all(
    live.map(async (s) => {
      const conn = s.conn as Connection;
      try {
        await housekeep({
          conn,
          instance: s.instance,
          tasks: s.tasks,
          processes: table,
          pending,
          killGraceMs: deps.config.backup.killGraceMs,
          logger: deps.logger.child({ port: s.instance.port }),
          onEvent: deps.onEvent,
          onDeleted: deps.onDeleted,
        });
        s.tasks = await sql.listInstanceTasks(conn, s.instance.host, s.instance.port);
      } catch (err) {
        failSession(s, err);
      }
    }),
  );
}

function failSession(s: Session, err: unknown): void {
  // A host whose table does not exist yet simply has no tasks.
  if (!isNoSuchTable(err)) s.error = errorMessage(err);
  s.tasks = [];
  void s.conn?.close();
  s.conn = undefined;
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
