// The contract of a whole-cluster restore (issue 20): what the `restore` command writes into the
// repository, what the agent serving a target instance reads and reports back, and the pure
// judgements both sides make. The repository is the one place both can reach on the disaster day
// and the one a physical restore cannot erase (the target's datadir is replaced):
//
//   <prefix>/restores/open/<restore-id>                   present while the restore runs (agents list it)
//   <prefix>/restores/<restore-id>/restore.json           RestoreRecord, written once by the command
//   <prefix>/restores/<restore-id>/tasks/<host>_<port>.json   RestoreTaskSpec, one per target instance
//   <prefix>/restores/<restore-id>/state/<host>_<port>.json   RestoreTaskState, written only by the target's agent
//   <prefix>/restores/<restore-id>/result.json            RestoreResult, written by the command at the end
//
// A spider node's task is written only when every shard task reached the point, so nothing is
// ever routed through a new spider node to a half-restored cluster.
import type { ReplayRun } from '../archive/archive-index.js';
import { RepoError, NOT_FOUND } from '../repo/store.js';
import type { Repository } from '../repo/repository.js';
import { isValidBackupId } from '../task/backup-id.js';

export const RESTORE_FORMAT = 1;

export type RestoreRole = 'master' | 'replica' | 'spider';

/** In order; `failed` can follow any, `done` follows `replay` (or `route` on a spider node). */
export const RESTORE_PHASES = ['claimed', 'fetch', 'load', 'replay', 'route', 'done', 'failed'] as const;
export type RestorePhase = (typeof RESTORE_PHASES)[number];

export interface Address {
  host: string;
  port: number;
}

/** Where a task's instance is restored from: one instance's backup in the repository. */
export interface RestoreSource extends Address {
  backupId: string;
  /** The source's mysql.servers name (SPT3, SPT_SLAVE3, SPIDER…), for messages. */
  serverName: string;
  tool: string;
  /** sha256 of its manifest object as the plan read it: a manifest changed since is refused. */
  manifestSha256: string;
}

/** A Spider route of the restored cluster: `CREATE SERVER <name>` on every new spider node. */
export interface RestoreRoute extends Address {
  /** SPT<n>, SPT_SLAVE<n>, or SPIDER<k> for the new spider nodes themselves. */
  name: string;
  wrapper: 'mysql' | 'mysql_slave' | 'SPIDER';
  /** The login Spider uses (the target file's); the password travels only in `passwordFile`. */
  user: string;
  /** Path of a file holding the password, read by the target's agent on its own host. */
  passwordFile: string;
}

export interface RestoreTaskSpec {
  format: typeof RESTORE_FORMAT;
  restoreId: string;
  target: Address;
  role: RestoreRole;
  /** The shard's ShardValue; 0 for a spider node. */
  shard: number;
  /** Raised by `--resume` for every task it hands out again: a state of an older attempt is stale. */
  attempt: number;
  source: RestoreSource;
  /** The backup's GTID position (for a replica's backup: its master's), where the replay starts after. */
  fromGtid: string;
  /** The point's GTID position for this shard; the replay stops there, inclusive. Spider nodes: ''. */
  toGtid: string;
  /** The binlog archive's runs to replay, in order (plan.ts archiveRuns). Empty on a spider node. */
  archiveRuns: ReplayRun[];
  /** A target replica: its new master, and the replication login (password in a file on the replica's host). */
  replicateFrom?: Address & { user: string; passwordFile: string };
  /** A spider node: the routes to write into its mysql.servers (never the source's). */
  routes?: RestoreRoute[];
  /** The target file said `"scratch": true`: whatever the instance holds may be wiped first. */
  scratch: boolean;
}

export interface PhaseTime {
  phase: RestorePhase;
  startedAt: string;
  /** Absent while the phase runs. */
  endedAt?: string;
  bytes?: number;
}

