// Restore points in the repository (issue 19 item 3): every point recorded is also written as
// `<prefix>/points/<name>.json`, the shape of `restore-point --format json`, so that points outlive
// the cluster (a restore reads them there when the cluster cannot be reached). The table rows stay
// the record: a point whose rows were written is taken, whatever happens here.
import type { AgentConfig } from '../config/agent.js';
import { closeRepository, configuredRepository, locationOf } from '../repo/agent-repository.js';
import { pointsKey, type Repository } from '../repo/repository.js';
import { validateBackupId } from '../task/backup-id.js';
import { pointJson, type RestorePoint } from './restore-point-model.js';

/** `<prefix>/points/<name>.json` */
export function pointKey(repo: Repository, name: string): string {
  return `${pointsKey(repo)}${validateBackupId(name, 'restore point name')}.json`;
}

/** The object's bytes: pointJson, one document, as `restore-point --format json` prints it. */
export const pointDocument = (p: RestorePoint): Buffer => Buffer.from(`${JSON.stringify(pointJson(p), null, 2)}\n`);

/**
 * Writes `point` into the configured repository; undefined without `[repository]`, else where it
 * went. `files`: the spider node's drop-in (the repository's prefix may come from it).
 */
export async function storePoint(
  config: Pick<AgentConfig, 'agent' | 'repository'>,
  files: readonly string[] | undefined,
  point: RestorePoint,
): Promise<string | undefined> {
  if (!config.repository) return undefined;
  const repo = await configuredRepository(config, files);
  if (!repo) return undefined;
  try {
    const key = pointKey(repo, point.name);
    await repo.store.putObject(key, pointDocument(point));
    return locationOf(repo, key);
  } finally {
    closeRepository(repo);
  }
}

/** The point objects of the repository, by name (key and bytes), for `expire`. */
export async function storedPointKeys(repo: Repository): Promise<Map<string, string>> {
  const base = pointsKey(repo);
  const out = new Map<string, string>();
  for (const o of await repo.store.list(base)) {
    const m = /^([A-Za-z0-9_.-]{1,40})\.json$/.exec(o.key.slice(base.length));
    if (m) out.set(m[1] as string, o.key);
  }
  return out;
}
