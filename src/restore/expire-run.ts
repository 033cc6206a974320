// One `expire` run, for the CLI and for the spider master's agent after a complete backup: the
// cluster's view read when it can be (else the manifests alone, said in the notes), the plan, and,
// when confirmed, the deletion under the repository's expire lock.
import type { AgentConfig } from '../config/agent.js';
import { errorMessage } from '../errors.js';
import { listBackups } from '../cluster/history.js';
import { listRestorePoints } from '../cluster/restore-point.js';
import { openClusterSession } from '../cluster/session.js';
import { readLocks, takeLock } from '../repo/lock.js';
import type { Repository } from '../repo/repository.js';
import { deleteRestorePoint, restorePointTableExists } from '../sql/restore-point.js';
import { shardTablesOf } from '../cluster/shard-tables.js';
import { carryOutExpire, planExpire, type ClusterView, type ExpireDone, type ExpirePlan, type RetentionPolicy } from './expire.js';

/** Every backup the task table can list (`list`'s own bound). */
const ALL_BACKUPS = 10_000;

export interface ExpireRun {
  plan: ExpirePlan;
  /** Present when confirmed. */
  done?: ExpireDone;
}

/**
 * Plans (and with `confirm` carries out) an expire of `repo`. The cluster is read through the
 * spider node of `files` (or the drop-ins); a confirmed run refuses with RepoLockedError while a
 * `verify` or restore holds a lock.
 */
export async function runExpire(
  config: AgentConfig,
  repo: Repository,
  policy: RetentionPolicy,
  opts: { confirm: boolean; files?: readonly string[] | undefined },
): Promise<ExpireRun> {
  let session: ReturnType<typeof openClusterSession> | undefined;
  let cluster: ClusterView | undefined;
  let unreachable: string | undefined;
  try {
    session = openClusterSession(config, opts.files);
    const listed = await listBackups(config, session, { limit: ALL_BACKUPS });
    const points = await listRestorePoints(session, config.schedule.waitConcurrency);
    cluster = { summaries: new Map(listed.backups.map((b) => [b.backupId, b])), points };
  } catch (err) {
    unreachable = errorMessage(err);
  }
  try {
    const lock = opts.confirm ? await takeLock(repo, 'expire') : undefined;
    try {
      // Planned under the lock: nothing read between the plan and the deletion changes under it.
      const plan = await planExpire(repo, policy, cluster, lock ? { ownLock: lock.holder.key } : {});
      if (unreachable !== undefined) plan.notes.unshift(`cluster not read (${unreachable})`);
      if (!lock) return { plan };
      // Through the primary spider node's Spider table, else on each shard master (any spider node).
      const tables = session && cluster ? await shardTablesOf(session, config.schedule.waitConcurrency) : undefined;
      const deletePoint = tables
        ? async (name: string) => {
            await tables.rows(async (c) => {
              if (await restorePointTableExists(c)) await deleteRestorePoint(c, name);
              return [];
            }, true);
          }
        : undefined;
      const dead = (await readLocks(repo)).dead;
      return { plan, done: await carryOutExpire(repo, plan, deletePoint, dead) };
    } finally {
      await lock?.release().catch(() => undefined);
    }
  } finally {
    await session?.close();
  }
}