export interface RestoreTaskState {
  format: typeof RESTORE_FORMAT;
  restoreId: string;
  target: Address;
  attempt: number;
  phase: RestorePhase;
  /** Every phase entered so far, with its times (the command's per-phase report). */
  phases: PhaseTime[];
  /** Bytes of the current phase so far (fetched, loaded, replayed). */
  bytes: number;
  /** The agent carrying it out. */
  agent: { host: string; pid: number; version: string };
  /** Refreshed at least every HEARTBEAT_MS while the task runs: an older one means the worker is gone. */
  heartbeatAt: string;
  /** `done`: the GTID position the instance reached (@@gtid_binlog_pos on a master, gtid_slave_pos on a replica). */
  gtid?: string;
  /** `failed`: what failed, naming the instance, the object or the statement. */
  error?: string;
}

export interface RestoreRecord {
  format: typeof RESTORE_FORMAT;
  restoreId: string;
  createdAt: string;
  /** The host the command ran on, for messages. */
  createdBy: string;
  backupId: string;
  point: { name: string; takenAt: string };
  /** `--to-time` as asked, when the point was chosen by time. */
  requestedTime?: string;
  /** Every target instance, for the overlap check of a second restore. */
  targets: Address[];
  /** The target file's tdbctl, when given. */
  tdbctl?: Address;
}

export interface RestoreResult {
  format: typeof RESTORE_FORMAT;
  restoreId: string;
  outcome: 'done' | 'partial' | 'failed';
  endedAt: string;
  /** Wall time of the whole restore and the sum of each phase over the tasks (ms). */
  totalMs: number;
  phaseMs: Partial<Record<RestorePhase, number>>;
  /** Tasks that did not reach the point, each with its error. */
  failed: { target: Address; error: string }[];
  routed: boolean;
}

/** What `spiderbackup restore` and the drill ask of runRestore (src/recovery/run-restore.ts). */
export interface RestoreRequest {
  /** Absent: the newest backup usable for the point, as restore-plan chooses it. */
  backupId?: string | undefined;
  pointName?: string | undefined;
  toTime?: string | undefined;
  /** Path of target.json. */
  targetFile: string;
  /** Check everything, write nothing, return the plan. */
  dryRun?: boolean;
  /** Redo only the unfinished tasks of this restore. */
  resumeId?: string | undefined;
  /** At most this many shards restored at once (default: all). */
  parallel?: number | undefined;
  /** The drill: a target file without `"scratch": true` is refused. */
  requireScratch?: boolean;
}

/** What runRestore reports while it runs (the command prints them; the drill logs them). */
export type RestoreEvent =
  | { kind: 'planned'; restoreId: string; backupId: string; point: string; tasks: number }
  | {
      kind: 'phase';
      target: Address;
      role: RestoreRole;
      shard: number;
      phase: RestorePhase;
      bytes: number;
      ms: number;
      error?: string;
      /** `done`: the GTID position the instance reached. */
      gtid?: string;
    }
  | { kind: 'routed'; spiders: Address[] }
  /** Something the command waits for or decided on the way (e.g. the archive not covering the point yet). */
  | { kind: 'note'; line: string };

export interface RestoreOutcome {
  /** Absent when refused before anything was written (and on a dry run). */
  restoreId?: string;
  dryRun: boolean;
  /** Why it was refused or what failed, one line each, naming the instance, object or file. Empty: all well. */
  problems: string[];
  /** One line per task of the plan: target, role, shard, source backup, GTIDs, bytes to fetch. */
  plan: string[];
  /** Present once the restore ran (not on a dry run or a refusal). */
  result?: RestoreResult;
}

/** Restores are named like backups, `r-YYYYMMDD-HHMMSS` (UTC) by default. */
export function validRestoreId(id: string): boolean {
  return isValidBackupId(id);
}

export const HEARTBEAT_MS = 5_000;
/** A running task whose state was not refreshed for this long has lost its worker. */
export const LOST_AFTER_MS = 60_000;

export const instanceName = (a: Address): string => `${a.host}_${a.port}`;
export const describeTarget = (a: Address): string => `${a.host}:${a.port}`;

