// The supervisor: one small detached process per backup, started by flock(1) while it holds the
// host lock. It claims its task (status and pid in one conditional statement), starts the backup
// with the lock descriptor and the task marker inherited by its whole tree, and writes the final
// status from the backup's real exit code. The agent that started it can die, restart or be
// upgraded meanwhile; a final status is never lost (journal, then database, retried until written).
import { closeSync, existsSync, writeSync } from 'node:fs';
import type { Logger } from 'pino';
import { connect, isNoSuchTable, type Connection } from '../db/connect.js';
import { loadInstanceConfig, type InstanceConfig } from '../config/instance.js';
import { errorMessage, InstanceError } from '../errors.js';
import { ownFdIsChannel, ownFdOn, scanHost } from './host-scan.js';
import { backupProcesses, killBackup, spawnArgv, waitForExit } from './processes.js';
import { isCancelled } from '../sql/cancel.js';
import * as sql from '../sql/tasks.js';
import { appendJournal, removeJournal, type JournalEntry } from './journal.js';
import {
  ENV_HOST_LOCK,
  ENV_SUPERVISOR,
  ENV_TASK,
  hostPaths,
  REPORT_CLAIMED,
  REPORT_FD,
  SUPERVISOR_EXIT,
  supervisorLockName,
  taskMarker,
  type SupervisorSpec,
  type TaskRecord,
} from './protocol.js';
import { bytesWrittenSince, measuredDirOf, progressReader, PROGRESS_EVERY_MS } from './progress.js';
import { filesCreatedSince, filesUnder, uploadCommandBackup } from './command-upload.js';
import { openRepositoryOf, storeTypeOf, type AgentConfigRef } from '../repo/agent-repository.js';
import type { Repository } from '../repo/repository.js';
import { RUNNER_EXIT, RUNNER_MARK } from '../runner/args.js';
import { writeRecord } from './records.js';
import { exitStatus, REASON, STATUS } from '../task/status.js';

const STDERR_TAIL_BYTES = 4096;
const LOCK_HEARTBEAT_MS = 15_000;
/** Left-over processes of a finished backup get this long after SIGTERM. */
const LEFTOVER_GRACE_MS = 5_000;
const RETRY_CAP_MS = 60_000;

export interface SuperviseDeps {
  spec: SupervisorSpec;
  logger: Logger;
}

/** Holds the liveness lock on its own connection, re-taking it if the connection drops. */
async function holdLivenessLock(instance: InstanceConfig, name: string, logger: Logger): Promise<{ release(): Promise<void> }> {
  let conn: Connection | undefined;
  let busy = false;
  const beat = async () => {
    if (busy) return;
    busy = true;
    try {
      if (conn) {
        await conn.query('SELECT 1');
      } else {
        conn = await connect(instance, { connectTimeoutMs: 5000 });
        if (!(await sql.getLock(conn, name))) logger.warn({ lock: name }, 'liveness lock held by another session');
      }
    } catch {
      await conn?.close();
      conn = undefined;
    } finally {
      busy = false;
    }
  };
  // Taken before the backup starts, so `schedule --wait` never sees a started backup without it.
  await beat();
  const timer = setInterval(() => void beat(), LOCK_HEARTBEAT_MS);
  return {
    async release() {
      clearInterval(timer);
      await conn?.close();
    },
  };
}

/** Tells the agent that started us whether we claimed the task; a no-op when started by hand. */
function report(text: string, lockFd: number): void {
  if (lockFd === REPORT_FD || !ownFdIsChannel(REPORT_FD)) return;
  try {
    writeSync(REPORT_FD, `${text}\n`);
    closeSync(REPORT_FD);
  } catch {
    // the agent went away: the row tells the rest
  }
}

