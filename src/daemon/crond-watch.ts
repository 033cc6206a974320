// The daemon's look at mysql-crond: at start, on reload and then at most every CROND_EVERY_MS (not
// every tick), off the tick. What it finds is said once per change in the log, and kept for
// `status` until the next look says otherwise.
import type { Logger } from 'pino';
import { lookAtCrond, type CrondLook } from '../host/crond.js';
import { singleFlight } from './single-flight.js';

export const CROND_EVERY_MS = 5 * 60_000;

export interface CrondWatchDeps {
  /** `[migration] mysql_crond` as currently configured; undefined: off. */
  binary: () => string | undefined;
  logger: () => Logger;
  /** A look changed what `status` should show. */
  onChange: () => void;
}

export interface CrondWatch {
  /** Starts a look if none runs and the last is CROND_EVERY_MS old (or `force`). */
  poke(now: number, force?: boolean): void;
  /** The lines for `status`: one per old job still coming back, or the list could not be read. */
  lines(): string[];
  /** The look in flight, if any (for shutdown). */
  inFlight(): Promise<void> | undefined;
}

export function createCrondWatch(deps: CrondWatchDeps): CrondWatch {
  let lastAt: number | undefined;
  let shown: string[] = [];

  const settle = (binary: string, look: CrondLook) => {
    const log = deps.logger();
    const next = look.kind === 'read' ? look.findings.map((f) => f.message) : look.kind === 'unreadable' ? [look.message] : [];
    if (look.kind === 'absent') log.debug({ binary }, 'no mysql-crond on this host: nothing to check');
    if (next.join('\n') === shown.join('\n')) return;
    if (look.kind === 'unreadable')
      log.warn({ binary, err: look.message }, "cannot read mysql-crond's job list (said once until it changes)");
    else if (look.kind === 'read' && look.findings.length > 0)
      for (const f of look.findings)
        log.warn(
          { binary, job: f.name, state: f.state, ...(f.until ? { until: f.until } : {}) },
          `${f.message} (said once until it changes)`,
        );
    else log.info({ binary }, "mysql-crond: the old tool's jobs are gone from this host");
    shown = next;
    deps.onChange();
  };

  const flight = singleFlight((err) => deps.logger().error({ err: String(err) }, 'mysql-crond check failed'));
  return {
    poke(now, force = false) {
      if (flight.inFlight() !== undefined) return;
      if (!force && lastAt !== undefined && now - lastAt < CROND_EVERY_MS) return;
      lastAt = now;
      const binary = deps.binary();
      if (binary === undefined) {
        if (shown.length > 0) {
          shown = [];
          deps.onChange();
        }
        return;
      }
      flight.run(() => lookAtCrond(binary).then((look) => settle(binary, look)));
    },
    lines: () => shown,
    inFlight: flight.inFlight,
  };
}