export const restoresKey = (repo: Repository): string => `${repo.prefix}/restores/`;
export const openKey = (repo: Repository, id: string): string => `${restoresKey(repo)}open/${id}`;
export const restoreKey = (repo: Repository, id: string): string => `${restoresKey(repo)}${id}/`;
export const recordKey = (repo: Repository, id: string): string => `${restoreKey(repo, id)}restore.json`;
export const taskKey = (repo: Repository, id: string, a: Address): string => `${restoreKey(repo, id)}tasks/${instanceName(a)}.json`;
export const stateKey = (repo: Repository, id: string, a: Address): string => `${restoreKey(repo, id)}state/${instanceName(a)}.json`;
export const resultKey = (repo: Repository, id: string): string => `${restoreKey(repo, id)}result.json`;

export const document = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);

/** A small JSON object of the restore, or undefined when absent; a damaged one is a RepoError naming its key. */
export async function readDocument<T>(repo: Repository, key: string): Promise<T | undefined> {
  let data: Buffer | undefined;
  try {
    data = await repo.store.getObject(key);
  } catch (err) {
    if (err instanceof RepoError && err.code === NOT_FOUND) return undefined;
    throw err;
  }
  if (data === undefined) return undefined;
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch {
    throw new RepoError(`${repo.store.where}: ${key} is not valid JSON`);
  }
}

/** The ids of the restores that are running (their `open/` marker is there). */
export async function openRestores(repo: Repository): Promise<string[]> {
  const base = `${restoresKey(repo)}open/`;
  return (await repo.store.list(base)).map((o) => o.key.slice(base.length)).filter(validRestoreId);
}

/** What a target's agent should do about a task it serves, given its state (pure). */
export type TaskAction =
  | { kind: 'claim' }
  /** This agent already runs it (its worker is alive): nothing. */
  | { kind: 'running' }
  /** Finished (done or failed) in this attempt: nothing. */
  | { kind: 'finished' }
  /** Claimed by this host's worker, which died: report it failed so that `--resume` can redo it. */
  | { kind: 'lost'; why: string };

export function taskAction(
  spec: Pick<RestoreTaskSpec, 'attempt'>,
  state: Pick<RestoreTaskState, 'attempt' | 'phase' | 'agent'> | undefined,
  workerAlive: (pid: number) => boolean,
): TaskAction {
  if (!state || state.attempt < spec.attempt) return { kind: 'claim' };
  if (state.phase === 'done' || state.phase === 'failed') return { kind: 'finished' };
  if (workerAlive(state.agent.pid)) return { kind: 'running' };
  return { kind: 'lost', why: `its worker (pid ${state.agent.pid} on ${state.agent.host}) died in phase ${state.phase}` };
}

/**
 * The command's view of one task from its last state (pure). Times are the command's own clock:
 * `sinceMs` is when it wrote the task (no state of this attempt yet) or when it last saw the
 * state's heartbeat change, so a clock skew between hosts cannot make a live worker look lost.
 */
export function taskProgress(
  spec: Pick<RestoreTaskSpec, 'attempt'>,
  state: RestoreTaskState | undefined,
  sinceMs: number,
  nowMs: number,
  claimWithinMs: number,
): { kind: 'waiting' | 'running' | 'done' } | { kind: 'failed'; error: string } {
  if (!state || state.attempt < spec.attempt) {
    return nowMs - sinceMs > claimWithinMs
      ? {
          kind: 'failed',
          error: `no agent claimed it within ${Math.round(claimWithinMs / 1000)} s: is an agent with this repository serving the instance?`,
        }
      : { kind: 'waiting' };
  }
  if (state.phase === 'done') return { kind: 'done' };
  if (state.phase === 'failed') return { kind: 'failed', error: state.error ?? 'failed' };
  if (nowMs - sinceMs > LOST_AFTER_MS)
    return { kind: 'failed', error: `its agent's worker stopped reporting in phase ${state.phase} (last at ${state.heartbeatAt})` };
  return { kind: 'running' };
}
