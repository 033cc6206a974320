// The agent ↔ supervisor protocol, in one place: how a supervisor is started (under the host lock,
// with which argument vector), how it tells the agent it claimed its task, its exit codes, the
// marker every process of a backup carries in its environment, the database lock it holds, and
// its local record on the host. Both sides import these; nothing else spells them out.
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { taskKeyString, type TaskKey } from '../task/task.js';
import type { AgentConfigRef } from '../repo/agent-repository.js';

/** Third word of every supervisor's command line; the host scan finds supervisors by it. */
export const SUPERVISOR_MARK = 'spiderbackup-supervisor';

/** Exit codes of the supervisor process. */
export const SUPERVISOR_EXIT = {
  success: 0,
  failed: 1,
  /** The task was not claimed (claimed elsewhere, no longer waiting, database unreachable). */
  notStarted: 2,
  /** The final status waits in the local journal. */
  journaled: 3,
  /** flock(1) could not take the host lock: another backup of this host runs. */
  hostBusy: 75,
} as const;

/**
 * The supervisor reports "claimed" (or why not) as one line on this descriptor, then closes it; the
 * agent reads it to tell a started backup from a skipped one without waiting for the backup.
 */
export const REPORT_FD = 3;
export const REPORT_CLAIMED = 'claimed';

/** Environment of every process of a backup: found after a double fork, setsid or supervisor death. */
export const ENV_TASK = 'SPIDERBACKUP_TASK';
export const ENV_SUPERVISOR = 'SPIDERBACKUP_SUPERVISOR_PID';
/**
 * The host lock a backup runs under: the host it belongs to. One per machine in production; tests
 * and the sandbox simulate several hosts on one machine, each with its own.
 */
export const ENV_HOST_LOCK = 'SPIDERBACKUP_HOST_LOCK';

export function taskMarker(key: TaskKey): string {
  return JSON.stringify([key.backupId, key.host, key.port, key.shardValue]);
}

export function parseTaskMarker(text: string): TaskKey | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v) || v.length !== 4) return undefined;
    const [backupId, host, port, shardValue] = v as unknown[];
    if (typeof backupId !== 'string' || typeof host !== 'string' || !Number.isInteger(port) || !Number.isInteger(shardValue))
      return undefined;
    return { backupId, host, port: port as number, shardValue: shardValue as number };
  } catch {
    return undefined;
  }
}

export const sameTask = (a: TaskKey, b: TaskKey): boolean =>
  a.backupId === b.backupId && a.host === b.host && a.port === b.port && a.shardValue === b.shardValue;
/**
 * The named lock a supervisor holds on its instance while its backup runs; `schedule --wait`
 * asks IS_USED_LOCK to tell a running backup from one whose host went away. At most 64
 * characters: 13 + port (5) + 1 + id (40).
 */
export function supervisorLockName(key: Pick<TaskKey, 'port' | 'backupId'>): string {
  return `spiderbackup:${key.port}:${key.backupId}`;
}

// ---- paths on the host ---------------------------------------------------------------------------

export interface HostPaths {
  /** Held (flock) by the running backup's whole process tree. */
  runLock: string;
  /** Held by the one daemon of this host (never by a backup). */
  daemonLock: string;
  /** One record file per backup this host runs or ran, written by its supervisor. */
  records: string;
}

/** Everything host-wide sits beside the run lock, so a host is one setting: `[agent] host_lock`. */
export function hostPaths(hostLock: string): HostPaths {
  const dir = dirname(hostLock);
  const base = basename(hostLock).replace(/\.lock$/, '');
  return { runLock: hostLock, daemonLock: join(dir, `${base}.daemon.lock`), records: join(dir, `${base}.tasks`) };
}

/** A file name for any id `schedule` accepts (non-ASCII, leading '-', '.'): a digest, not the id. */
export function recordFile(records: string, key: TaskKey): string {
  const digest = createHash('sha256').update(taskKeyString(key)).digest('hex').slice(0, 24);
  return join(records, `${key.port}-${digest}.json`);
}

/** What a supervisor says about its backup on the host; the agent believes it over the row. */
export interface TaskRecord {
  key: TaskKey;
  supervisorPid: number;
  startedAt: string;
  /** running: the backup runs; finished: it ended and `status` is being written. */
  phase: 'running' | 'finished';
  backupPid?: number;
  status?: string;
  /** When the backup's main process exited (phase finished). */
  finishedAt?: string;
  /**
   * Bytes written into the instance's BackupDir since the start, and when they were measured;
   * with a repository, the bytes uploaded into it.
   */
  bytes?: number;
  bytesAt?: string;
  /** Why the backup did not get into the repository (phase finished): the daemon shows it as its last error. */
  error?: string;
}

