// /healthz: healthy while ticks succeed and keep coming. An unreachable instance does not make the
// agent unhealthy (it is reported in the body); a failing or stuck tick loop does.
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
}

/** How old the last good tick may be: a few intervals, but never less than a minute. */
export const staleAfterMs = (intervalMs: number): number => Math.max(3 * intervalMs, 60_000);

export function healthOf(h: HealthInput, now: Date): Health {
  const ageS = h.lastSuccessfulTickAt === undefined ? undefined : Math.round((now.getTime() - h.lastSuccessfulTickAt.getTime()) / 100) / 10;
  let status: string;
  if (h.lastTickOk === undefined) status = 'starting';
  else if (!h.lastTickOk) status = 'failing';
  else if (ageS === undefined || ageS * 1000 > staleAfterMs(h.intervalMs)) status = 'stale';
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
      startedAt: h.startedAt.toISOString(),
    },
  };
}
