// The restore tasks of `spiderbackup restore` for the instances this host serves (README "Restoring
// a cluster — what the agent does"), looked for every RESTORE_EVERY_MS (S3: _S3) off the tick: the open
// restores in the repository, each served instance's task and state, and taskAction's judgement.
// A task to claim gets its detached worker (bin/restorer.ts, once per attempt in this daemon's
// life); a task whose worker died is reported failed with why, so that `restore --resume` redoes it.
// Never under the host lock: the worker takes it.
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { errorMessage } from '../errors.js';
import { commandLineOf, killGroupLeftovers, killProcessGroup, spawnArgv } from '../host/processes.js';
import { closeRepository, openAgentRepository } from '../repo/agent-repository.js';
import type { Repository } from '../repo/repository.js';
import {
  describeTarget,
  document,
  openRestores,
  readDocument,
  stateKey,
  taskAction,
  taskKey,
  type Address,
  type RestoreTaskSpec,
  type RestoreTaskState,
} from '../recovery/job.js';
import { latestLocalStates, writeLocalState } from '../recovery/local-state.js';
import { isWorkerOf, workerArgs } from '../recovery/worker-args.js';
import { singleFlight } from './single-flight.js';

export const RESTORE_EVERY_MS = 5000;
/**
 * In an S3 bucket each look is a LIST request, billed: at hundreds of hosts a look every 5 s
 * would be millions a day for a restore that comes once a year; a claim 30 s later costs nothing
 * ([restore] claim_timeout is 60 s).
 */
export const RESTORE_EVERY_MS_S3 = 30_000;

const RESTORER_SCRIPT = fileURLToPath(new URL('../bin/restorer.js', import.meta.url));

export type RestoreWatchEvent =
  | { kind: 'started'; restoreId: string; target: Address; attempt: number; pid: number }
  | { kind: 'lost'; restoreId: string; target: Address; attempt: number; why: string };

export interface RestoreWatchDeps {
  config: () => AgentConfig;
  logger: () => Logger;
  /** Where a worker's log lines go when there is no [log] file: the agent's own fd. */
  logFd?: 1 | 2;
  onEvent?: (e: RestoreWatchEvent) => void;
  /**
   * Awaited before a worker starts on an instance: the binlog archive lets go of it (it must not
   * archive the restore's load, RESET MASTER and replay as the shard's history).
   */
  beforeWorker?: (target: Address, why: string) => Promise<void>;
}

export interface RestoreWatch {
  start(): void;
  /** Why the tick must not write on an instance (a restore task of this host runs on it), or undefined. */
  holdsWrites(instance: Address): string | undefined;
  /** Why the instance is not to be archived: a restore task runs on it, or its worker is being started. */
  restoring(instance: Address): string | undefined;
  /** Looks now (a reload). */
  poke(): void;
  stop(): Promise<void>;
}

/** A worker is alive when its pid runs our restorer for this very task (a reused pid is not). */
export function workerAliveFor(task: { restoreId: string; target: Address }): (pid: number) => boolean {
  return (pid) => isWorkerOf(commandLineOf(pid), task);
}

