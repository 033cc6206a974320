// The restore worker's command line, in one place: the daemon builds it, bin/restorer.ts parses
// it, and the daemon recognises a live worker by it in /proc/<pid>/cmdline. It carries the task,
// never a credential.
import { parseArgs } from 'node:util';
import { validRestoreId, type Address } from './job.js';

/** Third word of every restore worker's command line. */
export const RESTORER_MARK = 'spiderbackup-restorer';

export interface WorkerArgs {
  /** The agent config the daemon read (absolute). */
  agentConfig: string;
  restoreId: string;
  target: Address;
  attempt: number;
}

export class WorkerUsageError extends Error {
  override readonly name = 'WorkerUsageError';
}

export function workerArgs(a: WorkerArgs): string[] {
  return [
    RESTORER_MARK,
    `--agent-config=${a.agentConfig}`,
    `--restore-id=${a.restoreId}`,
    `--target=${a.target.host}:${a.target.port}`,
    `--attempt=${a.attempt}`,
  ];
}

/** Parses the arguments after the script path; throws WorkerUsageError naming the problem. */
export function parseWorkerArgs(args: readonly string[]): WorkerArgs {
  if (args[0] !== RESTORER_MARK) throw new WorkerUsageError(`first argument must be ${RESTORER_MARK}`);
  let values;
  try {
    ({ values } = parseArgs({
      args: args.slice(1) as string[],
      strict: true,
      options: {
        'agent-config': { type: 'string' },
        'restore-id': { type: 'string' },
        target: { type: 'string' },
        attempt: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new WorkerUsageError((err as Error).message);
  }
  const need = (name: keyof typeof values): string => {
    const v = values[name];
    if (typeof v !== 'string' || v === '') throw new WorkerUsageError(`--${name} is required`);
    return v;
  };
  const restoreId = need('restore-id');
  if (!validRestoreId(restoreId)) throw new WorkerUsageError(`--restore-id ${JSON.stringify(restoreId)} is not a restore id`);
  const target = /^(.+):(\d{1,5})$/.exec(need('target'));
  if (!target) throw new WorkerUsageError(`--target must be host:port, got ${JSON.stringify(values.target)}`);
  const attempt = need('attempt');
  if (!/^\d+$/.test(attempt)) throw new WorkerUsageError(`--attempt must be an integer, got ${JSON.stringify(attempt)}`);
  return {
    agentConfig: need('agent-config'),
    restoreId,
    target: { host: target[1] as string, port: Number(target[2]) },
    attempt: Number(attempt),
  };
}

/** Whether `argv` (a process's whole command line: node, script, mark, …) is the worker of this task. */
export function isWorkerOf(argv: readonly string[] | undefined, task: { restoreId: string; target: Address }): boolean {
  if (!argv || argv[2] !== RESTORER_MARK) return false;
  try {
    const a = parseWorkerArgs(argv.slice(2));
    return a.restoreId === task.restoreId && a.target.host === task.target.host && a.target.port === task.target.port;
  } catch {
    return false;
  }
}