export async function supervise({ spec, logger }: SuperviseDeps): Promise<number> {
  const { key } = spec;
  const paths = hostPaths(spec.hostLock);
  // Never run a backup without the host lock: flock(1) must have started us.
  const lockFd = ownFdOn(paths.runLock);
  if (lockFd === undefined) {
    logger.error({ hostLock: paths.runLock }, 'not started under the host lock; backup not started');
    report('not under the host lock', -1);
    return SUPERVISOR_EXIT.notStarted;
  }
  const instance = loadInstanceConfig(spec.instanceFile);
  try {
    const conn = await connect(instance);
    try {
      // A cancelled backup id is never started: checked here, right before the claim, so an idle
      // tick pays nothing for it. `cancel` records before it changes rows, so a claim that wins
      // after this check is still turned into a quit by it.
      if (await cancelRecorded(conn, key.backupId, logger)) {
        const ended = await sql.endWaitingTask(conn, key, REASON.quitNoProcess);
        if (ended) logger.warn({ status: REASON.quitNoProcess }, 'backup id cancelled (cancel record found); task not started');
        report(
          `status is ${ended ? REASON.quitNoProcess : ((await sql.getTask(conn, key))?.status ?? 'gone')} (backup id cancelled)`,
          lockFd,
        );
        return SUPERVISOR_EXIT.notStarted;
      }
      if (!(await sql.claimTask(conn, key, process.pid))) {
        const row = await sql.getTask(conn, key);
        report(`status is ${row?.status ?? 'gone'}`, lockFd);
        return SUPERVISOR_EXIT.notStarted;
      }
    } finally {
      await conn.close();
    }
  } catch (err) {
    logger.error({ err: errorMessage(err) }, 'cannot claim the task; backup not started');
    report(`cannot claim: ${errorMessage(err)}`, lockFd);
    return SUPERVISOR_EXIT.notStarted;
  }

  const startedAt = new Date();
  const record: TaskRecord = { key, supervisorPid: process.pid, startedAt: startedAt.toISOString(), phase: 'running' };
  saveRecord(paths.records, record, logger);
  const liveness = await holdLivenessLock(instance, supervisorLockName(key), logger);
  report(REPORT_CLAIMED, lockFd);

  // With [repository]: a built-in runner uploads and tells its bytes on stdout; after a backup
  // command, this supervisor uploads what the command created (command-upload.ts).
  const repoRef = spec.repository;
  const builtIn = spec.argv[2] === RUNNER_MARK;
  const backupDir = measuredDirOf(instance);
  let repo: Repository | undefined;
  let before: Set<string> | undefined;
  let repoError: string | undefined;
  if (repoRef && !builtIn) {
    try {
      // Checked before the command runs: a store that cannot take the backup fails it now, not hours later.
      repo = await openRepositoryOf(repoRef);
      await repo.store.check();
      before = backupDir === undefined ? new Set() : await filesUnder(backupDir);
    } catch (err) {
      repoError = errorMessage(err);
    }
  }

  const cwd = spec.cwd !== undefined && existsSync(spec.cwd) ? spec.cwd : undefined;
  const told = progressReader();
  let current: TaskRecord = record;
  const publishBytes = (bytes: number) => {
    if (current.phase !== 'running') return;
    current = { ...current, bytes, bytesAt: new Date().toISOString() };
    saveRecord(paths.records, current, logger);
  };
  let exit: Awaited<ReturnType<typeof waitForExit>>;
  let tail = Buffer.alloc(0);
  let bytes: number | undefined;
  if (repoError === undefined) {
    // Own process group (quit kills the group); the lock descriptor as fd 3 and the marker in the
    // environment go to every process the backup starts.
    const child = spawnArgv(spec.argv, {
      cwd,
      detached: true,
      stdio: ['ignore', repoRef && builtIn ? 'pipe' : 'ignore', 'pipe', lockFd],
      env: { ...process.env, [ENV_TASK]: taskMarker(key), [ENV_SUPERVISOR]: String(process.pid), [ENV_HOST_LOCK]: spec.hostLock },
    });
    child.stdout?.on('data', (chunk: Buffer) => told.feed(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > STDERR_TAIL_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_BYTES);
    });
    if (child.pid !== undefined) {
      logger.info({ backupPid: child.pid, argv: spec.argv, cwd }, 'backup started');
      current = { ...record, backupPid: child.pid };
      saveRecord(paths.records, current, logger);
    }
    const progress =
      repoRef && builtIn
        ? measureProgress(() => Promise.resolve(told.latest() ?? 0), publishBytes)
        : measureProgress(
            backupDir === undefined ? undefined : () => bytesWrittenSince(backupDir, startedAt.getTime()).then((m) => m.bytes),
            publishBytes,
          );
    exit = await waitForExit(child);
    bytes = await progress.stop();
  } else {
    logger.error({ err: repoError }, 'the repository cannot take the backup; backup not started');
    exit = { code: null, signal: null };
  }
  let status = repoError === undefined ? exitStatus(exit.code, exit.signal, exit.error && (exit.error as NodeJS.ErrnoException).code) : '';
  const endedAt = new Date();
  if (repoRef && builtIn && exit.code === RUNNER_EXIT.repository) {
    status = repositoryFailed(repoRef);
    repoError = lastRunnerError(tail.toString('utf8'));
  } else if (repoError !== undefined) {
    status = repositoryFailed(repoRef as AgentConfigRef);
  } else if (repo && status === STATUS.success) {
    // The command's files must be whole before they are read: what it left running goes first.
    await killLeftovers(spec, logger);
    let uploaded = 0;
    const uploading = measureProgress(() => Promise.resolve(uploaded), publishBytes);
    try {
      const files = backupDir === undefined ? [] : await filesCreatedSince(backupDir, before ?? new Set(), startedAt.getTime());
      logger.info({ files: files.map((f) => f.name), repository: repo.where }, 'backup command done; uploading its files');
      const up = await uploadCommandBackup({
        repo,
        key,
        instance,
        files,
        startedAt,
        endedAt,
        argv: spec.argv,
        logger,
        onBytes: (n) => (uploaded = n),
      }).finally(() => uploading.stop());
      bytes = up.bytes;
      logger.info({ bytes: up.bytes, where: up.where }, 'backup uploaded into the repository');
    } catch (err) {
      repoError = errorMessage(err);
      status = repositoryFailed(repoRef as AgentConfigRef);
    }
  }
  const finishedAt = new Date().toISOString();
  current = {
    ...current,
    phase: 'finished',
    status,
    finishedAt,
    ...(bytes !== undefined ? { bytes, bytesAt: finishedAt } : {}),
    ...(repoError !== undefined ? { error: repoError } : {}),
  };
  saveRecord(paths.records, current, logger);
  await liveness.release();
  await killLeftovers(spec, logger);

  const stderrTail = tail.toString('utf8').trim();
  const durationS = Math.round((Date.now() - startedAt.getTime()) / 1000);
  const fields = {
    exitCode: exit.code,
    signal: exit.signal,
    status,
    durationS,
    ...(bytes !== undefined ? { bytes } : {}),
    ...(stderrTail ? { stderrTail } : {}),
    ...(repoError !== undefined ? { repositoryError: repoError } : {}),
  };
  if (status === STATUS.success) logger.info(fields, 'backup finished');
  else logger.error({ ...fields, ...(exit.error ? { err: exit.error.message } : {}) }, 'backup failed');

  const written = await recordFinal(spec, instance, status, logger);
  // The finished record stays: the agent reads the backup's duration and bytes from it, then
  // removes it (see check.ts housekeepAll).
  if (!written) return SUPERVISOR_EXIT.journaled;
  return status === STATUS.success ? SUPERVISOR_EXIT.success : SUPERVISOR_EXIT.failed;
}