export function createRestoreWatch(deps: RestoreWatchDeps): RestoreWatch {
  const spawned = new Set<string>();
  /** Workers started by this daemon, by instance (pid undefined while being started): held from the archive until they end. */
  const starting = new Map<string, { restoreId: string; target: Address; pid: number | undefined }>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const flight = singleFlight((err) => deps.logger().error({ err: errorMessage(err) }, 'looking for restore tasks failed'));

  const look = async (): Promise<void> => {
    const config = deps.config();
    if (config.repository === undefined) return;
    const served = discoverInstances(config.agent.configDir).instances;
    if (served.length === 0) return;
    let repo: Repository | undefined;
    try {
      repo = await openAgentRepository(config);
      for (const restoreId of await openRestores(repo)) {
        for (const inst of served) {
          const target = { host: inst.host, port: inst.port };
          const spec = await readDocument<RestoreTaskSpec>(repo, taskKey(repo, restoreId, target));
          if (!spec) continue;
          const state = await readDocument<RestoreTaskState>(repo, stateKey(repo, restoreId, target));
          const alive = workerAliveFor({ restoreId, target });
          const action = taskAction(spec, state, alive);
          if (action.kind === 'claim' && state && state.attempt < spec.attempt && alive(state.agent.pid)) {
            // Handed out again while the older attempt's worker still runs here (hung): it goes first.
            deps
              .logger()
              .warn(
                { restoreId, target: describeTarget(target), attempt: state.attempt, workerPid: state.agent.pid },
                'the worker of an older attempt still runs: killed',
              );
            killProcessGroup(state.agent.pid);
          }
          if (action.kind === 'claim') await startWorker(config, restoreId, target, spec.attempt);
          else if (action.kind === 'lost' && state) await reportLost(repo, config, state, action.why);
        }
      }
    } finally {
      if (repo) closeRepository(repo);
    }
  };

  const startWorker = async (config: AgentConfig, restoreId: string, target: Address, attempt: number) => {
    const key = `${restoreId} ${describeTarget(target)} ${attempt}`;
    if (spawned.has(key)) return;
    const log = deps.logger();
    if (config.file === undefined) {
      log.error(
        { restoreId, target: describeTarget(target) },
        'a restore task waits here, but the daemon runs without an agent config file for its worker',
      );
      return;
    }
    spawned.add(key);
    const name = describeTarget(target);
    starting.set(name, { restoreId, target, pid: undefined });
    try {
      await deps.beforeWorker?.(target, `restore ${restoreId}`);
    } catch (err) {
      log.warn(
        { restoreId, target: name, err: errorMessage(err) },
        'the binlog archive did not let go of the instance; the restore starts all the same',
      );
    }
    const argv = [process.execPath, RESTORER_SCRIPT, ...workerArgs({ agentConfig: resolve(config.file), restoreId, target, attempt })];
    const fd = deps.logFd ?? 1;
    try {
      // Its own session and process group: it outlives this daemon, as a backup's supervisor does.
      const child = spawnArgv(argv, { detached: true, stdio: ['ignore', fd, fd] });
      child.once('error', (err) =>
        log.error({ restoreId, target: describeTarget(target), err: err.message }, 'cannot start the restore worker'),
      );
      child.unref();
      if (child.pid !== undefined) {
        starting.set(name, { restoreId, target, pid: child.pid });
        log.info({ restoreId, target: describeTarget(target), attempt, workerPid: child.pid }, 'restore task found; its worker started');
        deps.onEvent?.({ kind: 'started', restoreId, target, attempt, pid: child.pid });
      }
    } catch (err) {
      log.error({ restoreId, target: describeTarget(target), err: errorMessage(err) }, 'cannot start the restore worker');
    }
    if (starting.get(name)?.pid === undefined) starting.delete(name);
  };

  const reportLost = async (repo: Repository, config: AgentConfig, state: RestoreTaskState, why: string) => {
    // Its children (a load's client, a replay) would go on writing into the target under a next attempt.
    const killed = state.agent.host === hostname() ? killGroupLeftovers(state.agent.pid) : [];
    if (killed.length > 0) deps.logger().warn({ restoreId: state.restoreId, pids: killed }, "the dead restore worker's processes killed");
    const now = new Date().toISOString();
    const phases = state.phases.map((p) => ({ ...p }));
    const current = phases.at(-1);
    if (current && current.endedAt === undefined) current.endedAt = now;
    phases.push({ phase: 'failed', startedAt: now, endedAt: now });
    const failed: RestoreTaskState = {
      ...state,
      phase: 'failed',
      phases,
      heartbeatAt: now,
      error: `${describeTarget(state.target)}: ${why}; run \`spiderbackup restore --resume ${state.restoreId}\` to redo it`,
    };
    await repo.store.putObject(stateKey(repo, state.restoreId, state.target), document(failed));
    try {
      writeLocalState(config.agent.stateDir, failed);
    } catch {
      // the repository holds it; the local copy is for `status` only
    }
    deps
      .logger()
      .error(
        { restoreId: state.restoreId, target: describeTarget(state.target), attempt: state.attempt, why },
        'restore task lost: reported failed',
      );
    deps.onEvent?.({ kind: 'lost', restoreId: state.restoreId, target: state.target, attempt: state.attempt, why });
  };

  const poke = () => {
    if (!stopped) flight.run(look);
  };
  const runningOn = (instance: Address) =>
    latestLocalStates(deps.config().agent.stateDir).find(
      (st) =>
        st.target.host === instance.host &&
        st.target.port === instance.port &&
        st.phase !== 'done' &&
        st.phase !== 'failed' &&
        workerAliveFor(st)(st.agent.pid),
    );
  return {
    holdsWrites(instance) {
      const running = runningOn(instance);
      return running && `restore ${running.restoreId} runs on it (phase ${running.phase}): the agent's own writes wait`;
    },
    restoring(instance) {
      const running = runningOn(instance);
      if (running) return `restore ${running.restoreId} (phase ${running.phase})`;
      // Started here but not claimed yet (or its state unreadable): held while its worker lives.
      const name = describeTarget(instance);
      const s = starting.get(name);
      if (s && (s.pid === undefined || workerAliveFor(s)(s.pid))) return `restore ${s.restoreId} (starting)`;
      starting.delete(name);
      return undefined;
    },
    start() {
      poke();
      timer = setInterval(poke, deps.config().repository?.store.type === 's3' ? RESTORE_EVERY_MS_S3 : RESTORE_EVERY_MS);
      timer.unref();
    },
    poke,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await flight.inFlight();
    },
  };
}
