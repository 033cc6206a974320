// The restore worker: one detached process per restore task, started by the daemon (restore-watch)
// in its own process group so that it outlives a daemon restart, as a backup's supervisor does. It
// claims the task (its state object, with its pid), takes the host lock (waiting for a backup of
// this host to end), carries the task out (restore-instance.ts) and reports every phase with its
// times and bytes, a heartbeat every HEARTBEAT_MS, and the end: `done` with the GTID reached or
// `failed` with what failed (one line naming the instance; never a stack, never a password). The
// same state is kept in the state_dir (local-state.ts).
import { hostname } from 'node:os';
import { loadAgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { closeRepository, openAgentRepository } from '../repo/agent-repository.js';
import type { Repository } from '../repo/repository.js';
import { takeHostLock, type HeldHostLock } from '../host/host-lock.js';
import { commandLineOf } from '../host/processes.js';
import { packageVersion } from '../version.js';
import {
  describeTarget,
  document,
  HEARTBEAT_MS,
  readDocument,
  RESTORE_FORMAT,
  stateKey,
  taskKey,
  type RestorePhase,
  type RestoreTaskSpec,
  type RestoreTaskState,
} from './job.js';
import { writeLocalState } from './local-state.js';
import { restoreInstance } from './restore-instance.js';
import { isWorkerOf, type WorkerArgs } from './worker-args.js';

export const WORKER_EXIT = { done: 0, failed: 1, notStarted: 2 } as const;

export interface WorkerDeps {
  args: WorkerArgs;
  logger: Logger;
  /** Tests: how long a replica waits for its master. */
  masterWaitMs?: number;
}

/** Writes the state into the repository and the state_dir, one write at a time, in order. */
class StateWriter {
  private chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly repo: Repository,
    private readonly stateDir: string,
    private readonly logger: Logger,
    readonly state: RestoreTaskState,
  ) {}

  write(): Promise<void> {
    const snapshot: RestoreTaskState = {
      ...this.state,
      phases: this.state.phases.map((p) => ({ ...p })),
      heartbeatAt: new Date().toISOString(),
    };
    this.state.heartbeatAt = snapshot.heartbeatAt;
    this.chain = this.chain.then(async () => {
      try {
        writeLocalState(this.stateDir, snapshot);
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, 'cannot write the local copy of the restore state');
      }
      try {
        await this.repo.store.putObject(stateKey(this.repo, snapshot.restoreId, snapshot.target), document(snapshot));
      } catch (err) {
        this.logger.warn(
          { err: errorMessage(err) },
          'cannot write the restore state into the repository (tried again at the next heartbeat)',
        );
      }
    });
    return this.chain;
  }

  phase(p: RestorePhase, extra: Partial<RestoreTaskState> = {}): Promise<void> {
    const now = new Date().toISOString();
    const current = this.state.phases.at(-1);
    if (current && current.endedAt === undefined) {
      current.endedAt = now;
      if (this.state.bytes > 0) current.bytes = this.state.bytes;
    }
    this.state.phase = p;
    this.state.bytes = 0;
    if (p === 'done' || p === 'failed') this.state.phases.push({ phase: p, startedAt: now, endedAt: now });
    else this.state.phases.push({ phase: p, startedAt: now });
    Object.assign(this.state, extra);
    return this.write();
  }
}

export async function runRestoreWorker(deps: WorkerDeps): Promise<number> {
  const { args, logger } = deps;
  const who = describeTarget(args.target);
  const config = loadAgentConfig(args.agentConfig);
  const instance = discoverInstances(config.agent.configDir).instances.find(
    (i) => i.host === args.target.host && i.port === args.target.port,
  );
  if (!instance) {
    logger.error({ target: who }, `no drop-in in ${config.agent.configDir} serves ${who}: not started`);
    return WORKER_EXIT.notStarted;
  }
  const repo = await openAgentRepository(config);
  try {
    const spec = await readDocument<RestoreTaskSpec>(repo, taskKey(repo, args.restoreId, args.target));
    if (!spec || spec.attempt !== args.attempt) {
      logger.warn({ attempt: args.attempt, specAttempt: spec?.attempt }, 'the task is gone or was handed out again: not started');
      return WORKER_EXIT.notStarted;
    }
    const before = await readDocument<RestoreTaskState>(repo, stateKey(repo, args.restoreId, args.target));
    if (
      before &&
      before.attempt === spec.attempt &&
      before.agent.pid !== process.pid &&
      isWorkerOf(commandLineOf(before.agent.pid), { restoreId: args.restoreId, target: args.target })
    ) {
      logger.warn({ pid: before.agent.pid }, 'another worker of this host runs the task: not started');
      return WORKER_EXIT.notStarted;
    }
    const now = new Date().toISOString();
    const writer = new StateWriter(repo, config.agent.stateDir, logger, {
      format: RESTORE_FORMAT,
      restoreId: spec.restoreId,
      target: spec.target,
      attempt: spec.attempt,
      phase: 'claimed',
      phases: [{ phase: 'claimed', startedAt: now }],
      bytes: 0,
      agent: { host: hostname(), pid: process.pid, version: packageVersion() },
      heartbeatAt: now,
    });
    await writer.write();
    logger.info(
      { role: spec.role, shard: spec.shard, source: `${describeTarget(spec.source)} ${spec.source.backupId}` },
      'restore task claimed',
    );
    const heartbeat = setInterval(() => void writer.write(), HEARTBEAT_MS);
    const abort = new AbortController();
    const stop = () => abort.abort(new Error('stopped by a signal'));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    let lock: HeldHostLock | undefined;
    try {
      lock = await takeHostLock(
        config.agent.hostLock,
        () =>
          logger.info(
            { hostLock: config.agent.hostLock },
            'waiting for the host lock: a backup (or another restore task) of this host runs',
          ),
        abort.signal,
      );
      const r = await restoreInstance(
        spec,
        {
          config,
          instance,
          repo,
          stagingDir: config.restore.stagingDir,
          signal: abort.signal,
          log: (msg, fields) => logger.info(fields ?? {}, msg),
          ...(deps.masterWaitMs !== undefined ? { masterWaitMs: deps.masterWaitMs } : {}),
          redo:
            before !== undefined &&
            before.attempt < spec.attempt &&
            before.phases.some((p) => p.phase !== 'claimed' && p.phase !== 'failed'),
          beforeWait: () => {
            lock?.release();
            lock = undefined;
          },
        },
        {
          phase: (p) => {
            logger.info({ phase: p }, `restore phase ${p}`);
            void writer.phase(p);
          },
          bytes: (n) => {
            writer.state.bytes = n;
          },
        },
      );
      await writer.phase('done', { gtid: r.gtid });
      logger.info({ gtid: r.gtid }, 'restore task done');
      return WORKER_EXIT.done;
    } catch (err) {
      const error = `${who}: ${writer.state.phase === 'claimed' ? 'before the fetch' : `in phase ${writer.state.phase}`}: ${errorMessage(err)}`;
      logger.error({ err: error }, 'restore task failed');
      await writer.phase('failed', { error });
      return WORKER_EXIT.failed;
    } finally {
      clearInterval(heartbeat);
      lock?.release();
      process.removeListener('SIGTERM', stop);
      process.removeListener('SIGINT', stop);
    }
  } finally {
    closeRepository(repo);
  }
}