/**
 * Whether the instance holds a cancel record of the backup id; no table yet means no cancel. A
 * user without SELECT on the table still gets its backups (README: Privileges), with a warning.
 */
async function cancelRecorded(conn: Connection, backupId: string, logger: Logger): Promise<boolean> {
  try {
    return await isCancelled(conn, backupId);
  } catch (err) {
    if (isNoSuchTable(err)) return false;
    if (err instanceof InstanceError && err.code === 'ER_TABLEACCESS_DENIED_ERROR') {
      logger.warn({ err: errorMessage(err) }, 'cannot read the cancel records (privilege missing); a cancel of this backup id is not seen');
      return false;
    }
    throw err;
  }
}

/**
 * Measures how far the backup has got every few seconds (one measurement at a time: what it has
 * written into BackupDir, or what it has uploaded) and hands it to `publish`; `stop` measures a
 * last time and returns it. Without anything to measure, nothing.
 */
function measureProgress(
  measureOnce: (() => Promise<number>) | undefined,
  publish: (bytes: number) => void,
): { stop(): Promise<number | undefined> } {
  if (measureOnce === undefined) return { stop: () => Promise.resolve(undefined) };
  let walking: Promise<number> | undefined;
  const measure = (): Promise<number> => {
    walking ??= measureOnce().finally(() => {
      walking = undefined;
    });
    return walking;
  };
  const timer = setInterval(() => {
    // A measurement that fails is simply not published: progress never stops a backup.
    if (walking === undefined) void measure().then(publish, () => {});
  }, PROGRESS_EVERY_MS);
  return {
    async stop() {
      clearInterval(timer);
      await walking?.catch(() => {});
      return measure().catch(() => undefined);
    },
  };
}

