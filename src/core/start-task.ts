// Claims one task and hands it to a detached supervisor process.
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { expandCommand } from '../config/command-template.js';
import { isSpiderInstance, type InstanceConfig } from '../config/instance.js';
import { withConnection, type Connection } from '../db.js';
import { errorMessage } from '../errors.js';
import { spawnArgv, waitForExit } from '../process/processes.js';
import * as sql from '../sql/tasks.js';
import type { TaskKey, TaskRow } from '../sql/tasks.js';
import { isRunnable } from './status.js';
import { SUPERVISOR_EXIT, SUPERVISOR_MARK } from './supervise.js';

const SUPERVISOR_SCRIPT = fileURLToPath(new URL('../bin/supervisor.js', import.meta.url));

/** The backup command of one task, from the agent's templates (never through a shell). */
export function backupArgv(config: AgentConfig, instance: InstanceConfig, task: TaskKey & { wrapper?: string }): string[] {
  const spider = isSpiderInstance(instance) || task.wrapper === 'SPIDER';
  return expandCommand(spider ? config.backup.spiderCommand : config.backup.remoteCommand, {
    config: instance.file,
    backup_id: task.backupId,
    shard_value: String(task.shardValue),
    port: String(instance.port),
    host: instance.host,
    install_dir: config.backup.installDir,
  });
}

export function supervisorArgv(config: AgentConfig, instance: InstanceConfig, task: TaskKey, argv: string[]): string[] {
  return [
    process.execPath,
    SUPERVISOR_SCRIPT,
    SUPERVISOR_MARK,
    '--backup-id', task.backupId,
    '--port', String(task.port),
    '--host', task.host,
    '--shard-value', String(task.shardValue),
    '--instance', instance.file,
    '--state-dir', config.agent.stateDir,
    '--cwd', config.backup.installDir,
    '--log-level', config.log.level,
    ...(config.log.file ? ['--log-file', config.log.file] : []),
    '--',
    ...argv,
  ];
}

export type StartResult =
  | { kind: 'started'; pid: number; done: Promise<number | null> }
  | { kind: 'skipped'; reason: string };

/**
 * Re-checks the task, claims it with the conditional update and starts its supervisor. The
 * supervisor runs in its own session so it outlives this process.
 */
export async function startTask(
  conn: Connection,
  config: AgentConfig,
  instance: InstanceConfig,
  task: TaskRow,
  logger: Logger,
  /** Where the supervisor's log lines go when there is no [log] file: the agent's own log fd. */
  logFd: 1 | 2 = 1,
): Promise<StartResult> {
  const current = await sql.getTask(conn, task);
  if (!current || !isRunnable(current.status)) return { kind: 'skipped', reason: `status is now ${current?.status ?? 'gone'}` };
  if (!(await sql.claimTask(conn, task))) return { kind: 'skipped', reason: 'claimed by another runner' };
  const argv = backupArgv(config, instance, task);
  const child = spawnArgv(supervisorArgv(config, instance, task, argv), { detached: true, stdio: ['ignore', logFd, logFd] });
  const done = waitForExit(child).then(async (r) => {
    if (r.code === SUPERVISOR_EXIT.notStarted) await handBack(instance, task, logger);
    return r.code;
  });
  if (child.pid === undefined) {
    // Could not even start node: hand the claim back so the task is not left "running".
    await sql.updateRunning(conn, task, -1, task.status);
    return { kind: 'skipped', reason: 'cannot start the supervisor process' };
  }
  logger.info({ supervisorPid: child.pid, argv }, 'task claimed; backup handed to its supervisor');
  return { kind: 'started', pid: child.pid, done };
}

/**
 * The supervisor could not start the backup (it could not record its pid): give the claim back so
 * the task is tried again instead of waiting for "failed: no pid".
 */
async function handBack(instance: InstanceConfig, task: TaskRow, logger: Logger): Promise<void> {
  try {
    const back = await withConnection(instance, (c) => sql.updateRunning(c, task, -1, task.status));
    if (back) logger.warn({ status: task.status }, 'backup not started by its supervisor; task handed back to be tried again');
  } catch (err) {
    logger.error({ err: errorMessage(err) }, 'backup not started by its supervisor, and the claim could not be handed back');
  }
}
