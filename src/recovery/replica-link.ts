// A target replica, once at the point itself: waits until its new master's task is done (read from
// the repository, where only the master's agent writes it), then follows it from the point's GTID
// with the `replication` login of the target file (MASTER_USE_GTID=slave_pos), and waits until
// both replication threads run.
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type { Queryable } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import { changeMasterTo, setGtidSlavePos, slaveThreads, startSlave } from '../sql/recovery.js';
import { describeTarget, readDocument, stateKey, taskKey, type RestoreTaskSpec, type RestoreTaskState } from './job.js';

export class ReplicaLinkError extends OperationError {
  override readonly name = 'ReplicaLinkError';
}

export const MASTER_WAIT_MS = 24 * 3600_000;
export const THREADS_WAIT_MS = 60_000;
const POLL_MS = 1000;

/** A password file's first line (a trailing newline is not part of it). */
export function readPasswordFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ReplicaLinkError(`${what}: cannot read its password file ${path}: ${errorMessage(err)}`);
  }
  return text.replace(/\r?\n$/, '');
}

/** Resolves with the master's state once done; rejects when it failed or the wait is over. */
export async function waitForMaster(
  repo: Repository,
  spec: Pick<RestoreTaskSpec, 'restoreId' | 'replicateFrom'>,
  opts: { signal?: AbortSignal; timeoutMs?: number; pollMs?: number; onWait?: (why: string) => void },
): Promise<RestoreTaskState> {
  const master = spec.replicateFrom;
  if (!master) throw new ReplicaLinkError('the task has no replicateFrom');
  const who = describeTarget(master);
  const deadline = Date.now() + (opts.timeoutMs ?? MASTER_WAIT_MS);
  let said = '';
  for (;;) {
    opts.signal?.throwIfAborted();
    const task = await readDocument<RestoreTaskSpec>(repo, taskKey(repo, spec.restoreId, master));
    const state = await readDocument<RestoreTaskState>(repo, stateKey(repo, spec.restoreId, master));
    const current = task !== undefined && state !== undefined && state.attempt >= task.attempt;
    if (current && state.phase === 'done') return state;
    if (current && state.phase === 'failed')
      throw new ReplicaLinkError(`its new master ${who} failed its restore (${state.error ?? 'no reason given'}): not linked`);
    const why = current ? `its new master ${who} is in phase ${state.phase}` : `its new master ${who} has not started its task`;
    if (why !== said) opts.onWait?.(why);
    said = why;
    if (Date.now() > deadline)
      throw new ReplicaLinkError(`waited ${Math.round((opts.timeoutMs ?? MASTER_WAIT_MS) / 1000)} s for its new master ${who}: ${why}`);
    await delay(opts.pollMs ?? POLL_MS, undefined, opts.signal ? { signal: opts.signal } : {});
  }
}

export async function linkToMaster(
  db: Queryable,
  spec: Pick<RestoreTaskSpec, 'replicateFrom' | 'toGtid'>,
  opts: { signal?: AbortSignal; timeoutMs?: number },
): Promise<void> {
  const m = spec.replicateFrom;
  if (!m) throw new ReplicaLinkError('the task has no replicateFrom');
  const who = describeTarget(m);
  const password = readPasswordFile(m.passwordFile, `replication login ${m.user} to ${who}`);
  await setGtidSlavePos(db, spec.toGtid);
  await changeMasterTo(db, { host: m.host, port: m.port, user: m.user, password });
  await startSlave(db);
  const deadline = Date.now() + (opts.timeoutMs ?? THREADS_WAIT_MS);
  for (;;) {
    const t = await slaveThreads(db);
    if (t && t.io === 'Yes' && t.sql === 'Yes') return;
    if (t && t.sqlError !== '') throw new ReplicaLinkError(`replication from ${who} stopped: SQL thread error ${t.sqlError}`);
    if (Date.now() > deadline)
      throw new ReplicaLinkError(
        `replication from ${who} not running after ${Math.round((opts.timeoutMs ?? THREADS_WAIT_MS) / 1000)} s: IO thread ${t?.io ?? '?'}${t?.ioError ? ` (${t.ioError})` : ''}, SQL thread ${t?.sql ?? '?'}`,
      );
    await delay(250, undefined, opts.signal ? { signal: opts.signal } : {});
  }
}