/** The status of a backup that did not get into the repository: the store's kind (the whole message is in the log). */
function repositoryFailed(ref: AgentConfigRef): string {
  return `failed: upload to ${storeTypeOf(ref)} store`;
}

/** The runner's own account of its failure: its last "backup failed:" line. */
function lastRunnerError(stderr: string): string | undefined {
  const lines = stderr.split('\n').filter((l) => l.includes('backup failed: '));
  const last = lines[lines.length - 1];
  return last === undefined ? undefined : last.slice(last.indexOf('backup failed: ') + 'backup failed: '.length).trim();
}

function saveRecord(dir: string, record: TaskRecord, logger: Logger): void {
  try {
    writeRecord(dir, record);
  } catch (err) {
    // The process table still tells the agent that this backup runs; only the repair of an
    // overwritten row needs the record.
    logger.warn({ err: errorMessage(err), dir }, 'cannot write the local task record');
  }
}

/**
 * The backup is over when its main process exits: helpers it left behind would keep holding the
 * host lock (and so block every later backup of the host), so they go with it.
 */
async function killLeftovers(spec: SupervisorSpec, logger: Logger): Promise<void> {
  const left = backupProcesses(scanHost(), { pids: [] }, spec.key);
  if (left.length === 0) return;
  const res = await killBackup({ pids: [] }, spec.key, LEFTOVER_GRACE_MS);
  logger.warn({ pids: res.killed, survivors: res.survivors }, 'the backup left processes behind; they were terminated');
}

/**
 * Journal first (durable), then the database. If the journal cannot be written (disk full,
 * read-only), the database is still tried — and then retried until it takes the status, because
 * nothing else holds it. Returns false when the status waits in the journal.
 */
async function recordFinal(spec: SupervisorSpec, instance: InstanceConfig, status: string, logger: Logger): Promise<boolean> {
  const { key } = spec;
  let entry: JournalEntry | undefined;
  try {
    entry = appendJournal(spec.stateDir, { key, observedPid: process.pid, status });
  } catch (err) {
    logger.error(
      { err: errorMessage(err), status },
      'cannot write the local journal; writing the database directly and retrying until it takes the status',
    );
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const conn = await connect(instance, { connectTimeoutMs: 5000 });
      try {
        const applied = await sql.updateRunning(conn, key, process.pid, status);
        if (!applied) logger.warn({ status }, 'task changed meanwhile (quit or timeout); final status not written');
      } finally {
        await conn.close();
      }
      if (entry) {
        try {
          removeJournal(spec.stateDir, entry.id);
        } catch (err) {
          logger.warn({ err: errorMessage(err) }, 'cannot remove the delivered journal entry; its delivery will find the row final');
        }
      }
      return true;
    } catch (err) {
      if (entry) logger.warn({ attempt, err: errorMessage(err) }, 'cannot write the final status');
      else logger.error({ attempt, status, err: errorMessage(err) }, 'cannot write the final status, and it is in no journal: retrying');
    }
    if (entry && attempt >= 3) {
      logger.error({ status, journal: entry.id }, 'final status kept in the local journal; it is delivered when the instance is back');
      return false;
    }
    await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** (attempt - 1), RETRY_CAP_MS)));
  }
}
