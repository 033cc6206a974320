// /healthz: healthy while ticks succeed and keep coming and every served instance can be worked
// with. A failing or stuck tick loop is unhealthy, and so is an instance that cannot be reached or
// refuses the agent's login (unless this host or the cluster is paused): nothing gets backed up.
// A refused statement (a missing privilege on one table …) stays a warning in the body.
import { downText, type InstanceDown } from '../state/instances-down.js';
import type { Health } from './http.js';

export interface HealthInput {
  startedAt: Date;
  lastTickOk: boolean | undefined;
  lastSuccessfulTickAt: Date | undefined;
  lastError: string | undefined;
  intervalMs: number;
  paused: boolean;
  journalBacklog: number;
  instanceErrors: number;
  /** Served, unpaused instances the last tick could not reach or log in to (instancesDown). */
  instancesDown: readonly InstanceDown[];
}

/** How old the last good tick may be: a few intervals, but never less than a minute. */
export const staleAfterMs = (intervalMs: number): number => Math.max(3 * intervalMs, 60_000);

export function healthOf(h: HealthInput, now: Date): Health {
  const ageS = h.lastSuccessfulTickAt === undefined ? undefined : Math.round((now.getTime() - h.lastSuccessfulTickAt.getTime()) / 100) / 10;
  let status: string;
  if (h.lastTickOk === undefined) status = 'starting';
  else if (!h.lastTickOk) status = 'failing';
  else if (ageS === undefined || ageS * 1000 > staleAfterMs(h.intervalMs)) status = 'stale';
  else if (h.instancesDown.length > 0) status = 'instance-down';
  else status = 'ok';
  return {
    ok: status === 'ok',
    body: {
      status,
      lastSuccessfulTickAt: h.lastSuccessfulTickAt?.toISOString() ?? null,
      lastSuccessfulTickAgeS: ageS ?? null,
      ...(status === 'ok' ? {} : { lastError: h.lastError ?? null }),
      paused: h.paused,
      journalBacklog: h.journalBacklog,
      instanceErrors: h.instanceErrors,
      instancesDown: h.instancesDown.map((d) => ({ port: d.port, role: d.role, host: d.host, file: d.file, why: d.why, error: d.error })),
      ...(h.instancesDown.length > 0 ? { summary: h.instancesDown.map(downText).join('; ') } : {}),
      startedAt: h.startedAt.toISOString(),
    },
  };
}
