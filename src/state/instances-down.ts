// Which served instances the agent cannot work with right now: those the last tick could not reach
// or that refused its login (src/db/reachability.ts says which errors those are). While this host
// or the cluster is paused none counts: an operator stopped instances on purpose. /healthz answers
// 503 and host `status` exits 1 while the list is not empty.
import type { CheckReport } from '../check/check.js';
import { describeUnreachable } from '../db/reachability.js';
import { isSpiderInstance } from '../config/instance.js';
import type { ClusterPause } from '../sql/cluster-pause.js';

export interface InstanceDown {
  port: number;
  host: string;
  role: string;
  file: string;
  /** "cannot be reached (ECONNREFUSED)" or "refuses the agent's login (ER_ACCESS_DENIED_ERROR)". */
  why: string;
  /** The error as the last tick met it. */
  error: string;
}

export function instancesDown(report: Pick<CheckReport, 'instances'> | undefined, paused: boolean): InstanceDown[] {
  if (report === undefined || paused) return [];
  return report.instances.flatMap((r) =>
    r.unreachable === undefined
      ? []
      : [
          {
            port: r.instance.port,
            host: r.instance.host,
            role: r.instance.role || (isSpiderInstance(r.instance) ? 'spider' : ''),
            file: r.instance.file,
            why: describeUnreachable(r.unreachable),
            error: r.error ?? '',
          },
        ],
  );
}

/** One line per instance, for the health body's summary, `status` and the log. */
export const downText = (d: InstanceDown): string => `port ${d.port}${d.role ? ` (${d.role})` : ''} ${d.why}: ${d.error}`;

/**
 * The cluster pause to judge by: what this tick read; when it could read no instance at all (the
 * pause lives in their tables), the last one known, while it lasts, so that a cluster paused to
 * stop its instances does not turn this host unhealthy.
 */
export function clusterPauseKnown(
  previous: ClusterPause | undefined,
  report: Pick<CheckReport, 'instances' | 'clusterPause'>,
  now: Date,
): ClusterPause | undefined {
  if (report.clusterPause !== undefined) return report.clusterPause;
  if (report.instances.some((r) => r.error === undefined)) return undefined;
  return previous !== undefined && Date.parse(previous.until) > now.getTime() ? previous : undefined;
}
