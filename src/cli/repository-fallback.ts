// Restores that must work when the cluster is gone (issue 19 item 4): run a command against the
// cluster, and when it cannot be reached and a repository is configured, against the repository.
import { errorMessage } from '../errors.js';
import { unreachableOf } from '../db/reachability.js';
import type { Repository } from '../repo/repository.js';

/** `viaCluster`, or `viaRepository` (told why) when it failed because the cluster cannot be reached. */
export async function orFromRepository(
  repo: Repository | undefined,
  viaCluster: () => Promise<number>,
  viaRepository: (repo: Repository, why: string) => Promise<number>,
): Promise<number> {
  try {
    return await viaCluster();
  } catch (err) {
    if (!repo || unreachableOf(err)?.kind !== 'unreachable') throw err;
    return viaRepository(repo, `the cluster cannot be reached (${errorMessage(err)})`);
  }
}
