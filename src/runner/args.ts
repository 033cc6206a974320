// The built-in runner's command line (README "Backup runners"): what the supervisor starts instead
// of a template command. It names the task and the instance's ini file, never a credential: the
// runner reads the password from the ini itself and hands it to the tool in an owner-only file.
import { parseArgs } from 'node:util';
import { isValidBackupId } from '../task/backup-id.js';
import type { TaskKey } from '../task/task.js';
import type { AgentConfigRef } from '../repo/agent-repository.js';

export const RUNNER_MARK = 'spiderbackup-runner';
export const RUNNER_TOOLS = ['mariadb-backup', 'mariadb-dump'] as const;
export type RunnerTool = (typeof RUNNER_TOOLS)[number];
export type RunnerRole = 'master' | 'slave' | 'spider';

export interface RunnerSpec {
  tool: RunnerTool;
  key: TaskKey;
  role: RunnerRole;
  /** The instance's dbbackup.<port>.ini: credentials and [Public] BackupDir. */
  instanceFile: string;
  /** With `[repository]`: the agent config the backup goes by, streamed there instead of BackupDir. */
  repository?: AgentConfigRef;
}

/** Exit codes of the runner besides 0 (complete) and 1 (failed). */
export const RUNNER_EXIT = {
  /** The repository could not be used or refused the backup: the supervisor's status names the store. */
  repository: 3,
} as const;

export class RunnerUsageError extends Error {
  override readonly name = 'RunnerUsageError';
}

/** Every value as `--name=value`, so an id starting with '-' is never read as an option. */
export function runnerArgs(spec: RunnerSpec): string[] {
  const k = spec.key;
  return [
    RUNNER_MARK,
    `--tool=${spec.tool}`,
    `--backup-id=${k.backupId}`,
    `--host=${k.host}`,
    `--port=${k.port}`,
    `--shard-value=${k.shardValue}`,
    `--role=${spec.role}`,
    `--instance=${spec.instanceFile}`,
    ...(spec.repository ? [`--agent-config=${spec.repository.file}`, `--agent-cwd=${spec.repository.cwd}`] : []),
  ];
}

export function roleOfWrapper(wrapper: string | undefined, spider: boolean): RunnerRole {
  if (spider || wrapper?.toUpperCase() === 'SPIDER') return 'spider';
  return wrapper?.toLowerCase() === 'mysql_slave' ? 'slave' : 'master';
}

export function parseRunnerArgs(args: readonly string[]): RunnerSpec {
  if (args[0] !== RUNNER_MARK) throw new RunnerUsageError(`first argument must be ${RUNNER_MARK}`);
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({
      args: args.slice(1) as string[],
      strict: true,
      options: {
        tool: { type: 'string' },
        'backup-id': { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'shard-value': { type: 'string' },
        role: { type: 'string' },
        instance: { type: 'string' },
        'agent-config': { type: 'string' },
        'agent-cwd': { type: 'string' },
      },
    }).values as Record<string, string | undefined>;
  } catch (err) {
    throw new RunnerUsageError((err as Error).message);
  }
  const need = (name: string): string => {
    const v = values[name];
    if (v === undefined || v === '') throw new RunnerUsageError(`--${name} is required`);
    return v;
  };
  const int = (name: string): number => {
    const v = need(name);
    if (!/^\d+$/.test(v)) throw new RunnerUsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const tool = need('tool');
  if (!(RUNNER_TOOLS as readonly string[]).includes(tool)) throw new RunnerUsageError(`--tool must be one of ${RUNNER_TOOLS.join(', ')}`);
  const role = need('role');
  if (!['master', 'slave', 'spider'].includes(role)) throw new RunnerUsageError('--role must be master, slave or spider');
  const backupId = need('backup-id');
  // The runner is the last line: whoever started it, an id that could name a path is refused.
  if (!isValidBackupId(backupId)) throw new RunnerUsageError(`--backup-id ${JSON.stringify(backupId)}: invalid backup id`);
  return {
    tool: tool as RunnerTool,
    key: { backupId, host: need('host'), port: int('port'), shardValue: int('shard-value') },
    role: role as RunnerRole,
    instanceFile: need('instance'),
    ...(values['agent-config'] !== undefined ? { repository: { file: need('agent-config'), cwd: need('agent-cwd') } } : {}),
  };
}
