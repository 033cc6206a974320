// Restore points as the repository keeps them (`<prefix>/points/<name>.json`, the JSON of
// `restore-point --format json`), so a restore can find its point when the cluster cannot be
// reached or no longer records it.
import { errorMessage } from '../errors.js';
import { pointsKey, type Repository } from '../repo/repository.js';
import { RepoError } from '../repo/store.js';
import type { RestorePoint } from '../cluster/restore-point-model.js';
import { isValidBackupId } from '../task/backup-id.js';

/** The point of that name in the repository; undefined when it is not there. */
export async function readRepoPoint(repo: Repository, name: string): Promise<RestorePoint | undefined> {
  if (!isValidBackupId(name)) return undefined;
  const key = `${pointsKey(repo)}${name}.json`;
  const body = await repo.store.getObject(key);
  return body ? parsePoint(body, `${repo.where}: ${key}`) : undefined;
}

/** Every point in the repository; those that cannot be read are named in `problems`. */
export async function readRepoPoints(repo: Repository): Promise<{ points: RestorePoint[]; problems: string[] }> {
  const points: RestorePoint[] = [];
  const problems: string[] = [];
  for (const o of await repo.store.list(pointsKey(repo))) {
    if (!o.key.endsWith('.json')) continue;
    try {
      const body = await repo.store.getObject(o.key);
      if (body) points.push(parsePoint(body, `${repo.where}: ${o.key}`));
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  return { points, problems };
}

/** The points of both places by name, the cluster's first (it is where they are recorded). */
export function mergePoints(cluster: readonly RestorePoint[], repo: readonly RestorePoint[]): RestorePoint[] {
  const names = new Set(cluster.map((p) => p.name));
  return [...cluster, ...repo.filter((p) => !names.has(p.name))];
}

function parsePoint(body: Buffer, where: string): RestorePoint {
  let v: Partial<RestorePoint>;
  try {
    v = JSON.parse(body.toString('utf8')) as Partial<RestorePoint>;
  } catch (err) {
    throw new RepoError(`${where}: not JSON: ${errorMessage(err)}`);
  }
  if (typeof v.name !== 'string' || typeof v.takenAt !== 'string' || !Array.isArray(v.shards))
    throw new RepoError(`${where}: not a restore point (name, takenAt, shards)`);
  return {
    name: v.name,
    takenAt: v.takenAt,
    pauseMs: Number(v.pauseMs ?? 0),
    acquireMs: Number(v.acquireMs ?? 0),
    holdMs: Number(v.holdMs ?? 0),
    spiderNodes: Number(v.spiderNodes ?? 0),
    internalXa: v.internalXa === true,
    complete: v.complete !== false,
    status: v.status === 'opted-out' ? 'opted-out' : 'taken',
    shards: v.shards.map((s) => ({
      serverName: String(s.serverName),
      shardValue: Number(s.shardValue),
      host: String(s.host),
      port: Number(s.port),
      gtid: String(s.gtid),
    })),
  };
}