// ---- the supervisor's command line ----------------------------------------------------------------

export interface SupervisorSpec {
  key: TaskKey;
  instanceFile: string;
  stateDir: string;
  hostLock: string;
  cwd: string | undefined;
  logLevel: string;
  logFile: string | undefined;
  /** The backup command. */
  argv: string[];
  /** With `[repository]`: the agent config, for the upload and its progress. */
  repository?: AgentConfigRef;
}

/**
 * Every value as `--name=value`, so an id starting with '-' can never be read as an option; the
 * backup command follows `--`.
 */
export function supervisorArgs(spec: SupervisorSpec): string[] {
  const k = spec.key;
  return [
    SUPERVISOR_MARK,
    `--backup-id=${k.backupId}`,
    `--host=${k.host}`,
    `--port=${k.port}`,
    `--shard-value=${k.shardValue}`,
    `--instance=${spec.instanceFile}`,
    `--state-dir=${spec.stateDir}`,
    `--host-lock=${spec.hostLock}`,
    `--log-level=${spec.logLevel}`,
    ...(spec.cwd !== undefined ? [`--cwd=${spec.cwd}`] : []),
    ...(spec.logFile !== undefined ? [`--log-file=${spec.logFile}`] : []),
    ...(spec.repository !== undefined ? [`--agent-config=${spec.repository.file}`, `--agent-cwd=${spec.repository.cwd}`] : []),
    '--',
    ...spec.argv,
  ];
}

/**
 * The whole vector the agent starts: flock(1) takes the host lock without waiting and, with
 * --no-fork, becomes the supervisor (same pid) still holding it; if the lock is held it exits
 * with SUPERVISOR_EXIT.hostBusy and nothing starts.
 */
export function lockedSupervisorArgv(nodePath: string, script: string, spec: SupervisorSpec): string[] {
  return [
    'flock',
    '--nonblock',
    '--no-fork',
    '--conflict-exit-code',
    String(SUPERVISOR_EXIT.hostBusy),
    spec.hostLock,
    nodePath,
    script,
    ...supervisorArgs(spec),
  ];
}

export class SupervisorUsageError extends Error {
  override readonly name = 'SupervisorUsageError';
}

/** Parses the arguments after the script path; throws SupervisorUsageError naming the problem. */
export function parseSupervisorArgs(args: readonly string[]): SupervisorSpec {
  if (args[0] !== SUPERVISOR_MARK) throw new SupervisorUsageError(`first argument must be ${SUPERVISOR_MARK}`);
  let parsed;
  try {
    parsed = parseArgs({
      args: args.slice(1) as string[],
      allowPositionals: true,
      strict: true,
      options: {
        'backup-id': { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'shard-value': { type: 'string' },
        instance: { type: 'string' },
        'state-dir': { type: 'string' },
        'host-lock': { type: 'string' },
        cwd: { type: 'string' },
        'log-level': { type: 'string' },
        'log-file': { type: 'string' },
        'agent-config': { type: 'string' },
        'agent-cwd': { type: 'string' },
      },
    });
  } catch (err) {
    throw new SupervisorUsageError((err as Error).message);
  }
  const v = parsed.values;
  const need = (name: keyof typeof v): string => {
    const x = v[name];
    if (typeof x !== 'string' || x === '') throw new SupervisorUsageError(`--${name} is required`);
    return x;
  };
  const int = (name: 'port' | 'shard-value'): number => {
    const text = need(name);
    if (!/^\d+$/.test(text)) throw new SupervisorUsageError(`--${name} must be an integer, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  if (parsed.positionals.length === 0) throw new SupervisorUsageError('no backup command after --');
  return {
    key: { backupId: need('backup-id'), host: need('host'), port: int('port'), shardValue: int('shard-value') },
    instanceFile: need('instance'),
    stateDir: need('state-dir'),
    hostLock: need('host-lock'),
    cwd: v.cwd,
    logLevel: v['log-level'] ?? 'info',
    logFile: v['log-file'],
    argv: parsed.positionals,
    ...(v['agent-config'] !== undefined ? { repository: { file: need('agent-config'), cwd: need('agent-cwd') } } : {}),
  };
}

/**
 * The task (and host lock) of a process whose full argument vector is `argv` (from
 * /proc/<pid>/cmdline), when it is a supervisor: node, script, mark, … Exact words, never a
 * substring of a printed line.
 */
export function supervisedTask(argv: readonly string[]): { key: TaskKey; hostLock: string } | undefined {
  const at = argv.indexOf(SUPERVISOR_MARK);
  if (at !== 2) return undefined;
  try {
    const spec = parseSupervisorArgs(argv.slice(at));
    return { key: spec.key, hostLock: spec.hostLock };
  } catch {
    return undefined;
  }
}
