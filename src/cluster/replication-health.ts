// What is wrong with a replica's replication, in words for `status --cluster` and `--wait`. Pure.
import type { ReplicationStatus } from '../sql/replication.js';
import { formatSeconds } from '../format.js';

/** A replica further behind than this is named as lagging. */
export const LAG_PROBLEM_S = 300;

export function replicationProblem(r: ReplicationStatus | undefined, lagLimitS = LAG_PROBLEM_S): string | undefined {
  if (r === undefined) return 'replication is not configured (SHOW SLAVE STATUS is empty)';
  if (r.sqlRunning !== 'Yes') {
    const why = r.sqlErrno ? `: error ${r.sqlErrno} ${r.sqlError}` : ' (stopped by an operator?)';
    return `replication SQL thread is not running${why}`;
  }
  if (r.ioRunning !== 'Yes')
    return `replication IO thread is ${r.ioRunning === 'Connecting' ? 'connecting' : 'not running'}${r.ioError ? `: ${r.ioError}` : ''}`;
  if (r.lagS !== null && r.lagS > lagLimitS) return `replication lags ${formatSeconds(r.lagS)} behind its master`;
  return undefined;
}
