// Starts one task: a detached supervisor under flock(1), which takes the host lock (or gives up at
// once when another backup of this host holds it), claims the task and reports back.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { expandCommand } from '../config/command-template.js';
import { isSpiderInstance, type InstanceConfig } from '../config/instance.js';
import { spawnArgv, waitForExit } from './processes.js';
import { roleOfWrapper, runnerArgs } from '../runner/args.js';
import { lockedSupervisorArgv, REPORT_CLAIMED, SUPERVISOR_EXIT, type SupervisorSpec } from './protocol.js';
import { isValidBackupId } from '../task/backup-id.js';
import { REASON } from '../task/status.js';
import type { TaskKey, TaskRow } from '../task/task.js';
import type { AgentConfigRef } from '../repo/agent-repository.js';

const SUPERVISOR_SCRIPT = fileURLToPath(new URL('../bin/supervisor.js', import.meta.url));

const RUNNER_SCRIPT = fileURLToPath(new URL('../bin/runner.js', import.meta.url));

/**
 * With `[repository]`: the agent config as this process read it, for the supervisor and the runner
 * to open the same repository. Relative paths in it were resolved against this working directory.
 */
export function repositoryRef(config: AgentConfig): AgentConfigRef | undefined {
  return config.repository !== undefined && config.file !== undefined ? { file: config.file, cwd: process.cwd() } : undefined;
}

/** The backup command of one task, from the agent's templates (never through a shell). */
export function backupArgv(config: AgentConfig, instance: InstanceConfig, task: TaskKey & { wrapper?: string }): string[] {
  const spider = isSpiderInstance(instance) || task.wrapper === 'SPIDER';
  if (config.backup.runner !== 'command') {
    // A built-in runner: our own entry point, which runs the real tool; no credential in this argv.
    const key = { backupId: task.backupId, host: task.host, port: task.port, shardValue: task.shardValue };
    const role = roleOfWrapper(task.wrapper, spider);
    const repository = repositoryRef(config);
    return [
      process.execPath,
      RUNNER_SCRIPT,
      ...runnerArgs({ tool: config.backup.runner, key, role, instanceFile: instance.file, ...(repository ? { repository } : {}) }),
    ];
  }
  return expandCommand(spider ? config.backup.spiderCommand : config.backup.remoteCommand, {
    config: instance.file,
    backup_id: task.backupId,
    shard_value: String(task.shardValue),
    port: String(instance.port),
    host: instance.host,
    install_dir: config.backup.installDir,
  });
}

export function supervisorSpec(config: AgentConfig, instance: InstanceConfig, task: TaskKey): SupervisorSpec {
  const repository = repositoryRef(config);
  return {
    key: { backupId: task.backupId, host: task.host, port: task.port, shardValue: task.shardValue },
    instanceFile: instance.file,
    stateDir: config.agent.stateDir,
    hostLock: config.agent.hostLock,
    cwd: config.backup.installDir,
    logLevel: config.log.level,
    logFile: config.log.file,
    argv: backupArgv(config, instance, task),
    ...(repository ? { repository } : {}),
  };
}

export type StartResult =
  | { kind: 'started'; pid: number; done: Promise<number | null> }
  /** Another backup of this host holds the host lock. */
  | { kind: 'busy' }
  /** Not claimed: claimed elsewhere, no longer waiting; `retry` when worth trying again later. */
  | { kind: 'skipped'; reason: string; retry: boolean };

/**
 * Starts the supervisor in its own session, so it outlives this process, and waits only for its
 * report (claimed or not), never for the backup.
 */
export async function startTask(
  config: AgentConfig,
  instance: InstanceConfig,
  task: TaskRow,
  logger: Logger,
  /** Where the supervisor's log lines go when there is no [log] file: the agent's own log fd. */
  logFd: 1 | 2 = 1,
): Promise<StartResult> {
  // Every runner (the old tool's too) makes a directory of the id: one `schedule` would refuse is never run.
  if (!isValidBackupId(task.backupId)) return { kind: 'skipped', reason: REASON.invalidBackupId, retry: false };
  const spec = supervisorSpec(config, instance, task);
  // flock(1) creates the lock file; its directory is ours to make (never removed, see README).
  mkdirSync(dirname(spec.hostLock), { recursive: true, mode: 0o755 });
  const child = spawnArgv(lockedSupervisorArgv(process.execPath, SUPERVISOR_SCRIPT, spec), {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
  });
  const exited = waitForExit(child, 0);
  const reportPipe = child.stdio[3] as NodeJS.ReadableStream | null;
  const reported = new Promise<string>((resolve) => {
    let text = '';
    if (!reportPipe) return resolve('');
    reportPipe.on('data', (d: Buffer) => (text += d.toString()));
    reportPipe.on('end', () => resolve(text.trim()));
    reportPipe.on('error', () => resolve(text.trim()));
  });
  const line = await reported;
  if (line === REPORT_CLAIMED && child.pid !== undefined) {
    logger.info({ supervisorPid: child.pid, argv: spec.argv }, 'task claimed; backup handed to its supervisor');
    return { kind: 'started', pid: child.pid, done: exited.then((r) => r.code) };
  }
  const r = await exited;
  if (r.code === SUPERVISOR_EXIT.hostBusy) return { kind: 'busy' };
  if (r.error) return { kind: 'skipped', reason: `cannot start the supervisor: ${r.error.message}`, retry: true };
  if (line.startsWith('status is ')) return { kind: 'skipped', reason: line, retry: false };
  return { kind: 'skipped', reason: line || `supervisor exited with ${r.code ?? r.signal} before claiming`, retry: true };
}
