// The supervisor: one small detached process per running backup. It owns the backup process, so
// the agent (CLI or daemon) can die, restart or be upgraded while the backup goes on, and the
// final status is still written from the backup's real exit code — or journaled when the
// database cannot be reached, for the next check step to deliver.
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { connect, type Connection } from '../db.js';
import { loadInstanceConfig, type InstanceConfig } from '../config/instance.js';
import { errorMessage } from '../errors.js';
import { spawnArgv, waitForExit } from '../process/processes.js';
import * as sql from '../sql/tasks.js';
import type { TaskKey } from '../sql/tasks.js';
import { appendJournal, removeJournal } from './journal.js';
import { exitStatus, STATUS } from './status.js';

/** Marker in the supervisor's command line; housekeeping finds supervisors by it. */
export const SUPERVISOR_MARK = 'spiderbackup-supervisor';

export interface SuperviseArgs {
  key: TaskKey;
  instanceFile: string;
  stateDir: string;
  argv: string[];
  cwd: string | undefined;
  logger: Logger;
}

/** Exit codes of the supervisor process. */
export const SUPERVISOR_EXIT = { success: 0, failed: 1, notStarted: 2, journaled: 3 } as const;

const STDERR_TAIL_BYTES = 4096;
const LOCK_HEARTBEAT_MS = 15_000;

/**
 * The named lock a supervisor holds on its instance while its backup runs. `schedule --wait`
 * asks IS_USED_LOCK on the instance to tell a running backup from a task whose host went away.
 */
export function supervisorLockName(key: Pick<TaskKey, 'port' | 'backupId'>): string {
  return `spiderbackup:${key.port}:${key.backupId}`;
}

/** Holds the lock on its own connection, re-taking it if the connection drops. Best effort. */
function holdLivenessLock(instance: Parameters<typeof connect>[0], name: string, logger: Logger): { release(): Promise<void> } {
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
  void beat();
  const timer = setInterval(() => void beat(), LOCK_HEARTBEAT_MS);
  return {
    async release() {
      clearInterval(timer);
      await conn?.close();
    },
  };
}

export async function supervise(args: SuperviseArgs): Promise<number> {
  const { key, logger } = args;
  const instance = loadInstanceConfig(args.instanceFile);
  let conn: Connection;
  try {
    conn = await connect(instance);
  } catch (err) {
    logger.error({ err: errorMessage(err) }, 'cannot reach the instance to record the pid; backup not started');
    return SUPERVISOR_EXIT.notStarted;
  }
  try {
    if (!(await sql.recordPid(conn, key, process.pid))) {
      const row = await sql.getTask(conn, key);
      logger.warn({ status: row?.status, taskPid: row?.taskPid }, 'task is no longer claimed by this agent; backup not started');
      return SUPERVISOR_EXIT.notStarted;
    }
  } catch (err) {
    logger.error({ err: errorMessage(err) }, 'cannot record the pid; backup not started');
    return SUPERVISOR_EXIT.notStarted;
  } finally {
    await conn.close();
  }

  const lock = holdLivenessLock(instance, supervisorLockName(key), logger);
  const cwd = args.cwd !== undefined && existsSync(args.cwd) ? args.cwd : undefined;
  const started = Date.now();
  const child = spawnArgv(args.argv, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = Buffer.alloc(0);
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > STDERR_TAIL_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_BYTES);
  });
  if (child.pid !== undefined) logger.info({ backupPid: child.pid, argv: args.argv, cwd }, 'backup started');
  const exit = await waitForExit(child);
  await lock.release();
  const status = exitStatus(exit.code, exit.signal, exit.error && (exit.error as NodeJS.ErrnoException).code);
  const stderrTail = tail.toString('utf8').trim();
  const durationS = Math.round((Date.now() - started) / 1000);
  const fields = { exitCode: exit.code, signal: exit.signal, status, durationS, ...(stderrTail ? { stderrTail } : {}) };
  if (status === STATUS.success) logger.info(fields, 'backup finished');
  else logger.error({ ...fields, ...(exit.error ? { err: exit.error.message } : {}) }, 'backup failed');

  return (await recordFinal(args, instance, status)) ? (status === STATUS.success ? SUPERVISOR_EXIT.success : SUPERVISOR_EXIT.failed) : SUPERVISOR_EXIT.journaled;
}

/** Journal first (durable), then the database; the journal entry goes once the row is written. */
async function recordFinal(args: SuperviseArgs, instance: InstanceConfig, status: string): Promise<boolean> {
  const { key } = args;
  const entry = appendJournal(args.stateDir, { key, observedPid: process.pid, status });
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const conn = await connect(instance, { connectTimeoutMs: 5000 });
      try {
        const applied = await sql.updateRunning(conn, key, process.pid, status);
        if (!applied) args.logger.warn({ status }, 'task changed meanwhile (quit or timeout); final status not written');
      } finally {
        await conn.close();
      }
      removeJournal(args.stateDir, entry.id);
      return true;
    } catch (err) {
      args.logger.warn({ attempt, err: errorMessage(err) }, 'cannot write the final status');
      if (attempt < 3) await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
  args.logger.error({ status, journal: entry.id }, 'final status kept in the local journal; it is delivered when the instance is back');
  return false;
}
